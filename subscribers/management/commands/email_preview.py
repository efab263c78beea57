"""`python manage.py email_preview`: the email one reader would get of an issue, as files.

Writes the HTML (the chart inline as a data: URI, so the file opens in any browser) and the
plain-text part, and prints both paths. The email is the admin preview's
(subscribers/admin_views/preview.py `email_preview`), which builds it with the code a send runs.
By default: the latest issue, as a reader of every category with a section, in the default
language; or as one reader (`--subscriber`), or of chosen categories (`--category`).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser, no_translations
from django.db.models import Q

from digests.models import Category, Digest
from subscribers import emails, rendering
from subscribers.admin_views.preview import (
    Choice,
    choice_label,
    email_preview,
    reader_choice,
    section_category_ids,
)
from subscribers.models import Subscriber

OUTPUT_DIR = Path(settings.BASE_DIR) / "var" / "preview"


class Command(BaseCommand):
    help = (
        "Writes the email one reader would get of an issue (default: the latest, every section) "
        "as an HTML file with the chart inline and as plain text, and prints both paths."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=date.fromisoformat, help="the issue's date, YYYY-MM-DD")
        parser.add_argument("--subscriber", metavar="EMAIL", help="as this reader gets it")
        parser.add_argument(
            "--category",
            dest="categories",
            action="append",
            metavar="SLUG_OR_NAME",
            help="a category the reader chose; repeatable (default: every section)",
        )
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            help="default: the reader's",
        )
        parser.add_argument(
            "--output-dir", type=Path, default=OUTPUT_DIR, help="default: var/preview"
        )

    @no_translations  # the command speaks English, whatever LANGUAGE_CODE says
    def handle(self, *args: Any, **options: Any) -> None:
        digest = issue_find(options["date"])
        choice = choice_make(
            digest=digest,
            reader=options["subscriber"],
            categories=options["categories"],
            language=options["language"] or "",
        )
        shown = email_preview(digest=digest, choice=choice)
        html_path, text_path = preview_write(
            shown=shown, directory=options["output_dir"], stem=file_stem(digest, choice)
        )
        for line in preview_lines(digest, choice, shown, html_path, text_path):
            self.stdout.write(line)


def issue_find(day: date | None) -> Digest:
    digests = Digest.objects.order_by("-date")
    digest = digests.filter(date=day).first() if day else digests.first()
    if digest is None:
        wanted = f"of {day}" if day else "yet"
        raise CommandError(f"No issue {wanted}: build one with `manage.py run_daily`.")
    return digest


def choice_make(
    *, digest: Digest, reader: str | None, categories: list[str] | None, language: str
) -> Choice:
    """A reader's choice, or the categories named, or every section of the issue."""
    if reader:
        subscriber = Subscriber.objects.filter(email__iexact=reader.strip()).first()
        if subscriber is None:
            raise CommandError(f"No reader has the address {reader}.")
        return reader_choice(subscriber=subscriber, language=language)
    ids = category_ids(categories) if categories else section_category_ids(digest)
    return Choice(rendering.variant_key(ids), language or settings.LANGUAGE_CODE)


def category_ids(names: list[str]) -> list[int]:
    ids = []
    for name in names:
        found = Category.objects.filter(Q(slug=name) | Q(name__iexact=name)).first()
        if found is None:
            known = ", ".join(Category.objects.order_by("position").values_list("slug", flat=True))
            raise CommandError(f"No category {name!r}; the categories are: {known}.")
        ids.append(found.pk)
    return ids


def file_stem(digest: Digest, choice: Choice) -> str:
    if choice.subscriber is not None:
        who = f"reader-{choice.subscriber.pk}"
    elif choice.key == rendering.variant_key(section_category_ids(digest)):
        who = "all"
    else:
        who = "categories-" + (choice.key.replace(",", "-") or "none")
    return f"issue-{digest.date.isoformat()}-{who}-{choice.language}"


def preview_write(*, shown: emails.EmailPreview, directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    html_path = (directory / f"{stem}.html").resolve()
    text_path = (directory / f"{stem}.txt").resolve()
    html_path.write_text(shown.html_for_browser(), encoding="utf-8")
    text_path.write_text(shown.text, encoding="utf-8")
    return html_path, text_path


def preview_lines(
    digest: Digest, choice: Choice, shown: emails.EmailPreview, html: Path, text: Path
) -> list[str]:
    note = " No section for this choice: the reader gets the short note." if shown.empty else ""
    return [
        f"The email of the issue of {digest.date} ({digest.status}), "
        f"{choice_label(choice, reader_named=True)}.{note}",
        f"  Subject:    {shown.subject}",
        f"  HTML:       {html}  (open it in a browser; the chart is inline)",
        f"  Plain text: {text}",
        f"  Size:       HTML {shown.html_kb} KB (Gmail clips at "
        f"{emails.GMAIL_CLIP_BYTES // 1024} KB), whole message {shown.message_kb} KB, "
        f"chart {shown.chart_kb} KB",
    ]
