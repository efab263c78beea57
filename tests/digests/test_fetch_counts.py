"""What each fetch saw, per arXiv category (FetchCount), and what arXiv's listing page says.

The counts of real feeds are checked against counts taken here straight from the documents
(``arxiv:announce_type`` values, the API's primary categories and versions), not against the
parser's own reading."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from digests.ingest import feed_fetch, feed_parse, fetch_counts_build
from digests.models import Feed, FetchCount, Paper
from tests.digests.test_arxiv_http import FakeTime
from tests.digests.test_ingest import (
    Answer,
    FeedServer,
    feed_server_started,
    rss2_document,
    rss2_item,
    shared_feed_bytes,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LISTING = (FIXTURES / "listings" / "cs.CL_new_2026-08-13.html").read_bytes()
CS_CL = "cs.CL_2026-08-13_rss2.xml"
CS_AI = "cs.AI_2026-07-27_rss2.xml"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server_started() as started:
        yield started


def announce_types(document: bytes) -> Counter[str]:
    """The document's own count: its arxiv:announce_type values, replacements together."""
    found = Counter(re.findall(rb"<arxiv:announce_type>([^<]+)<", document))
    return Counter(
        new=found[b"new"],
        cross=found[b"cross"],
        replaced=found[b"replace"] + found[b"replace-cross"],
    )


def shared_feed_fetch(name: str, tmp_path: Path, *, url: str = "") -> tuple[Feed, bytes]:
    document = shared_feed_bytes(name)
    path = tmp_path / name
    path.write_bytes(document)
    feed = Feed.objects.create(url=url or str(path))
    return feed, document


def small_cs_cl_feed(tmp_path: Path) -> Feed:
    """A three-entry cs.CL listing of 13 August 2026, quicker to read than the real one."""
    items = [rss2_item(f"2608.1000{n}", categories=("cs.CL",)) for n in range(3)]
    document = rss2_document(*items).replace(b"<title>cs.AI updates", b"<title>cs.CL updates")
    path = tmp_path / "cs.CL_small.xml"
    path.write_bytes(document)
    return Feed.objects.create(url=str(path))


def row_figures(row: FetchCount) -> tuple[str, date | None, int, int, int, int]:
    return (row.arxiv_category, row.announced_on, row.new, row.cross, row.replaced, row.known)


# --- Counts of real feeds ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "category", "day"), [(CS_CL, "cs.CL", date(2026, 8, 13)), (CS_AI, "cs.AI", None)]
)
def test_a_real_category_feed_writes_one_row_with_its_announce_types(
    name: str, category: str, day: date | None, tmp_path: Path
) -> None:
    feed, document = shared_feed_fetch(name, tmp_path)
    expected = announce_types(document)

    result = feed_fetch(feed=feed)

    row = FetchCount.objects.get()
    assert result.counts == [row]
    assert (row.feed, row.arxiv_category, row.known) == (feed, category, 0)
    assert (row.new, row.cross, row.replaced) == (
        expected["new"],
        expected["cross"],
        expected["replaced"],
    )
    assert row.announced_on == (day or feed_parse(content=document).feed_date)
    assert (row.expected_new, row.expected_cross, row.expected_replaced) == (None, None, None)


@pytest.mark.django_db
def test_the_cs_cl_feed_of_13_august_counts_56_new_36_cross_and_47_replaced(
    tmp_path: Path,
) -> None:
    feed, _ = shared_feed_fetch(CS_CL, tmp_path)

    feed_fetch(feed=feed)

    assert row_figures(FetchCount.objects.get()) == ("cs.CL", date(2026, 8, 13), 56, 36, 47, 0)


@pytest.mark.django_db
def test_the_same_feed_served_again_shows_all_its_new_and_cross_entries_as_known(
    tmp_path: Path,
) -> None:
    feed, _ = shared_feed_fetch(CS_CL, tmp_path)
    feed_fetch(feed=feed)

    result = feed_fetch(feed=feed)

    assert row_figures(result.counts[0]) == ("cs.CL", date(2026, 8, 13), 56, 36, 47, 92)
    assert FetchCount.objects.count() == 2


@pytest.mark.django_db
def test_a_stale_feed_with_a_current_date_counts_yesterdays_entries_as_known() -> None:
    yesterday = rss2_document(
        *(rss2_item(f"2608.0{n:04d}") for n in range(10)), day=date(2026, 8, 12)
    )
    papers = feed_parse(content=yesterday).papers
    Paper.objects.bulk_create(
        Paper(arxiv_id=p.arxiv_id, title=p.title, announced_on=p.announced_on) for p in papers
    )
    # Today's feed: nine of yesterday's entries again, one new one, dated today.
    items = [rss2_item(f"2608.0{n:04d}") for n in range(1, 10)] + [rss2_item("2608.09999")]
    stale = rss2_document(*items, day=date(2026, 8, 13))

    counts = fetch_counts_build(
        parsed=feed_parse(content=stale), known_ids={p.arxiv_id for p in papers}
    )

    assert [row_figures(row) for row in counts] == [("cs.AI", date(2026, 8, 13), 10, 0, 0, 9)]


def test_a_multi_category_listing_counts_each_paper_in_every_category_that_lists_it() -> None:
    document = rss2_document(
        rss2_item("2608.00001", categories=("cs.AI", "cs.CL")),  # cs.AI's, cross-listed to cs.CL
        rss2_item("2608.00002", categories=("cs.CL",)),
        rss2_item("2608.00003", kind="cross", categories=("cs.LG", "cs.AI")),
        rss2_item("2608.00004", version=2, kind="replace", categories=("cs.CL", "cs.AI")),
    ).replace(b"<title>cs.AI updates", b"<title>cs.AI+cs.CL updates")

    parsed = feed_parse(content=document)
    counts = fetch_counts_build(parsed=parsed, known_ids={"2608.00002"})

    assert parsed.subjects == ["cs.AI", "cs.CL"]
    assert [row_figures(row) for row in counts] == [
        ("cs.AI", date(2026, 8, 13), 1, 1, 1, 0),
        ("cs.CL", date(2026, 8, 13), 1, 1, 1, 1),
    ]


@pytest.mark.django_db
def test_an_api_answer_is_counted_per_primary_category_of_its_entries(tmp_path: Path) -> None:
    feed, document = shared_feed_fetch(
        "api_query_cat-cs.LG-OR-cs.AI_m20_2026-04-30_atom.xml", tmp_path
    )
    expected: Counter[tuple[str, str]] = Counter()
    for entry in document.split(b"<entry>")[1:]:
        primary = re.search(rb'primary_category[^>]*term="([^"]+)"', entry)
        version = re.search(rb"<id>http://arxiv\.org/abs/[^<]+v(\d+)</id>", entry)
        assert primary and version
        kind = "new" if version.group(1) == b"1" else "replaced"
        expected[(primary.group(1).decode(), kind)] += 1

    feed_fetch(feed=feed)

    counted: Counter[tuple[str, str]] = Counter()
    for row in FetchCount.objects.all():
        counted[(row.arxiv_category, "new")] += row.new
        counted[(row.arxiv_category, "replaced")] += row.replaced
        assert row.cross == 0 and row.announced_on is not None
    assert +counted == expected


@pytest.mark.django_db
def test_an_empty_listing_still_writes_a_row_for_its_category() -> None:
    feed = Feed.objects.create(url="/empty")
    counts = fetch_counts_build(parsed=feed_parse(content=rss2_document()), known_ids=set())

    assert [row_figures(row) for row in counts] == [("cs.AI", date(2026, 8, 13), 0, 0, 0, 0)]
    assert feed.counts.count() == 0  # building writes nothing


@pytest.mark.django_db
def test_a_not_modified_fetch_writes_no_row(server: FeedServer) -> None:
    def conditional(headers: dict[str, str]) -> Answer:
        if headers.get("If-None-Match") == '"v1"':
            return Answer(304)
        return Answer(200, rss2_document(rss2_item("2608.00001")), {"ETag": '"v1"'})

    feed = Feed.objects.create(url=server.serve("/rss/cs.AI", conditional))
    feed_fetch(feed=feed)

    result = feed_fetch(feed=feed)

    assert result.not_modified and result.counts == []
    assert FetchCount.objects.count() == 1


@pytest.mark.django_db
def test_a_failed_fetch_writes_no_row(server: FeedServer) -> None:
    feed = Feed.objects.create(url=server.serve("/rss/cs.AI", Answer(500, b"")))

    assert not feed_fetch(feed=feed).ok
    assert not FetchCount.objects.exists()


# --- The listing page --------------------------------------------------------------------------


@pytest.fixture
def listing_check(server: FeedServer, settings) -> FeedServer:  # type: ignore[no-untyped-def]
    settings.ARXIV_LISTING_CHECK = True
    settings.ARXIV_LISTING_URL = server.base_url + "/list/{category}/new"
    return server


@pytest.mark.django_db
def test_with_the_listing_check_on_the_listing_pages_totals_become_the_expected_counts(
    listing_check: FeedServer, tmp_path: Path
) -> None:
    listing_check.serve("/list/cs.CL/new", Answer(200, LISTING, {"Content-Type": "text/html"}))
    feed, _ = shared_feed_fetch(CS_CL, tmp_path)

    result = feed_fetch(feed=feed, pace=FakeTime().pace())

    row = FetchCount.objects.get()
    assert (row.expected_new, row.expected_cross, row.expected_replaced) == (56, 36, 47)
    assert (row.new, row.cross, row.replaced) == (56, 36, 47)
    assert result.listing_errors == []
    assert [request.path for request in listing_check.received] == ["/list/cs.CL/new"]
    assert "(listing page: 56 new, 36 cross-listed, 47 replaced)" in result.describe_counts()[0]


@pytest.mark.django_db
def test_the_older_wording_of_the_listing_page_is_read_the_same_way(
    listing_check: FeedServer, tmp_path: Path
) -> None:
    older = (
        LISTING.replace(b"Cross submissions (", b"Cross-lists (")
        .replace(b"Replacement submissions (", b"Replacements (")
        .replace(b"showing 47 of 47", b"showing first 25 of 47")
    )
    listing_check.serve("/list/cs.CL/new", Answer(200, older))
    feed = small_cs_cl_feed(tmp_path)

    feed_fetch(feed=feed, pace=FakeTime().pace())

    row = FetchCount.objects.get()
    assert (row.expected_new, row.expected_cross, row.expected_replaced) == (56, 36, 47)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer(500, b"oops"), "HTTP 500 Internal Server Error"),
        (Answer(200, b"<html><body>Maintenance</body></html>"), "no 'New submissions"),
        (Answer(503, b"", {"Retry-After": "9999"}), "throttled: HTTP 503 Service Unavailable"),
        (
            Answer(200, LISTING.replace(b"Thursday, 13 August", b"Friday, 14 August")),
            "the listing page shows 2026-08-14, the feed claims 2026-08-13",
        ),
    ],
)
def test_a_listing_page_that_fails_leaves_the_expectations_empty_and_the_fetch_ok(
    listing_check: FeedServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    answer: Answer,
    reason: str,
) -> None:
    listing_check.serve("/list/cs.CL/new", answer)
    feed = small_cs_cl_feed(tmp_path)

    with caplog.at_level(logging.WARNING, logger="digests.ingest"):
        result = feed_fetch(feed=feed, pace=FakeTime().pace())

    row = FetchCount.objects.get()
    assert result.ok and row.new == 3
    assert (row.expected_new, row.expected_cross, row.expected_replaced) == (None, None, None)
    assert len(result.listing_errors) == 1 and reason in result.listing_errors[0]
    assert reason in caplog.text
    assert f"  listing page not read: {result.listing_errors[0]}" in result.describe_counts()


@pytest.mark.django_db
def test_the_listing_check_reads_nothing_for_an_api_query(
    listing_check: FeedServer, tmp_path: Path
) -> None:
    feed, _ = shared_feed_fetch("api_query_cat-cs.LG-OR-cs.AI_m20_2026-04-30_atom.xml", tmp_path)

    assert feed_fetch(feed=feed, pace=FakeTime().pace()).ok
    assert listing_check.received == []


# --- The command -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_fetch_papers_prints_each_categorys_counts_under_its_feed(tmp_path: Path) -> None:
    feed, _ = shared_feed_fetch(CS_CL, tmp_path)
    out = StringIO()

    call_command("fetch_papers", "--feed", feed.url, stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"{feed.url} : 139 parsed")
    assert lines[1] == ("  cs.CL 2026-08-13: 56 new, 36 cross-listed, 47 replaced, 0 already known")
