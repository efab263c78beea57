from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class SubscribersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "subscribers"
    verbose_name = _("Subscribers")

    def ready(self) -> None:
        # Importing webhooks also imports suppression, which registers its Celery task.
        from digests.report_languages import readers_languages_register

        from .checks import check_rate_limit_cache, check_smtp_relay, check_webhook_security
        from .services import readers_languages
        from .webhooks import tracking_receiver_connect

        readers_languages_register(readers_languages)

        tracking_receiver_connect()
        checks.register(check_webhook_security)
        checks.register(check_rate_limit_cache)
        checks.register(check_smtp_relay)
