"""One chunk of a send: claim its rows, send them through the transport at the set pace, record
what became of each. Also the test send, which goes through the same transport without rows.

`deliveries_send` claims the chunk's queued rows with one conditional UPDATE (a new claim uuid,
queued -> sending), loads them with the reader's *current* status (a reader who left or bounced
since the start is skipped), and per variant and language builds the email once
(`emails.digest_email`, cached per process), then per group of `transport.batch_size`
recipients: stops if the send is paused (the unattempted rows go back to "queued"), waits for
the rate limiter, sends, records the outcome (one UPDATE per kind of result) and counts errors
in a row (which may pause the send). Recipients the transport could not send for now (429,
5xx, a network error, an SMTP 4xx) stay "sending" under the claim and `DeliveryRetry` is
raised: the task retries with backoff and finds exactly those rows by the claim. No network
I/O happens inside a transaction.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from digests.models import Digest

from .. import rendering
from ..emails import digest_email
from ..models import Delivery, Subscriber
from . import ledger, pace
from .transports import Outcome, Recipient, Transport, reason_of, transport_open

logger = logging.getLogger(__name__)

PAUSED_NOTE = "the send paused before this reader's turn"


class DeliveryRetry(Exception):
    """The ESP or the mail server failed for now; the claimed rows wait for a retry."""

    def __init__(self, *, claim: str, reason: str) -> None:
        super().__init__(reason)
        self.claim = claim
        self.reason = reason


def deliveries_send(
    *, digest_id: int, delivery_ids: Sequence[int], claim: str, retry: bool = False
) -> ledger.ChunkReport:
    """Claims, sends and records one chunk. Raises DeliveryRetry on a transient failure; the
    retry passes the same `claim` and `retry=True` to pick up the rows still waiting."""
    report = ledger.ChunkReport()
    digest = Digest.objects.filter(pk=digest_id).first()
    if digest is None or digest.status == Digest.Status.PAUSED:
        # Paused: nothing is claimed; a retry gives its rows back for the resume.
        if retry:
            report.released = ledger.deliveries_release(
                claim=claim, ids=delivery_ids, reason=PAUSED_NOTE
            )
        return report
    report.claimed = ledger.deliveries_claim(ids=delivery_ids, claim=claim, retry=retry)
    if not report.claimed:
        return report
    recipients = ledger.recipients_load(claim=claim, ids=delivery_ids, report=report)
    try:
        if recipients:
            _recipients_send(
                digest=digest, claim=claim, ids=delivery_ids, recipients=recipients, report=report
            )
    finally:
        ledger.digest_finish_if_done(digest_id=digest_id)
    return report


def _recipients_send(
    *,
    digest: Digest,
    claim: str,
    ids: Sequence[int],
    recipients: list[Recipient],
    report: ledger.ChunkReport,
) -> None:
    groups: dict[tuple[str, str], list[Recipient]] = defaultdict(list)
    for recipient in recipients:
        groups[(recipient.variant, recipient.language)].append(recipient)
    # The keyword rules of the chunk's variants, in one query rather than one per variant.
    rendering.keyword_rules_load(keys={rendering.variant_keywords(key) for key, _ in groups})
    limiter = pace.limiter_get()
    transport = transport_open()
    retry_reason = ""
    # The digest as read at the chunk's start serves the first call; later calls read it again.
    state: tuple[str, int] | None = (digest.status, digest.send_errors_in_row)
    try:
        for (variant, language), group in groups.items():
            email = digest_email(digest=digest, key=variant, language=language)
            if email.empty and settings.DELIVERY_EMPTY_POLICY == "skip":
                report.skipped += ledger.deliveries_mark(
                    claim=claim,
                    ids=[r.delivery_id for r in group],
                    status=Delivery.Status.SKIPPED,
                    reason="no section for the reader's categories",
                )
                continue
            size = (
                transport.batch_size if limiter is None else min(transport.batch_size, limiter.rate)
            )
            for start in range(0, len(group), size):
                status, errors_before = state or pace.digest_state(digest_id=digest.pk)
                state = None
                if status == Digest.Status.PAUSED:
                    report.released += ledger.deliveries_release(
                        claim=claim, ids=ids, reason=PAUSED_NOTE
                    )
                    return
                batch = group[start : start + size]
                if limiter is not None:
                    limiter.acquire(len(batch))
                outcome = transport.send(email, batch)
                ledger.outcome_record(claim=claim, outcome=outcome, report=report)
                paused = pace.errors_record(
                    digest_id=digest.pk, outcome=outcome, errors_before=errors_before
                )
                if paused:
                    report.released += ledger.deliveries_release(
                        claim=claim, ids=ids, reason=PAUSED_NOTE
                    )
                    return
                retry_reason = retry_reason or outcome.retry_reason
    finally:
        transport.close()
    if retry_reason:
        raise DeliveryRetry(claim=claim, reason=retry_reason)


# --- the test send --------------------------------------------------------------------------------


@dataclass
class TestSendReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # address -> reason


def digest_test_send(
    *, digest: Digest, key: str, language: str, addresses: list[str]
) -> TestSendReport:
    """The digest of one choice of categories to each address through the transport a send
    uses, "[TEST] " before its subject, with no Delivery row. An address that is a reader's gets
    that reader's working links; any other gets links that open nothing."""
    known = {s.email.lower(): s for s in Subscriber.objects.filter(email__in=addresses)}
    email = digest_email(digest=digest, key=key, language=language, test=True)
    recipients = [
        Recipient(
            index + 1,
            address,
            key,
            language,
            known.get(address.lower()) or Subscriber(email=address),
        )
        for index, address in enumerate(addresses)
    ]
    report = TestSendReport()
    outcome = Outcome()
    try:
        transport: Transport = transport_open()
    except Exception as error:
        report.failed = dict.fromkeys(addresses, reason_of(error))
        return report
    try:
        for start in range(0, len(recipients), transport.batch_size):
            outcome.merge(transport.send(email, recipients[start : start + transport.batch_size]))
    finally:
        transport.close()
    for recipient in recipients:
        if recipient.delivery_id in outcome.sent:
            report.sent.append(recipient.email)
        else:
            report.failed[recipient.email] = (
                outcome.failed.get(recipient.delivery_id)
                or outcome.unknown.get(recipient.delivery_id)
                or outcome.retry_reason
                or "not sent"
            )
    return report
