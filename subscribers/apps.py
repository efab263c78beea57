from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class SubscribersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "subscribers"

    def ready(self) -> None:
        # Importing webhooks also imports suppression, which registers its Celery task.
        from .checks import check_rate_limit_cache, check_smtp_relay, check_webhook_security
        from .webhooks import tracking_receiver_connect

        tracking_receiver_connect()
        checks.register(check_webhook_security)
        checks.register(check_rate_limit_cache)
        checks.register(check_smtp_relay)
