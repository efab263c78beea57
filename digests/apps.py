from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.utils.translation import gettext_lazy as _


class DigestsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "digests"
    verbose_name = _("Digests")

    def ready(self) -> None:
        from .checks import check_production_settings

        checks.register(check_production_settings)
