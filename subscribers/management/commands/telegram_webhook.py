"""`python manage.py telegram_webhook --url https://news.example.org`: tells Telegram to post
the bot's updates to `<url>/telegram/webhook/`, with TELEGRAM_WEBHOOK_SECRET as the secret
header the webhook checks and only the updates the bot reads (messages, its membership).
`--delete` removes the webhook. Prints what Telegram answered."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from subscribers.channels.telegram_bot import (
    WebhookSetupError,
    webhook_register,
    webhook_unregister,
    webhook_url,
)
from subscribers.channels.transports import TelegramError


class Command(BaseCommand):
    help = "Registers (--url) or removes (--delete) the Telegram bot's webhook."

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--url", help="The site's address, e.g. https://news.example.org")
        action.add_argument("--delete", action="store_true", help="Remove the webhook.")

    @no_translations
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["delete"]:
                answer = webhook_unregister()
            else:
                answer = webhook_register(base_url=options["url"])
        except (WebhookSetupError, TelegramError) as error:
            raise CommandError(str(error)) from None
        if not options["delete"]:
            self.stdout.write(f"Webhook: {webhook_url(options['url'])}")
        self.stdout.write(f"Telegram answered: {json.dumps(answer, ensure_ascii=False)}")
