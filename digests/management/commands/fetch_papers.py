"""`manage.py fetch_papers [--feed URL_OR_PATH ...]`: fetch arXiv feeds and store their papers.

Prints a line per feed (what it stored, or why it failed) and under it a line per arXiv category
(new, cross-listed, replaced, already known, and the listing page's figures with
ARXIV_LISTING_CHECK on), the counts each fetch records (``FetchCount``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations

from digests.ingest import feeds_fetch


class Command(BaseCommand):
    help = (
        "Fetch the enabled feeds, or only those given, store the papers they announce and "
        "print what each feed announced per arXiv category."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--feed",
            action="extend",
            nargs="+",
            metavar="URL_OR_PATH",
            help="Fetch only these feeds: http(s) URLs, file:// URLs or paths (repeatable).",
        )

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        results = feeds_fetch(urls=options["feed"], log=self.stdout.write)
        if not results:
            self.stdout.write("No enabled feeds: add one in the admin or pass --feed.")
            return
        if not any(result.ok for result in results):
            reasons = "; ".join(f"{result.feed_url}: {result.error}" for result in results)
            raise CommandError(f"Every feed failed. {reasons}")
