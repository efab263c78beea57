from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class NewsletterConfig(AppConfig):
    """The project as an app, for what belongs to no one app: the beat schedule and its
    `setup_schedule` command. No models."""

    name = "newsletter"

    def ready(self) -> None:
        # After the admin's autodiscovery (its app comes first): auth's admins are registered.
        from django.contrib import admin

        from .auth_admin import auth_admins_register
        from .beat_admin import beat_admins_register

        auth_admins_register(admin.site)
        beat_admins_register(admin.site)


class NewsletterAdminConfig(AdminConfig):
    """django.contrib.admin with the newsletter's site (newsletter.admin) as the default."""

    default_site = "newsletter.admin.NewsletterAdminSite"
