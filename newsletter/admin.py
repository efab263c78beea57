"""The admin site: Django's, with the newsletter's dashboard beside the model pages."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

# django-celery-beat's headings that its Korean catalogue leaves in English, and that it has no
# Japanese catalogue for (its sidebar entries, list titles and form sections). Marked here so
# that makemessages keeps them in the project's catalogue, which LOCALE_PATHS puts first.
CELERY_BEAT_WORDS = (
    gettext_noop("Periodic Tasks"),
    gettext_noop("periodic task"),
    gettext_noop("periodic tasks"),
    gettext_noop("solar event"),
    gettext_noop("solar events"),
    gettext_noop("interval"),
    gettext_noop("intervals"),
    gettext_noop("clocked"),
    gettext_noop("crontab"),
    gettext_noop("crontabs"),
    gettext_noop("Solar Event"),
    gettext_noop("Clock Time"),
    gettext_noop("Interval Schedule"),
    gettext_noop("Crontab Schedule"),
    gettext_noop("Solar Schedule"),
    gettext_noop("Clocked Schedule"),
    gettext_noop("Schedule"),
    gettext_noop("Arguments"),
    gettext_noop("Positional Arguments"),
    gettext_noop("Keyword Arguments"),
    gettext_noop("Execution Options"),
    gettext_noop("Queue Override"),
    gettext_noop("Exchange"),
    gettext_noop("Routing Key"),
    gettext_noop("Priority"),
)


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
