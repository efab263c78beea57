"""Subscribers in and out of CSV files, for the admin.

Export writes one row per subscriber. Import adds new addresses only: an address already on the
list is left exactly as it is (above all a suppressed one: an import never re-activates it), and
a bad line is reported by its number instead of stopping the import.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from digests.models import Category

from .keywords import KeywordError
from .models import SUPPRESSED_STATUSES, Subscriber
from .services import (
    LANGUAGE_CODES,
    ReaderChoice,
    email_normalise,
    keywords_apply,
    language_or_default,
)

EXPORT_COLUMNS = [
    "email",
    "status",
    "categories",
    "language",
    "consent_at",
    "consent_source",
    "consent_wording_version",
    "confirmed_at",
    "created_at",
    "cadence",
    "keywords_include",  # one keyword or "quoted phrase" per line, in one cell
    "keywords_exclude",
    "keywords_all_categories",  # "yes" or ""
]
YES = frozenset({"yes", "true", "1", "on"})
NO = frozenset({"", "no", "false", "0", "off"})
CATEGORY_SEPARATOR = ";"
IMPORT_MAX_BYTES = 5 * 1024 * 1024
IMPORT_MAX_ROWS = 50_000
EMAIL_MAX_LENGTH = 254
# A spreadsheet runs a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class ImportFileError(ValueError):
    """The file as a whole cannot be read; nothing was imported."""


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    already_present: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)  # (line number, message)
    to_confirm: list[int] = field(default_factory=list)  # pending readers owed a confirmation


@dataclass(frozen=True)
class ImportRow:
    line: int
    email: str
    categories: list[Category]
    language: str
    choice: ReaderChoice = field(default_factory=ReaderChoice)


# --- Export -----------------------------------------------------------------------------------


def subscribers_csv_rows(*, subscribers: Iterable[Subscriber]) -> Iterator[list[str]]:
    """The header, then one row per subscriber (categories as slugs joined by ';')."""
    yield EXPORT_COLUMNS
    for subscriber in subscribers:
        slugs = sorted(category.slug for category in subscriber.categories.all())
        yield [
            _cell(subscriber.email),
            subscriber.status,
            CATEGORY_SEPARATOR.join(slugs),
            _cell(subscriber.language),
            _iso(subscriber.consent_at),
            _cell(subscriber.consent_source),
            _cell(subscriber.consent_wording_version),
            _iso(subscriber.confirmed_at),
            _iso(subscriber.created_at),
            subscriber.cadence,
            _cell(subscriber.keywords_include),
            _cell(subscriber.keywords_exclude),
            "yes" if subscriber.keywords_all_categories else "",
        ]


def csv_lines(rows: Iterable[list[str]]) -> Iterator[str]:
    """Each row as one CSV line, for a streaming response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _cell(value: str) -> str:
    # An address may legally start with "=" or "+": keep a spreadsheet from evaluating it.
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


# --- Import -----------------------------------------------------------------------------------


def subscribers_import(
    *, data: bytes, confirmed: bool, consent_note: str, imported_by: str
) -> ImportReport:
    """Add the new addresses in a CSV file with an `email` and optional `categories` (slugs),
    `language`, `cadence` and keyword (`keywords_include`, `keywords_exclude`: one rule per line
    of the cell; `keywords_all_categories`: yes or no) columns, as the export writes them.

    `confirmed` makes them active with the consent recorded (`consent_note` is required then);
    otherwise they are pending, listed in `to_confirm` for `tasks.confirmation_emails_enqueue`.
    Raises ImportFileError when the file cannot be read at all."""
    if confirmed and not consent_note.strip():
        raise ValueError("a confirmed import needs a consent note")
    report = ImportReport()
    rows = _rows_read(data, report=report)
    created: list[Subscriber] = []
    with transaction.atomic():
        for row in rows:
            subscriber = _row_import(
                row,
                report=report,
                confirmed=confirmed,
                consent_note=consent_note.strip(),
                imported_by=imported_by,
            )
            if subscriber is not None:
                created.append(subscriber)
    if not confirmed:
        report.to_confirm = [subscriber.pk for subscriber in created]
    return report


def _rows_read(data: bytes, *, report: ImportReport) -> list[ImportRow]:
    reader = csv.DictReader(io.StringIO(_text(data), newline=""))
    categories = {category.slug: category for category in Category.objects.all()}
    default_categories = [c for c in categories.values() if c.active]
    first_line: dict[str, int] = {}
    rows: list[ImportRow] = []
    try:
        reader.fieldnames = _columns(reader.fieldnames)
        for record in reader:
            if reader.line_num > IMPORT_MAX_ROWS + 1:
                raise ImportFileError(
                    _("The file has more than %(rows)s rows.") % {"rows": IMPORT_MAX_ROWS}
                )
            row = _row_parse(record, reader.line_num, categories, default_categories, report)
            if row is None:
                continue
            if row.email in first_line:
                problem = _("%(email)s is already on line %(line)s") % {
                    "email": row.email,
                    "line": first_line[row.email],
                }
                report.invalid.append((row.line, problem))
                continue
            first_line[row.email] = row.line
            rows.append(row)
    except csv.Error as err:
        raise ImportFileError(
            _("Line %(line)s is not valid CSV: %(error)s") % {"line": reader.line_num, "error": err}
        ) from err
    return rows


def _text(data: bytes) -> str:
    if len(data) > IMPORT_MAX_BYTES:
        raise ImportFileError(
            _("The file is larger than %(size)s MB.") % {"size": IMPORT_MAX_BYTES // (1024 * 1024)}
        )
    try:
        text = data.decode("utf-8-sig")  # spreadsheets often start UTF-8 with a BOM
    except UnicodeDecodeError as err:
        raise ImportFileError(
            _("The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again.")
        ) from err
    if not text.strip():
        raise ImportFileError(_("The file is empty."))
    if "\x00" in text:
        raise ImportFileError(_("The file is not a CSV text file (it contains NUL bytes)."))
    return text


def _columns(fieldnames: Iterable[str] | None) -> list[str]:
    columns = [(name or "").strip().lower() for name in (fieldnames or [])]
    if "email" not in columns:
        found = ", ".join(name for name in columns if name) or _("nothing")
        raise ImportFileError(
            _("The first line must name the columns, with an “email” column. Found: %(found)s.")
            % {"found": found}
        )
    return columns


def _row_parse(
    record: dict[str | Any, Any],
    line: int,
    categories: dict[str, Category],
    default_categories: list[Category],
    report: ImportReport,
) -> ImportRow | None:
    email = email_normalise(record.get("email") or "")
    if not email and not any(isinstance(v, str) and v.strip() for v in record.values()):
        return None  # a blank line
    problem = _email_problem(email)
    slugs = [s.strip() for s in (record.get("categories") or "").replace(",", ";").split(";")]
    unknown = [slug for slug in slugs if slug and slug not in categories]
    language = (record.get("language") or "").strip().lower()
    if not problem and unknown:
        problem = _("unknown categories: %(unknown)s (known: %(known)s)") % {
            "unknown": ", ".join(unknown),
            "known": ", ".join(categories),
        }
    if not problem and language and language not in LANGUAGE_CODES:
        problem = _("unknown language %(language)r (known: %(known)s)") % {
            "language": language,
            "known": ", ".join(sorted(LANGUAGE_CODES)),
        }
    choice, choice_problem = _choice_parse(record)
    problem = problem or choice_problem
    if problem:
        report.invalid.append((line, problem))
        return None
    chosen = [categories[slug] for slug in slugs if slug]
    return ImportRow(
        line=line,
        email=email,
        categories=chosen or default_categories,
        language=language_or_default(language),
        choice=choice,
    )


def _uncell(value: Any) -> str:
    """A cell as the export wrote it, without the quote that kept a spreadsheet from running it."""
    text = str(value or "").strip()
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES) else text


def _choice_parse(record: dict[str | Any, Any]) -> tuple[ReaderChoice, str]:
    """The row's cadence and keyword rules, or the problem with them."""
    cadence = (record.get("cadence") or "").strip().lower() or Subscriber.Cadence.DAILY
    everywhere = (record.get("keywords_all_categories") or "").strip().lower()
    choice = ReaderChoice(
        keywords_include=_uncell(record.get("keywords_include")),
        keywords_exclude=_uncell(record.get("keywords_exclude")),
        keywords_all_categories=everywhere in YES,
        cadence=cadence,
    )
    if cadence not in Subscriber.Cadence.values:
        return choice, _("unknown cadence %(cadence)r (known: daily, weekly)") % {
            "cadence": cadence
        }
    if everywhere not in YES | NO:
        return choice, _("keywords_all_categories must be yes or no, not %(value)r") % {
            "value": everywhere
        }
    try:
        keywords_apply(Subscriber(), choice=choice)
    except KeywordError as error:
        return choice, _("keywords: %(problem)s") % {"problem": " ".join(error.messages)}
    return choice, ""


def _email_problem(email: str) -> str | None:
    if not email:
        return _("no email address")
    if len(email) > EMAIL_MAX_LENGTH:
        return _("the address is longer than %(length)s characters") % {"length": EMAIL_MAX_LENGTH}
    try:
        validate_email(email)
    except ValidationError:
        return _("%(email)r is not a valid email address") % {"email": email}
    return None


def _row_import(
    row: ImportRow, *, report: ImportReport, confirmed: bool, consent_note: str, imported_by: str
) -> Subscriber | None:
    existing = Subscriber.objects.filter(email=row.email).values_list("status", flat=True).first()
    if existing is not None:
        bucket = report.suppressed if existing in SUPPRESSED_STATUSES else report.already_present
        bucket.append(row.email)
        return None
    now = timezone.now()
    subscriber = Subscriber(
        email=row.email,
        language=row.language,
        consent_source=f"admin import by {imported_by}"[:300],
    )
    keywords_apply(subscriber, choice=row.choice)  # checked when the row was read
    if confirmed:
        subscriber.status = Subscriber.Status.ACTIVE
        subscriber.confirmed_at = subscriber.consent_at = now
        subscriber.consent_note = consent_note
    try:
        with transaction.atomic():
            subscriber.save()
    except IntegrityError:  # signed up while the import ran
        report.already_present.append(row.email)
        return None
    subscriber.categories.set(row.categories)
    report.created.append(row.email)
    return subscriber
