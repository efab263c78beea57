"""`python manage.py local_admin`: an admin account to look around a local site with.

`scripts/run.sh --serve` runs it before it starts the site, so the draft's "Review the draft"
link can be opened at once. It makes a superuser with a random password and prints the password
this once (only a hash is kept); when a superuser exists it changes nothing and prints no
password. Development only: with DEBUG off it refuses (use `createsuperuser` there).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations


class Command(BaseCommand):
    help = (
        "Creates a local admin account with a random password, printed once, unless a superuser "
        "exists. Development only (DEBUG on)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="default: admin")

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "local_admin is for a development site (DEBUG on); in production use "
                "`manage.py createsuperuser`."
            )
        existing = superuser_names()
        if existing:
            self.stdout.write(
                f"Admin account: {', '.join(existing)} (exists; its password is not shown again: "
                f"`manage.py changepassword {existing[0]}` sets a new one)."
            )
            return
        if get_user_model().objects.filter(username=options["username"]).exists():
            raise CommandError(
                f"A user {options['username']} exists but is no superuser: name another with "
                "--username."
            )
        password = local_admin_create(username=options["username"])
        self.stdout.write(
            f"Admin account: {options['username']}, password: {password}\n"
            "  (shown this once; `manage.py changepassword "
            f"{options['username']}` sets a new one)"
        )


def superuser_names() -> list[str]:
    users = get_user_model().objects.filter(is_superuser=True, is_active=True)
    return list(users.order_by("pk").values_list("username", flat=True))


def local_admin_create(*, username: str) -> str:
    """A superuser with a random password; returns the password (only its hash is stored)."""
    password = secrets.token_urlsafe(12)
    get_user_model().objects.create_superuser(username=username, email="", password=password)
    return password
