"""Sending a digest: one Delivery row per reader, claimed, sent and recorded exactly once.

The flow, each step safe to repeat:

1. `digest_send_start` claims the digest (approved and due -> sending, one conditional UPDATE),
   creates a queued Delivery for every active reader (on PostgreSQL one INSERT ... SELECT;
   elsewhere bulk, a few queries per 5,000 readers),
   and after commit enqueues `send_chunk` tasks: the queued deliveries grouped by variant (the
   reader's choice of categories) and language, DELIVERY_BATCH_SIZE per chunk for ESPs that
   batch-send with merge data, CHUNK_SIZE_SINGLE for the others.
2. `deliveries_send` (one chunk) claims its queued rows with one conditional UPDATE (a new claim
   uuid, queued -> sending), loads them joined with the reader's *current* status (a reader who
   left or bounced since the start is skipped), renders each variant once (cached per process)
   and sends: one ESP call per variant and language for batch backends, one message per reader
   over one reused connection for the others. Results are recorded per ESP call, in one UPDATE
   per outcome. No network I/O happens inside a transaction.
3. Errors: 429, 5xx and network errors leave the rows "sending" under their claim and raise
   `DeliveryRetry`; the task retries with exponential backoff and finds its rows by the claim.
   A permanent 400/413 for a batch is bisected until the refused address is alone: that one
   delivery fails, the others are sent. 401/403/404 (account, key or domain) fail the call.
4. A worker killed mid-call leaves its rows "sending". `digest_send_resume` turns rows claimed
   longer than DELIVERY_STALE_AFTER_SECONDS ago into "unknown" (the ESP may have sent them: they
   are listed for the editor, `deliveries_unknown`, never resent blindly: only the editor's
   "resend to the unknown", `deliveries_unknown_resend`, sends them again) and re-enqueues queued
   rows. A digest becomes "sent" (one conditional UPDATE) once none of its rows is queued or
   sending; "unknown" rows do not hold it back.

Merge syntax: the rendered html/text hold `@@name@@` placeholders; for batch backends they are
turned once per call into the ESP's own syntax (Mailgun `%recipient.name%`, tested; SendGrid
`-name-`, SparkPost `{{name}}`, Mailjet `[[var:name]]`, Brevo `{{ params.name }}`, Mandrill
`*|name|*`, following anymail's documentation, untested here).
"""

from __future__ import annotations

import logging
import smtplib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from itertools import groupby
from typing import Any

from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from anymail.message import AnymailMessage
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection as db_connection
from django.db import models, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Value
from django.db.models.functions import Coalesce, Concat
from django.urls import reverse
from django.utils import timezone

from digests.models import Digest

from . import rendering
from .models import Delivery, Subscriber
from .tokens import URL_NAMES, Purpose, tokens_make

logger = logging.getLogger(__name__)

# Readers read per query when the deliveries are created (and rows per INSERT batch).
CREATE_BATCH_SIZE = 5000
# Readers per chunk for backends that send one message per reader (SMTP, console, file).
CHUNK_SIZE_SINGLE = 200
# anymail backends that batch-send one message to many recipients with per-recipient merge data,
# and how each spells a merge field in the body.
MERGE_FIELD_FORMATS = {
    "anymail.backends.mailgun": "%recipient.{}%",
    "anymail.backends.sendgrid": "-{}-",
    "anymail.backends.sparkpost": "{{{{{}}}}}",
    "anymail.backends.mailjet": "[[var:{}]]",
    "anymail.backends.brevo": "{{{{ params.{} }}}}",
    "anymail.backends.sendinblue": "{{{{ params.{} }}}}",
    "anymail.backends.mandrill": "*|{}|*",
}
# Worth retrying later: the ESP is busy or broken for now (408 timeout, 429, 5xx).
TRANSIENT_STATUS = {408, 429}
# The ESP refused the call because of something in it: bisect to find the address.
BISECT_STATUS = {400, 413}
PENDING = (Delivery.Status.QUEUED, Delivery.Status.SENDING)
# The personal links of a digest email, by placeholder name.
LINK_PURPOSES = {"preferences_url": Purpose.PREFERENCES, "unsubscribe_url": Purpose.UNSUBSCRIBE}
# Stands for the token when a link is reversed once per chunk (the `str` converter accepts it).
TOKEN_SLOT = "tokenslot7f3a9c"  # noqa: S105 (not a secret)


class DeliveryRetry(Exception):
    """The ESP or the mail server failed for now; the claimed rows wait for a retry."""

    def __init__(self, *, claim: str, reason: str) -> None:
        super().__init__(reason)
        self.claim = claim
        self.reason = reason


@dataclass(frozen=True)
class StartReport:
    started: bool
    deliveries: int = 0
    chunks: int = 0


@dataclass(frozen=True)
class ResumeReport:
    unknown: int
    chunks: int
    finished: bool


@dataclass
class ChunkReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    email: str
    variant: str
    language: str
    subscriber: Subscriber  # unsaved stand-in with pk and email: enough for the signed links


@dataclass
class SendContext:
    digest: Digest
    claim: str
    rendered: Any  # rendering.RenderedVariant
    chart_cid: str
    report: ChunkReport
    connection: Any = None
    sent: dict[int, str] = field(default_factory=dict)  # delivery id -> ESP message id
    # Each personal link as (before, after) its token: reversed once, see `link_templates`.
    links: dict[str, tuple[str, str]] = field(default_factory=lambda: link_templates())


# --- backends -----------------------------------------------------------------------------------


def backend_module() -> str:
    return settings.EMAIL_BACKEND.rsplit(".", 1)[0]


def backend_batches() -> bool:
    """Whether EMAIL_BACKEND sends one message to many recipients with merge data."""
    return backend_module() in MERGE_FIELD_FORMATS


def chunk_size() -> int:
    return max(1, settings.DELIVERY_BATCH_SIZE) if backend_batches() else CHUNK_SIZE_SINGLE


# --- start ----------------------------------------------------------------------------------------


def digest_send_start(*, digest_id: int) -> StartReport:
    """Claims an approved, due digest and queues one delivery per active reader.

    Two callers at once (two beat processes): the conditional UPDATE lets one through."""
    now = timezone.now()
    with transaction.atomic():
        due = Digest.objects.filter(pk=digest_id, status=Digest.Status.APPROVED, send_at__lte=now)
        if due.update(status=Digest.Status.SENDING, sending_started_at=now, updated_at=now) != 1:
            return StartReport(started=False)
        created = deliveries_create(digest_id=digest_id)
        chunks = chunks_plan(digest_id=digest_id)
        transaction.on_commit(partial(chunks_enqueue, digest_id=digest_id, chunks=chunks))
    if not chunks:
        digest_finish_if_done(digest_id=digest_id)
    logger.info("digest %s: sending to %s readers in %s chunks", digest_id, created, len(chunks))
    return StartReport(started=True, deliveries=created, chunks=len(chunks))


def deliveries_create(*, digest_id: int) -> int:
    """A queued Delivery for every active reader: one INSERT ... SELECT on PostgreSQL, three
    queries per CREATE_BATCH_SIZE readers elsewhere."""
    if db_connection.vendor == "postgresql":
        return _deliveries_create_postgresql(digest_id=digest_id)
    return _deliveries_create_portable(digest_id=digest_id)


def _deliveries_create_portable(*, digest_id: int) -> int:
    through = Subscriber.categories.through
    active = Subscriber.objects.filter(status=Subscriber.Status.ACTIVE).order_by("pk")
    last, created = 0, 0
    while batch := list(active.filter(pk__gt=last).values_list("pk", "email")[:CREATE_BATCH_SIZE]):
        first, last = batch[0][0], batch[-1][0]
        chosen: dict[int, list[int]] = defaultdict(list)
        pairs = through.objects.filter(subscriber_id__gte=first, subscriber_id__lte=last)
        for subscriber_id, category_id in pairs.values_list("subscriber_id", "category_id"):
            chosen[subscriber_id].append(category_id)
        rows = [
            Delivery(
                digest_id=digest_id,
                subscriber_id=pk,
                email=email,
                variant=rendering.variant_key(sorted(chosen.get(pk, []))),
            )
            for pk, email in batch
        ]
        Delivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=CREATE_BATCH_SIZE)
        created += len(rows)
    return created


def _column(model: type[models.Model], name: str) -> str:
    """The quoted column of a model's field, for the raw SQL below."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    return db_connection.ops.quote_name(field.column)


def _table(model: type[models.Model]) -> str:
    return db_connection.ops.quote_name(model._meta.db_table)


def _deliveries_create_postgresql(*, digest_id: int) -> int:
    """The rows the portable path makes, in one statement: the variant is
    `rendering.variant_key` in SQL (category ids in numeric order joined by ",", "" for none);
    the (digest, subscriber) constraint skips readers who already have their row."""
    through = Subscriber.categories.through
    columns = ["digest", "subscriber", "email", "variant", "status", "attempts", "claim"]
    columns += ["esp_message_id", "error", "created_at"]
    names = ", ".join(_column(Delivery, name) for name in columns)
    reader, category = _column(through, "subscriber"), _column(through, "category")
    pk = _column(Subscriber, "id")
    # Only quoted table and column names from the models are formatted in; values are params.
    sql = f"""
        INSERT INTO {_table(Delivery)} ({names})
        SELECT %s, s.{pk}, s.{_column(Subscriber, "email")},
               COALESCE(string_agg(c.{category}::text, ',' ORDER BY c.{category}), ''),
               %s, 0, '', '', '', %s
        FROM {_table(Subscriber)} s
        LEFT JOIN {_table(through)} c ON c.{reader} = s.{pk}
        WHERE s.{_column(Subscriber, "status")} = %s
        GROUP BY s.{pk}
        ON CONFLICT DO NOTHING
    """  # noqa: S608
    params = (digest_id, str(Delivery.Status.QUEUED), timezone.now(), str(Subscriber.Status.ACTIVE))
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def chunks_plan(*, digest_id: int) -> list[list[int]]:
    """The queued deliveries as lists of ids, one variant and language per list (one query)."""
    if db_connection.vendor == "postgresql":
        return _chunks_plan_postgresql(digest_id=digest_id)
    return _chunks_plan_portable(digest_id=digest_id)


def _chunks_plan_portable(*, digest_id: int) -> list[list[int]]:
    queued = Delivery.objects.filter(digest_id=digest_id, status=Delivery.Status.QUEUED)
    rows = queued.order_by("variant", "subscriber__language", "pk").values_list(
        "pk", "variant", "subscriber__language"
    )
    size = chunk_size()
    chunks: list[list[int]] = []
    for _, group in groupby(rows, key=lambda row: (row[1], row[2])):
        ids = [row[0] for row in group]
        chunks.extend(ids[i : i + size] for i in range(0, len(ids), size))
    return chunks


def _chunks_plan_postgresql(*, digest_id: int) -> list[list[int]]:
    """As the portable path, with the grouping done by PostgreSQL: one row per variant and
    language (at most a few hundred) instead of one per delivery."""
    pk, variant = _column(Delivery, "id"), _column(Delivery, "variant")
    language = _column(Subscriber, "language")
    # Only quoted table and column names from the models are formatted in; values are params.
    sql = f"""
        SELECT array_agg(d.{pk} ORDER BY d.{pk})
        FROM {_table(Delivery)} d
        LEFT JOIN {_table(Subscriber)} s
            ON s.{_column(Subscriber, "id")} = d.{_column(Delivery, "subscriber")}
        WHERE d.{_column(Delivery, "digest")} = %s AND d.{_column(Delivery, "status")} = %s
        GROUP BY d.{variant}, s.{language}
        ORDER BY d.{variant}, s.{language}
    """  # noqa: S608
    size = chunk_size()
    chunks: list[list[int]] = []
    with db_connection.cursor() as cursor:
        cursor.execute(sql, (digest_id, str(Delivery.Status.QUEUED)))
        for (ids,) in cursor.fetchall():
            chunks.extend(ids[i : i + size] for i in range(0, len(ids), size))
    return chunks


def chunks_enqueue(*, digest_id: int, chunks: list[list[int]]) -> None:
    from .tasks import send_chunk  # the tasks module imports this one

    for ids in chunks:
        send_chunk.delay(digest_id, ids)


# --- one chunk ------------------------------------------------------------------------------------


def deliveries_send(
    *, digest_id: int, delivery_ids: Sequence[int], claim: str, retry: bool = False
) -> ChunkReport:
    """Claims, sends and records one chunk. Raises DeliveryRetry on a transient failure; the
    retry passes the same `claim` and `retry=True` to pick up the rows still waiting."""
    report = ChunkReport(claimed=deliveries_claim(ids=delivery_ids, claim=claim, retry=retry))
    if not report.claimed:
        return report
    recipients = _recipients_load(claim=claim, report=report)
    if recipients:
        digest = Digest.objects.get(pk=digest_id)
        content = rendering.digest_context(digest=digest)  # cached per process
        try:
            _recipients_send(
                digest=digest, content=content, claim=claim, recipients=recipients, report=report
            )
        finally:
            digest_finish_if_done(digest_id=digest_id)
    else:
        digest_finish_if_done(digest_id=digest_id)
    return report


def deliveries_claim(*, ids: Sequence[int], claim: str, retry: bool) -> int:
    """queued -> sending under `claim` (one UPDATE); a retry first refreshes its own rows."""
    now = timezone.now()
    changes = {"claimed_at": now, "attempts": F("attempts") + 1}
    refreshed = 0
    if retry:
        mine = Delivery.objects.filter(claim=claim, status=Delivery.Status.SENDING)
        refreshed = mine.update(**changes)
    queued = Delivery.objects.filter(pk__in=list(ids), status=Delivery.Status.QUEUED)
    return refreshed + queued.update(status=Delivery.Status.SENDING, claim=claim, **changes)


def _recipients_load(*, claim: str, report: ChunkReport) -> list[Recipient]:
    """The claimed rows with their reader's current status; readers no longer active are skipped."""
    rows = Delivery.objects.filter(claim=claim, status=Delivery.Status.SENDING).values_list(
        "pk",
        "email",
        "variant",
        "subscriber_id",
        "subscriber__status",
        "subscriber__email",
        "subscriber__language",
    )
    recipients, gone = [], []
    for pk, email, variant, subscriber_id, status, current_email, language in rows.order_by("pk"):
        if status != Subscriber.Status.ACTIVE:
            gone.append(pk)
            continue
        subscriber = Subscriber(pk=subscriber_id, email=current_email)
        recipients.append(Recipient(pk, email, variant, language or "", subscriber))
    if gone:
        report.skipped += _mark(claim, gone, Delivery.Status.SKIPPED, "reader no longer active")
    return recipients


def _recipients_send(
    *,
    digest: Digest,
    content: Any,
    claim: str,
    recipients: list[Recipient],
    report: ChunkReport,
) -> None:
    batches = backend_batches()
    connection = get_connection()
    links = link_templates()
    groups: dict[tuple[str, str], list[Recipient]] = defaultdict(list)
    for recipient in recipients:
        groups[(recipient.variant, recipient.language)].append(recipient)
    try:
        for (variant, language), group in groups.items():
            chart_cid = rendering.chart_cid_make(digest_id=digest.pk, key=variant)
            rendered = rendering.variant_render(
                content=content, key=variant, language=language, chart_cid=chart_cid
            )
            ids = [r.delivery_id for r in group]
            if rendered.empty and settings.DELIVERY_EMPTY_POLICY == "skip":
                reason = "no section for the reader's categories"
                report.skipped += _mark(claim, ids, Delivery.Status.SKIPPED, reason)
                continue
            context = SendContext(
                digest, claim, rendered, chart_cid, report, connection, links=links
            )
            if batches:
                size = max(1, settings.DELIVERY_BATCH_SIZE)
                for start in range(0, len(group), size):
                    _batch_bisect(context, group[start : start + size])
            else:
                _singles_send(context, group)
    finally:
        connection.close()


# --- batch backends (Mailgun and co.) -------------------------------------------------------------


def _merge_fields(merge_format: str) -> dict[str, str]:
    """The personal placeholders as the ESP's merge fields, e.g. %recipient.unsubscribe_url%."""
    return {name: merge_format.format(name) for name in rendering.PERSONAL}


def link_templates() -> dict[str, tuple[str, str]]:
    """Each personal link as the text before and after its token, `reverse()` run once per
    name with TOKEN_SLOT in place of the token. Tokens are made of base64url characters, ':'
    and '.', which `reverse()` leaves as they are, so a link made from these pieces is the one
    `tokens.token_url` returns."""
    templates: dict[str, tuple[str, str]] = {}
    for name, purpose in LINK_PURPOSES.items():
        url = settings.SITE_URL + reverse(URL_NAMES[purpose], kwargs={"token": TOKEN_SLOT})
        before, slot, after = url.partition(TOKEN_SLOT)
        if not slot or TOKEN_SLOT in after:
            raise ValueError(f"cannot find the token's place in {url!r}")
        templates[name] = (before, after)
    return templates


def personal_links(
    subscriber: Subscriber, templates: dict[str, tuple[str, str]] | None = None
) -> dict[str, str]:
    """The reader's personal links (as `tokens.token_url`), one fingerprint for both tokens."""
    templates = templates if templates is not None else link_templates()
    tokens = tokens_make(subscriber=subscriber, purposes=LINK_PURPOSES.values())
    return {
        name: f"{before}{tokens[LINK_PURPOSES[name]]}{after}"
        for name, (before, after) in templates.items()
    }


def _unsubscribe_headers(unsubscribe_url: str) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _chart_attach(context: SendContext, message: EmailMultiAlternatives) -> None:
    """The chart inline (Content-ID <chart_cid>, as the HTML's cid: names it); the note has none."""
    if context.rendered.chart_png:
        rendering.chart_image_attach(
            message=message, png=context.rendered.chart_png, cid=context.chart_cid
        )
        message.mixed_subtype = "related"


def batch_message(context: SendContext, recipients: list[Recipient]) -> AnymailMessage:
    """One message to every recipient, personalised by the ESP from merge data."""
    fields = _merge_fields(MERGE_FIELD_FORMATS[backend_module()])
    rendered = context.rendered
    message = AnymailMessage(
        subject=rendered.subject,
        body=rendering.personalise_text(rendered.text, fields),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[r.email for r in recipients],
        connection=context.connection,
    )
    message.attach_alternative(rendering.personalise_html(rendered.html, fields), "text/html")
    merge_data, merge_headers = {}, {}
    for recipient in recipients:
        links = personal_links(recipient.subscriber, context.links)
        merge_data[recipient.email] = links
        merge_headers[recipient.email] = _unsubscribe_headers(links["unsubscribe_url"])
    message.merge_data = merge_data
    message.merge_headers = merge_headers
    message.merge_metadata = {r.email: {"delivery_id": str(r.delivery_id)} for r in recipients}
    message.metadata = {"digest": str(context.digest.pk)}
    message.tags = ["digest", f"digest-{context.digest.date:%Y-%m-%d}"]
    message.extra_headers = {"List-Id": settings.LIST_ID}
    if backend_module() == "anymail.backends.sendgrid":
        message.esp_extra = {"merge_field_format": "-{}-"}
    _chart_attach(context, message)
    return message


def _batch_bisect(context: SendContext, recipients: list[Recipient]) -> None:
    """Sends one batch; a permanent refusal is split in halves until the bad address is alone."""
    message = batch_message(context, recipients)
    try:
        context.connection.send_messages([message])
    except AnymailRecipientsRefused as error:
        _fail(context, recipients, f"refused by the ESP: {error}")
        return
    except AnymailAPIError as error:
        status = getattr(error, "status_code", None)
        if status is None or status in TRANSIENT_STATUS or status >= 500:
            raise DeliveryRetry(claim=context.claim, reason=_reason(error)) from error
        if status < 400:
            # The ESP answered 2xx but in a shape we cannot read: it may have sent them.
            _mark(
                context.claim,
                [r.delivery_id for r in recipients],
                Delivery.Status.UNKNOWN,
                _reason(error),
            )
            return
        if status in BISECT_STATUS and len(recipients) > 1:
            half = len(recipients) // 2
            _batch_bisect(context, recipients[:half])
            _batch_bisect(context, recipients[half:])
            return
        _fail(context, recipients, _reason(error))
        return
    except AnymailError as error:
        # Refused by anymail before any request (configuration, unsupported feature): not sent.
        _fail(context, recipients, _reason(error))
        return
    _batch_record(context, recipients, message.anymail_status.recipients)


def _batch_record(
    context: SendContext, recipients: list[Recipient], statuses: dict[str, Any]
) -> None:
    sent: dict[str, list[int]] = defaultdict(list)
    refused: dict[str, list[int]] = defaultdict(list)
    for recipient in recipients:
        status = statuses.get(recipient.email)
        if status is not None and status.status in {"rejected", "invalid"}:
            refused[f"{status.status} by the ESP"].append(recipient.delivery_id)
        else:
            sent[str(getattr(status, "message_id", "") or "")].append(recipient.delivery_id)
    for message_id, ids in sent.items():
        context.report.sent += deliveries_mark_sent(
            claim=context.claim, ids=ids, message_id=message_id
        )
    for reason, ids in refused.items():
        context.report.failed += _mark(context.claim, ids, Delivery.Status.FAILED, reason)


def _fail(context: SendContext, recipients: list[Recipient], reason: str) -> None:
    ids = [r.delivery_id for r in recipients]
    context.report.failed += _mark(context.claim, ids, Delivery.Status.FAILED, reason)


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


# --- one message per reader (SMTP, console, file, locmem) ---------------------------------------


def single_message(context: SendContext, recipient: Recipient) -> EmailMultiAlternatives:
    rendered = context.rendered
    links = personal_links(recipient.subscriber, context.links)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendering.personalise_text(rendered.text, links),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient.email],
        headers={"List-Id": settings.LIST_ID, **_unsubscribe_headers(links["unsubscribe_url"])},
        connection=context.connection,
    )
    message.attach_alternative(rendering.personalise_html(rendered.html, links), "text/html")
    _chart_attach(context, message)
    return message


def _singles_send(context: SendContext, recipients: list[Recipient]) -> None:
    """One message per reader over the one open connection; results recorded once at the end."""
    sent: list[int] = []
    failed: dict[str, list[int]] = defaultdict(list)
    try:
        context.connection.open()
        for recipient in recipients:
            try:
                context.connection.send_messages([single_message(context, recipient)])
            except smtplib.SMTPRecipientsRefused as error:
                codes = [code for code, _ in error.recipients.values()]
                if any(code < 500 for code in codes):
                    raise
                failed[_reason(error)].append(recipient.delivery_id)
                continue
            except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
                if error.smtp_code < 500:
                    raise
                failed[_reason(error)].append(recipient.delivery_id)
                continue
            sent.append(recipient.delivery_id)
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryRetry(claim=context.claim, reason=_reason(error)) from error
    finally:
        context.report.sent += deliveries_mark_sent(claim=context.claim, ids=sent, message_id="")
        for reason, ids in failed.items():
            context.report.failed += _mark(context.claim, ids, Delivery.Status.FAILED, reason)


# --- recording ------------------------------------------------------------------------------------


def deliveries_mark_sent(*, claim: str, ids: Iterable[int], message_id: str) -> int:
    """Sent, in one UPDATE. "unknown" is accepted too: a slow call that a resume gave up on
    has now been confirmed by the ESP."""
    ids = list(ids)
    if not ids:
        return 0
    rows = Delivery.objects.filter(
        pk__in=ids, claim=claim, status__in=[Delivery.Status.SENDING, Delivery.Status.UNKNOWN]
    )
    return rows.update(
        status=Delivery.Status.SENT,
        esp_message_id=message_id[:200],
        sent_at=timezone.now(),
        error="",
    )


def _mark(claim: str, ids: list[int], status: str, reason: str) -> int:
    rows = Delivery.objects.filter(pk__in=ids, claim=claim, status=Delivery.Status.SENDING)
    return rows.update(status=status, error=reason)


def deliveries_give_up(*, claim: str, reason: str) -> int:
    """After the last retry: the rows of `claim` were never accepted by the ESP, so failed."""
    rows = Delivery.objects.filter(claim=claim, status=Delivery.Status.SENDING)
    return rows.update(status=Delivery.Status.FAILED, error=f"gave up after retries: {reason}")


def digest_finish_if_done(*, digest_id: int) -> bool:
    """sending -> sent once no delivery is queued or sending (one conditional UPDATE)."""
    pending = Delivery.objects.filter(digest_id=OuterRef("pk"), status__in=PENDING)
    now = timezone.now()
    done = Digest.objects.filter(pk=digest_id, status=Digest.Status.SENDING).exclude(
        Exists(pending)
    )
    # A resend to the unknown closes the issue again: its first sent_at stays.
    closed = done.update(
        status=Digest.Status.SENT, sent_at=Coalesce(F("sent_at"), now), updated_at=now
    )
    return closed == 1


# --- crash recovery and the schedule --------------------------------------------------------------


def digest_send_resume(*, digest_id: int) -> ResumeReport:
    """Stale "sending" rows -> unknown; queued rows enqueued again; sent when nothing is left."""
    stale_before = timezone.now() - timedelta(seconds=settings.DELIVERY_STALE_AFTER_SECONDS)
    stale = Delivery.objects.filter(
        digest_id=digest_id, status=Delivery.Status.SENDING, claimed_at__lt=stale_before
    )
    unknown = stale.update(
        status=Delivery.Status.UNKNOWN,
        error="its ESP call was in flight when the worker stopped: it may have been sent",
    )
    if unknown:
        logger.warning("digest %s: %s deliveries in an unknown state", digest_id, unknown)
    chunks = chunks_plan(digest_id=digest_id)
    transaction.on_commit(partial(chunks_enqueue, digest_id=digest_id, chunks=chunks))
    finished = digest_finish_if_done(digest_id=digest_id)
    return ResumeReport(unknown=unknown, chunks=len(chunks), finished=finished)


def digests_stalled() -> list[int]:
    """Digests in "sending" whose last claim (or start) is older than the stale delay."""
    threshold = timezone.now() - timedelta(seconds=settings.DELIVERY_STALE_AFTER_SECONDS)
    sending = Digest.objects.filter(status=Digest.Status.SENDING, sending_started_at__lt=threshold)
    sending = sending.annotate(last_claim=Max("deliveries__claimed_at"))
    stalled = sending.filter(Q(last_claim__isnull=True) | Q(last_claim__lt=threshold))
    return list(stalled.values_list("pk", flat=True))


def digests_due_send() -> dict[str, list[int]]:
    """What the beat runs every minute: start the due digests, resume the stalled ones, and
    close any whose last chunk finished."""
    now = timezone.now()
    due = Digest.objects.filter(status=Digest.Status.APPROVED, send_at__lte=now)
    started = [
        pk for pk in due.values_list("pk", flat=True) if digest_send_start(digest_id=pk).started
    ]
    resumed = digests_stalled()
    for pk in resumed:
        digest_send_resume(digest_id=pk)
    pending = Delivery.objects.filter(digest_id=OuterRef("pk"), status__in=PENDING)
    finishing = Digest.objects.filter(status=Digest.Status.SENDING).exclude(Exists(pending))
    finished = list(finishing.values_list("pk", flat=True))
    for pk in finished:
        digest_finish_if_done(digest_id=pk)
    return {"started": started, "resumed": resumed, "finished": finished}


def deliveries_unknown(*, digest_id: int) -> list[Delivery]:
    """Deliveries whose ESP call may or may not have gone out, for the editor to decide."""
    return list(
        Delivery.objects.filter(digest_id=digest_id, status=Delivery.Status.UNKNOWN).order_by(
            "email"
        )
    )


# What a resent row's `error` says until it is sent again (the earlier error follows it).
RESEND_NOTE = "resent by an editor after an unknown outcome; before: "


def deliveries_unknown_resend(*, digest_id: int) -> int:
    """Sends the digest again to its deliveries in an unknown state, by an editor's explicit
    choice: those readers may get it twice. No other row is touched, so nobody else gets a
    second copy. The rows go back to "queued" without their claim (a late answer to the old
    call cannot record them); a digest already "sent" is "sending" again until they are done
    (`digest_finish_if_done` closes it). Returns how many were queued."""
    now = timezone.now()
    with transaction.atomic():
        unknown = Delivery.objects.filter(digest_id=digest_id, status=Delivery.Status.UNKNOWN)
        resent = unknown.update(
            status=Delivery.Status.QUEUED,
            claim="",
            claimed_at=None,
            error=Concat(Value(RESEND_NOTE), F("error"), output_field=models.TextField()),
        )
        if not resent:
            return 0
        reopened = Digest.objects.filter(pk=digest_id, status=Digest.Status.SENT)
        reopened.update(status=Digest.Status.SENDING, updated_at=now)
        chunks = chunks_plan(digest_id=digest_id)
        transaction.on_commit(partial(chunks_enqueue, digest_id=digest_id, chunks=chunks))
    logger.warning("digest %s: resending to %s deliveries in an unknown state", digest_id, resent)
    return resent


def delivery_counts(*, digest_id: int) -> dict[str, int]:
    rows = Delivery.objects.filter(digest_id=digest_id).order_by().values("status")
    counts = dict(rows.annotate(n=Count("pk")).values_list("status", "n"))
    return {status: counts.get(status, 0) for status in Delivery.Status.values}


# --- ESP events ---------------------------------------------------------------------------------


def delivery_events_apply(*, event: Any) -> bool:
    """An EmailEvent whose metadata names a delivery updates that row: bounced or complained
    (status), opened or clicked (the first time). Returns True when a row changed."""
    delivery_id = str((event.metadata or {}).get("delivery_id") or "")
    if not delivery_id.isdigit():
        return False
    row = Delivery.objects.filter(pk=int(delivery_id))
    when = event.occurred_at or timezone.now()
    updates: dict[str, Callable[[], int]] = {
        "bounced": lambda: row.update(
            status=Delivery.Status.BOUNCED, error=event.description or "bounced"
        ),
        "complained": lambda: row.update(status=Delivery.Status.COMPLAINED),
        "opened": lambda: row.filter(opened_at__isnull=True).update(opened_at=when),
        "clicked": lambda: row.filter(clicked_at__isnull=True).update(clicked_at=when),
    }
    update = updates.get(event.event_type)
    return bool(update and update())
