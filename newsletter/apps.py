from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class NewsletterAdminConfig(AdminConfig):
    """django.contrib.admin with the newsletter's site (newsletter.admin) as the default."""

    default_site = "newsletter.admin.NewsletterAdminSite"
