"""The admin site: Django's, with the newsletter's dashboard beside the model pages."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext_lazy as _


class NewsletterAdminSite(admin.AdminSite):
    site_header = "Daily AI Insights"
    site_title = _("Daily AI Insights admin")
    index_title = _("Issues, readers and deliveries")

    def get_urls(self) -> list[URLResolver | URLPattern]:
        # Here, not at the top: this module is loaded with the app registry (default_site),
        # before the apps' models can be imported.
        from subscribers.admin_views.dashboard import dashboard_view

        return [
            path("dashboard/", self.admin_view(dashboard_view), name="dashboard"),
            *super().get_urls(),
        ]
