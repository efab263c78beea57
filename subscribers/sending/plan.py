"""Start a send and plan its chunks: one Delivery per active reader, grouped into chunks of one
variant (choice of categories, and keyword rules where they change this issue) and language.
Returns what to enqueue; `tasks.py` enqueues.

A large list is planned in ranges of readers (by id) while the first chunks are already being
sent: `digest_send_start` claims the digest (approved and due -> sending, one conditional
UPDATE) and makes the rows of the first DELIVERY_PLAN_FIRST readers; each `plan_range` call
makes the next DELIVERY_PLAN_RANGE readers' rows, until `send_planned_at` is set, and only
then can the send finish. A chunk holds at most `batch_size` rows of one variant and language;
what is left of a variant at the end of a range (a partial chunk) waits for the next range,
so ranges cost almost no extra ESP calls (`Plan.carry`: per group, the first row not yet in a
chunk). On PostgreSQL a range is one INSERT ... SELECT and one grouping query; elsewhere a few
queries per CREATE_BATCH_SIZE readers.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection as db_connection
from django.db import models, transaction
from django.utils import timezone

from digests.models import Digest

from .. import rendering
from ..models import Delivery, Subscriber
from . import channels
from .transports import MERGE_FIELD_FORMATS, SMTP_BATCH, backend_module

logger = logging.getLogger(__name__)

# Readers read per query when the deliveries are made elsewhere than on PostgreSQL.
CREATE_BATCH_SIZE = 5000


@dataclass
class Plan:
    """What `tasks.py` enqueues: the chunks (delivery ids), and where planning goes on."""

    started: bool
    deliveries: int = 0
    chunks: list[list[int]] = field(default_factory=list)
    next_reader: int | None = None  # plan again from this reader id; None = every row is made
    carry: dict[str, int] = field(default_factory=dict)  # "variant|language" -> first row id
    channel_chunks: list[list[int]] = field(default_factory=list)  # ChannelDelivery ids


def chunk_size() -> int:
    if backend_module() in MERGE_FIELD_FORMATS:
        size = max(1, settings.DELIVERY_BATCH_SIZE)
    else:
        size = SMTP_BATCH
    rate = int(settings.DELIVERY_RATE_PER_SECOND or 0)
    return min(size, rate) if rate > 0 else size


def digest_send_start(*, digest_id: int) -> Plan:
    """Claims an approved, due digest and plans its first range of readers. Two callers at once
    (two beat processes): the conditional UPDATE lets one through."""
    now = timezone.now()
    with transaction.atomic():
        due = Digest.objects.filter(pk=digest_id, status=Digest.Status.APPROVED, send_at__lte=now)
        started = due.update(
            status=Digest.Status.SENDING,
            sending_started_at=now,
            send_planned_at=None,
            send_errors_in_row=0,
            updated_at=now,
        )
        if started != 1:
            return Plan(started=False)
        cadence = digest_cadence(digest_id)
        # The channels' rows first: the send cannot close before they are made.
        channel_chunks = channels.channels_plan(digest_id=digest_id, cadence=cadence)
        plan = plan_range(
            digest_id=digest_id,
            from_reader=0,
            size=settings.DELIVERY_PLAN_FIRST,
            carry={},
            cadence=cadence,
        )
        plan.channel_chunks = channel_chunks
    logger.info(
        "digest %s: sending; %s deliveries in %s chunks planned first",
        digest_id,
        plan.deliveries,
        len(plan.chunks),
    )
    return plan


def plan_range(
    *,
    digest_id: int,
    from_reader: int,
    size: int,
    carry: dict[str, int],
    cadence: str | None = None,
) -> Plan:
    """The deliveries of active readers of the digest's cadence with id >= from_reader (at most
    `size` of them), and the chunks that are full by now; the last range plans every row
    left."""
    cadence = cadence or digest_cadence(digest_id)
    readers = Subscriber.objects.filter(
        status=Subscriber.Status.ACTIVE, cadence=cadence, pk__gte=from_reader
    )
    bound = (
        readers.order_by("pk").values_list("pk", flat=True)[size : size + 1].first()
        if size > 0
        else None
    )
    first_row = _next_row_id()
    made = deliveries_create(
        digest_id=digest_id, from_reader=from_reader, until_reader=bound, cadence=cadence
    )
    last = bound is None
    chunks, carry = chunks_plan_from(
        digest_id=digest_id, first_row=first_row, carry=carry, final=last
    )
    if last:
        Digest.objects.filter(pk=digest_id).update(send_planned_at=timezone.now())
    return Plan(started=True, deliveries=made, chunks=chunks, next_reader=bound, carry=carry)


def _next_row_id() -> int:
    """Rows made from now on have ids above this one's (ids only grow)."""
    last = Delivery.objects.order_by("-pk").values_list("pk", flat=True).first()
    return int(last or 0) + 1


def deliveries_create(
    *,
    digest_id: int,
    from_reader: int = 0,
    until_reader: int | None = None,
    cadence: str | None = None,
) -> int:
    """A queued Delivery for every active reader of the digest's cadence (a daily issue goes to
    daily readers, a weekly one to weekly readers) with from_reader <= id < until_reader; a reader
    who already has their row is skipped (the (digest, subscriber) constraint)."""
    cadence = cadence or digest_cadence(digest_id)
    keys = keywords_in_effect(digest_id=digest_id, cadence=cadence)
    if db_connection.vendor == "postgresql":
        return _deliveries_create_postgresql(digest_id, from_reader, until_reader, cadence, keys)
    return _deliveries_create_portable(digest_id, from_reader, until_reader, cadence, keys)


def keywords_in_effect(*, digest_id: int, cadence: str) -> list[str]:
    """The keywords_keys of the digest's readers whose rules change something in it: their
    variant is their categories and that key. Other readers' rules match nothing here, so they
    share the email of their categories. One query: the distinct rule sets."""
    readers = Subscriber.objects.filter(status=Subscriber.Status.ACTIVE, cadence=cadence)
    rows = readers.exclude(keywords_key="").order_by().values_list(*rendering.RULES_FIELDS)
    rules = rendering.keyword_rules_remember(rows.distinct())
    if not rules:
        return []
    content = rendering.digest_context(digest=Digest.objects.get(pk=digest_id))
    return sorted(rendering.keywords_in_effect(content=content, rules=rules))


def digest_cadence(digest_id: int) -> str:
    """The readers' cadence a digest is for: its kind (daily or weekly)."""
    kind = Digest.objects.values_list("kind", flat=True).get(pk=digest_id)
    return str(
        Subscriber.Cadence.WEEKLY if kind == Digest.Kind.WEEKLY else Subscriber.Cadence.DAILY
    )


def _deliveries_create_portable(
    digest_id: int, from_reader: int, until_reader: int | None, cadence: str, keys: list[str]
) -> int:
    through = Subscriber.categories.through
    active = Subscriber.objects.filter(status=Subscriber.Status.ACTIVE, cadence=cadence)
    active = active.order_by("pk")
    if until_reader is not None:
        active = active.filter(pk__lt=until_reader)
    last, created = from_reader - 1, 0
    in_effect = frozenset(keys)
    fields = ("pk", "email", "keywords_key")
    while batch := list(active.filter(pk__gt=last).values_list(*fields)[:CREATE_BATCH_SIZE]):
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
                variant=rendering.variant_key(chosen.get(pk, []), key if key in in_effect else ""),
            )
            for pk, email, key in batch
        ]
        Delivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=CREATE_BATCH_SIZE)
        created += len(rows)
    return created


def _column(model: type[models.Model], name: str) -> str:
    """The quoted column of a model's field, for the raw SQL below."""
    field_ = model._meta.get_field(name)
    assert isinstance(field_, models.Field)
    return db_connection.ops.quote_name(field_.column)


def _table(model: type[models.Model]) -> str:
    return db_connection.ops.quote_name(model._meta.db_table)


def _deliveries_create_postgresql(
    digest_id: int, from_reader: int, until_reader: int | None, cadence: str, keys: list[str]
) -> int:
    """The rows the portable path makes, in one statement: the variant is
    `rendering.variant_key` in SQL (category ids in numeric order joined by ",", "" for none,
    then "+" and the reader's keywords_key when it is one of `keys`)."""
    through = Subscriber.categories.through
    columns = ["digest", "subscriber", "email", "variant", "status", "attempts", "claim"]
    columns += ["esp_message_id", "error", "created_at"]
    names = ", ".join(_column(Delivery, name) for name in columns)
    reader, category = _column(through, "subscriber"), _column(through, "category")
    pk = _column(Subscriber, "id")
    keywords_key = f"s.{_column(Subscriber, 'keywords_key')}"
    upper = f"AND s.{pk} < %s" if until_reader is not None else ""
    # Only quoted table and column names from the models are formatted in; values are params.
    sql = f"""
        INSERT INTO {_table(Delivery)} ({names})
        SELECT %s, s.{pk}, s.{_column(Subscriber, "email")},
               COALESCE(string_agg(c.{category}::text, ',' ORDER BY c.{category}), '')
               || CASE WHEN {keywords_key} = ANY(%s) THEN %s || {keywords_key} ELSE '' END,
               %s, 0, '', '', '', %s
        FROM {_table(Subscriber)} s
        LEFT JOIN {_table(through)} c ON c.{reader} = s.{pk}
        WHERE s.{_column(Subscriber, "status")} = %s AND s.{_column(Subscriber, "cadence")} = %s
          AND s.{pk} >= %s {upper}
        GROUP BY s.{pk}
        ORDER BY s.{pk}
        ON CONFLICT DO NOTHING
    """  # noqa: S608
    params: list[int | str | datetime | list[str]] = [digest_id, keys, rendering.KEYWORDS_MARK]
    params += [str(Delivery.Status.QUEUED), timezone.now()]
    params += [str(Subscriber.Status.ACTIVE), cadence, from_reader]
    if until_reader is not None:
        params.append(until_reader)
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)


def chunks_plan_from(
    *, digest_id: int, first_row: int, carry: dict[str, int], final: bool
) -> tuple[list[list[int]], dict[str, int]]:
    """Chunks of the queued rows with id >= first_row, plus each group's carried rows (ids from
    carry[group] on). Not final: only full chunks; the rest of each group is carried."""
    low = min([first_row, *carry.values()])
    size = chunk_size()
    chunks: list[list[int]] = []
    left: dict[str, int] = {}
    small: list[list[int]] = []  # the last rows of keyword variants, packed together below
    for group, ids in _queued_groups(digest_id=digest_id, from_row=low).items():
        start = carry.get(group, first_row)
        ids = [pk for pk in ids if pk >= start]
        packed = final and rendering.KEYWORDS_MARK in group
        full = len(ids) if final and not packed else len(ids) - len(ids) % size
        chunks.extend(ids[i : i + size] for i in range(0, full, size))
        if full < len(ids) and packed:
            small.append(ids[full:])
        elif full < len(ids):
            left[group] = ids[full]
    return chunks + chunks_pack(small, size), left


def chunks_pack(groups: list[list[int]], size: int) -> list[list[int]]:
    """Small groups (keyword variants: a few readers each) share chunks of at most `size` rows,
    each group whole in one chunk, so each still costs one ESP call and there are not thousands
    of chunks of one reader each (largest first, the next chunk when one is full)."""
    bins: list[list[int]] = []
    for ids in sorted(groups, key=len, reverse=True):
        if not bins or len(bins[-1]) + len(ids) > size:
            bins.append([])
        bins[-1].extend(ids)
    return bins


def chunks_plan(*, digest_id: int) -> list[list[int]]:
    """Every queued row of the digest in chunks (a resume, a resend to the unknown)."""
    chunks, _ = chunks_plan_from(digest_id=digest_id, first_row=0, carry={}, final=True)
    return chunks


def _queued_groups(*, digest_id: int, from_row: int) -> dict[str, list[int]]:
    """Queued row ids with id >= from_row by "variant|language", each list in id order."""
    if db_connection.vendor == "postgresql":
        return _queued_groups_postgresql(digest_id=digest_id, from_row=from_row)
    return _queued_groups_portable(digest_id=digest_id, from_row=from_row)


def _queued_groups_portable(*, digest_id: int, from_row: int) -> dict[str, list[int]]:
    queued = Delivery.objects.filter(
        digest_id=digest_id, status=Delivery.Status.QUEUED, pk__gte=from_row
    )
    groups: dict[str, list[int]] = defaultdict(list)
    rows = queued.order_by("variant", "subscriber__language", "pk").values_list(
        "pk", "variant", "subscriber__language"
    )
    for pk, variant, language in rows:
        groups[f"{variant}|{language or ''}"].append(pk)
    return groups


def _queued_groups_postgresql(*, digest_id: int, from_row: int) -> dict[str, list[int]]:
    """As the portable path, with the grouping done by PostgreSQL: one row per variant and
    language (at most a few hundred) instead of one per delivery."""
    pk, variant = _column(Delivery, "id"), _column(Delivery, "variant")
    language = _column(Subscriber, "language")
    # Only quoted table and column names from the models are formatted in; values are params.
    sql = f"""
        SELECT d.{variant}, COALESCE(s.{language}, ''), array_agg(d.{pk} ORDER BY d.{pk})
        FROM {_table(Delivery)} d
        LEFT JOIN {_table(Subscriber)} s
            ON s.{_column(Subscriber, "id")} = d.{_column(Delivery, "subscriber")}
        WHERE d.{_column(Delivery, "digest")} = %s AND d.{_column(Delivery, "status")} = %s
            AND d.{pk} >= %s
        GROUP BY d.{variant}, s.{language}
        ORDER BY d.{variant}, s.{language}
    """  # noqa: S608
    groups: dict[str, list[int]] = {}
    with db_connection.cursor() as cursor:
        cursor.execute(sql, (digest_id, str(Delivery.Status.QUEUED), from_row))
        for variant_key, lang, ids in cursor.fetchall():
            groups[f"{variant_key}|{lang}"] = list(ids)
    return groups
