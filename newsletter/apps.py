from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class NewsletterConfig(AppConfig):
    """The project as an app, for what belongs to no one app: the beat schedule and its
    `setup_schedule` command. No models."""

    name = "newsletter"


class NewsletterAdminConfig(AdminConfig):
    """django.contrib.admin with the newsletter's site (newsletter.admin) as the default."""

    default_site = "newsletter.admin.NewsletterAdminSite"
