"""Collect: parsing every feed format, storing papers once, fetching politely."""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from digests.ingest import (
    FeedError,
    ParsedPaper,
    StoreResult,
    feed_fetch,
    feed_parse,
    feeds_fetch,
    listing_date,
    papers_store,
    submission_listing_date,
)
from digests.models import AnnounceType, Category, ClassifiedBy, Feed, FetchCount, Paper
from tests.fakes.local import POLL_INTERVAL

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
SHARED_FEEDS = Path(__file__).resolve().parents[3] / "shared" / "feeds"
DAY = date(2026, 8, 13)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def shared_feed_bytes(name: str) -> bytes:
    """A real snapshot from ../shared/feeds: skipped where absent, but CI always has them."""
    path = SHARED_FEEDS / name
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing on CI")
        pytest.skip(f"{path} is not here")
    return path.read_bytes()


def fixture_parse(name: str) -> dict[str, ParsedPaper]:
    return {paper.arxiv_id: paper for paper in feed_parse(content=fixture_bytes(name)).papers}


def rss2_item(
    arxiv_id: str,
    *,
    version: int = 1,
    kind: str = "new",
    title: str = "A Paper",
    abstract: str = "We do something.",
    categories: tuple[str, ...] = ("cs.AI",),
) -> str:
    tags = "".join(f"<category>{category}</category>" for category in categories)
    guid = f"oai:arXiv.org:{arxiv_id}v{version}"
    return f"""<item><title>{title}</title><link>https://arxiv.org/abs/{arxiv_id}</link>
<description>arXiv:{arxiv_id}v{version} Announce Type: {kind}
Abstract: {abstract}</description><guid isPermaLink="false">{guid}</guid>{tags}
<arxiv:announce_type>{kind}</arxiv:announce_type><dc:creator>Ada Lovelace</dc:creator></item>"""


def rss2_document(*items: str, day: date = DAY) -> bytes:
    """A small arXiv RSS 2.0 listing dated ``day``, in the real feed's shape."""
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/"
 version="2.0"><channel><title>cs.AI updates on arXiv.org</title>
<link>http://rss.arxiv.org/rss/cs.AI</link><description>cs.AI updates</description>
<pubDate>{day:%a, %d %b %Y} 00:00:00 -0400</pubDate>
{"".join(items)}</channel></rss>""".encode()


def listing_store(*items: str, day: date = DAY) -> StoreResult:
    return papers_store(papers=feed_parse(content=rss2_document(*items, day=day)).papers)


# --- RSS 2.0 -----------------------------------------------------------------------------------


def test_the_rss2_sample_is_read_item_by_item_with_its_announce_types() -> None:
    parsed = feed_parse(content=fixture_bytes("arxiv_rss2_sample.xml"))

    assert parsed.format == "rss2"
    assert parsed.skipped == 0
    assert len(parsed.papers) == 24
    assert Counter(paper.announce_type for paper in parsed.papers) == {
        "new": 16,
        "cross": 4,
        "replace": 2,
        "replace-cross": 2,
    }


def test_the_announce_type_prefix_is_removed_from_rss2_abstracts() -> None:
    paper = fixture_parse("arxiv_rss2_sample.xml")["2608.05101"]

    assert paper.abstract.startswith("Large language models (LLMs) often produce fluent")
    assert "Announce Type" not in paper.abstract
    assert "\n" not in paper.abstract


def test_tex_is_kept_as_written_and_html_entities_become_characters() -> None:
    papers = fixture_parse("arxiv_rss2_sample.xml")

    assert "in $\\mathcal{O}(n)$ time for $n$ tokens" in papers["2608.05102"].abstract
    assert "with $\\alpha < 1$ for aggressive pruning" in papers["2608.05111"].abstract
    assert "no learning-rate search & is robust" in papers["2608.05106"].abstract


def test_the_comma_separated_dc_creator_becomes_a_list_of_author_names() -> None:
    papers = fixture_parse("arxiv_rss2_sample.xml")

    assert papers["2608.05101"].authors == ["Maya Okafor", "Daniel Reuter", "Priya Natarajan"]
    assert papers["2608.05115"].authors == ["Claire Dubois", "Samuel Okoye", "Zoë Brennan"]


def test_ids_lose_their_version_and_links_point_at_canonical_arxiv() -> None:
    paper = fixture_parse("arxiv_rss2_sample.xml")["2606.08765"]

    assert (paper.arxiv_id, paper.version) == ("2606.08765", 3)
    assert paper.abs_url == "https://arxiv.org/abs/2606.08765"
    assert paper.pdf_url == "https://arxiv.org/pdf/2606.08765"


def test_categories_put_the_primary_category_first() -> None:
    cross = fixture_parse("arxiv_rss2_sample.xml")["2608.05118"]

    assert cross.categories == ["cs.RO", "cs.AI", "cs.LG"]
    assert cross.primary_category == "cs.RO"


def test_an_rss2_listing_is_dated_by_its_pub_date_in_new_york() -> None:
    papers = feed_parse(content=fixture_bytes("arxiv_rss2_sample.xml")).papers

    assert {paper.announced_on for paper in papers} == {DAY}


def test_a_default_date_overrides_the_dates_in_the_feed() -> None:
    parsed = feed_parse(
        content=fixture_bytes("arxiv_rss2_sample.xml"), default_date=date(2030, 1, 2)
    )

    assert {paper.announced_on for paper in parsed.papers} == {date(2030, 1, 2)}


def test_entries_without_an_id_title_abstract_or_authors_are_skipped_and_counted() -> None:
    parsed = feed_parse(content=fixture_bytes("arxiv_rss2_incomplete.xml"))

    assert [paper.arxiv_id for paper in parsed.papers] == ["2608.50001"]
    assert parsed.skipped == 4


def test_a_title_spread_over_lines_is_collapsed_to_one_line() -> None:
    paper = fixture_parse("arxiv_atom_sample.xml")["2604.05555"]

    assert paper.title == "Low-Rank Adapters Forget Less than Full Fine-Tuning"


# --- Atom listing and API ----------------------------------------------------------------------


def test_an_atom_listing_is_read_like_the_rss2_listing() -> None:
    parsed = feed_parse(content=fixture_bytes("arxiv_atom_sample.xml"))
    papers = {paper.arxiv_id: paper for paper in parsed.papers}

    assert parsed.format == "atom"
    assert [p.announce_type for p in parsed.papers] == ["new", "cross", "replace"]
    assert papers["2608.30001"].authors == ["Ingrid Solberg", "Mateo Ruiz"]
    assert papers["2608.30001"].abstract.startswith("We use the gradient noise scale")
    assert papers["2604.05555"].version == 4
    assert {p.announced_on for p in parsed.papers} == {DAY}


def test_an_api_response_gives_ids_versions_primary_categories_and_links() -> None:
    parsed = feed_parse(content=fixture_bytes("arxiv_api_sample.xml"))
    papers = {paper.arxiv_id: paper for paper in parsed.papers}
    paper = papers["2608.04321"]

    assert parsed.format == "atom-api"
    assert paper.version == 1
    assert paper.announce_type == AnnounceType.NEW
    assert paper.title == "Calibrated Uncertainty for Tool-Using Language Agents"
    assert paper.abstract.endswith("acting only when $p < 0.1$ halves harmful actions.")
    # ACM classes such as I.2.7 are not arXiv categories.
    assert paper.categories == ["cs.AI", "cs.CL"]
    assert paper.pdf_url == "https://arxiv.org/pdf/2608.04321"
    assert (papers["2505.01234"].version, papers["2505.01234"].announce_type) == (3, "replace")


def test_each_api_author_element_is_one_author_even_with_a_comma() -> None:
    paper = fixture_parse("arxiv_api_sample.xml")["2608.04321"]

    assert paper.authors == ["Farah Siddiqui", "Jean-Luc Picard, Jr."]


def test_api_entries_are_dated_by_arxivs_submission_schedule() -> None:
    papers = fixture_parse("arxiv_api_sample.xml")

    # Submitted Monday 13:30 New York time, before the 14:00 cut-off: listed on Tuesday.
    assert papers["2608.04321"].announced_on == date(2026, 8, 11)
    # v3 submitted Friday 15:00, after the cut-off: announced Monday evening, listed Tuesday.
    assert papers["2505.01234"].announced_on == date(2026, 8, 11)


def test_the_2016_style_api_response_is_read_like_the_current_one() -> None:
    parsed = feed_parse(content=fixture_bytes("arxiv_api_2016_sample.xml"))
    papers = {paper.arxiv_id: paper for paper in parsed.papers}

    assert parsed.format == "atom-api"
    assert papers["1607.01234"].version == 2
    assert papers["1607.01234"].announce_type == AnnounceType.REPLACE
    assert papers["1607.01234"].title == "Neural Machine Translation with Coverage Penalties"
    assert papers["1607.01234"].authors == ["Mariana Costa", "Yong Li"]
    assert papers["math/0309136"].categories == ["math.PR", "math.GR"]


def test_old_style_ids_with_a_slash_are_kept_whole() -> None:
    api = fixture_parse("arxiv_api_sample.xml")["cs/9909009"]
    rss1 = fixture_parse("arxiv_rss1_sample.xml")["cs/0601001"]

    assert (api.version, api.abs_url) == (1, "https://arxiv.org/abs/cs/9909009")
    assert (rss1.version, rss1.pdf_url) == (2, "https://arxiv.org/pdf/cs/0601001")


def test_an_api_error_feed_raises_a_feed_error_with_arxivs_reason() -> None:
    with pytest.raises(
        FeedError,
        match=r"^arXiv rejected the query as malformed: max_results must be an integer$",
    ):
        feed_parse(content=fixture_bytes("arxiv_api_error.xml"))


def test_an_api_response_without_results_is_an_empty_list() -> None:
    parsed = feed_parse(content=fixture_bytes("arxiv_api_empty.xml"))

    assert (parsed.papers, parsed.skipped, parsed.format) == ([], 0, "atom-api")


# --- RSS 1.0 -----------------------------------------------------------------------------------


def test_rss1_titles_lose_the_arxiv_suffix_and_abstracts_lose_their_html() -> None:
    paper = fixture_parse("arxiv_rss1_sample.xml")["1209.3001"]

    assert paper.title == "Fast Kernel Ridge Regression with Random Sketches"
    assert paper.abstract == (
        "Kernel ridge regression costs $O(n^3)$ time for $n$ samples. We sketch the kernel "
        "matrix with random projections and show that a sketch of size $m < n$ keeps the "
        "statistical risk within a constant factor. Experiments on three data sets confirm "
        "the speed-up & the accuracy."
    )


def test_rss1_author_links_become_plain_names() -> None:
    paper = fixture_parse("arxiv_rss1_sample.xml")["1209.3001"]

    assert paper.authors == ["Léon Marchetti", "Anna Ng"]


def test_rss1_announce_types_are_read_from_the_title() -> None:
    papers = fixture_parse("arxiv_rss1_sample.xml")

    assert {arxiv_id: paper.announce_type for arxiv_id, paper in papers.items()} == {
        "1209.3001": "new",
        "1209.3002": "cross",  # a stat.ML paper in the cs feed
        "1108.4321": "replace",  # UPDATED
        "1105.1234": "replace-cross",  # UPDATED, primary outside cs
        "1102.0987": "cross",  # CROSS LISTED
        "cs/0601001": "replace",
    }
    assert papers["1209.3002"].categories == ["stat.ML"]


def test_rss1_links_on_a_mirror_become_canonical_arxiv_links() -> None:
    paper = fixture_parse("arxiv_rss1_sample.xml")["1209.3002"]

    assert paper.abs_url == "https://arxiv.org/abs/1209.3002"


def test_an_rss1_listing_dated_after_8pm_in_new_york_is_the_next_days_listing() -> None:
    papers = feed_parse(content=fixture_bytes("arxiv_rss1_sample.xml")).papers

    # The channel's dc:date is 2012-09-12T20:30:00-05:00.
    assert {paper.announced_on for paper in papers} == {date(2012, 9, 13)}


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 8, 13, 4, 0, tzinfo=UTC), date(2026, 8, 13)),  # 00:00 EDT
        (datetime(2026, 8, 13, 23, 59, tzinfo=UTC), date(2026, 8, 13)),  # 19:59 EDT
        (datetime(2026, 8, 14, 0, 0, tzinfo=UTC), date(2026, 8, 14)),  # 20:00 EDT
        (datetime(2026, 1, 15, 1, 0, tzinfo=UTC), date(2026, 1, 15)),  # 20:00 EST, winter
    ],
)
def test_listing_date_moves_evening_announcements_to_the_next_day(
    moment: datetime, expected: date
) -> None:
    assert listing_date(moment) == expected


@pytest.mark.parametrize(
    ("submitted", "expected"),
    [
        (datetime(2026, 8, 10, 17, 59, tzinfo=UTC), date(2026, 8, 11)),  # Mon 13:59
        (datetime(2026, 8, 10, 18, 0, tzinfo=UTC), date(2026, 8, 12)),  # Mon 14:00
        (datetime(2026, 8, 14, 12, 0, tzinfo=UTC), date(2026, 8, 17)),  # Fri 08:00 -> Mon
        (datetime(2026, 8, 15, 12, 0, tzinfo=UTC), date(2026, 8, 18)),  # Sat -> Tue
    ],
)
def test_submission_dates_follow_the_2pm_cutoff_and_the_weekend(
    submitted: datetime, expected: date
) -> None:
    assert submission_listing_date(submitted) == expected


# --- Documents that are not feeds --------------------------------------------------------------


def test_a_malformed_document_is_rejected_whole() -> None:
    with pytest.raises(FeedError, match=r"^malformed XML at line \d+"):
        feed_parse(content=fixture_bytes("malformed_rss2.xml"))


def test_an_html_page_is_not_a_feed() -> None:
    with pytest.raises(FeedError, match="not a feed"):
        feed_parse(content=fixture_bytes("not_a_feed.html"))


def test_a_json_document_is_not_a_feed() -> None:
    with pytest.raises(FeedError, match="JSON"):
        feed_parse(content=b'[{"paper": {"id": "2606.00467"}}]')


def test_a_wrongly_declared_encoding_does_not_reject_the_feed() -> None:
    document = rss2_document(rss2_item("2608.60001", title="Caf\xe9 Models")).decode()
    latin1 = document.encode("latin-1")  # still says UTF-8 in its declaration

    parsed = feed_parse(content=latin1)

    assert [paper.title for paper in parsed.papers] == ["Café Models"]


# --- The real documents in ../shared/feeds -----------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    papers: int = 0
    skipped: int = 0
    types: dict[str, int] = field(default_factory=dict)
    day: date | None = None
    error: str = ""


SNAPSHOTS = {
    "cs.CL_2026-08-13_rss2.xml": Snapshot(
        139, types={"new": 56, "cross": 36, "replace": 32, "replace-cross": 15}, day=DAY
    ),
    "cs.AI_2026-07-27_rss2.xml": Snapshot(
        223,
        types={"new": 51, "cross": 92, "replace": 25, "replace-cross": 55},
        day=date(2026, 7, 27),
    ),
    "cs.AI_2026-04-27_rss2_trimmed3.xml": Snapshot(3, types={"new": 3}, day=date(2026, 4, 27)),
    "cs.CL_2026-04-27_rss2_trimmed3.xml": Snapshot(3, day=date(2026, 4, 27)),
    "cs.LG_2026-04-27_rss2_trimmed3.xml": Snapshot(3, day=date(2026, 4, 27)),
    # 54 titles say UPDATED, one says CROSS LISTED.
    "math_2012-09-12_rss1.xml": Snapshot(126, day=date(2012, 9, 13)),
    "api_query_au-del_maestro_2016-10-09_atom.xml": Snapshot(10),
    "api_query_id_list-1111.2011v2_2016_atom.xml": Snapshot(1, types={"replace": 1}),
    "api_query_all-testing_m100_2026-04-12_atom.xml": Snapshot(100),
    "api_query_all-cs.AI_m20_2026-02-06_atom.xml": Snapshot(20),
    "api_query_all-electron_m10_2025-11-21_atom.xml": Snapshot(10),
    "api_query_cat-cs.LG-OR-cs.AI_m20_2026-04-30_atom.xml": Snapshot(20),
    "api_query_id_list-1706.03762_2026-08-13_atom.xml": Snapshot(1, types={"replace": 1}),
    "api_query_zero_results_2026-08-14_atom.xml": Snapshot(0),
    "api_query_error_start-not-integer_2026-08-14_atom.xml": Snapshot(
        error="arXiv rejected the query as malformed: start must be an integer"
    ),
    "api_query_testing_m100_2026-04-12_recorded.json": Snapshot(error="not a feed"),
    "hf_daily_papers_api_2026-06-12.json": Snapshot(error="not a feed"),
    # Neither names authors in a field, and Takara links to its own site: nothing is stored.
    "hf-daily-papers_2026-04-30_rss2.xml": Snapshot(0, skipped=22),
    "takara-tldr_daily-ai-papers_2026-04-30_rss2.xml": Snapshot(0, skipped=50),
}
_ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z-]+(\.[A-Z]{2})?/\d{7})$")


def test_every_real_snapshot_in_shared_feeds_has_an_expectation() -> None:
    if not SHARED_FEEDS.is_dir():
        pytest.skip(f"{SHARED_FEEDS} is not here")
    documents = {path.name for path in SHARED_FEEDS.iterdir() if path.suffix in (".xml", ".json")}

    assert documents == set(SNAPSHOTS)


@pytest.mark.parametrize("name", sorted(SNAPSHOTS))
def test_a_real_feed_snapshot_is_read_as_sources_md_describes(name: str) -> None:
    path = SHARED_FEEDS / name
    shared_feed_bytes(name)
    expected = SNAPSHOTS[name]
    if expected.error:
        with pytest.raises(FeedError, match=re.escape(expected.error)):
            feed_parse(content=path.read_bytes())
        return

    parsed = feed_parse(content=path.read_bytes())

    assert (len(parsed.papers), parsed.skipped) == (expected.papers, expected.skipped)
    types = Counter(paper.announce_type for paper in parsed.papers)
    for kind, count in expected.types.items():
        assert types[kind] == count, kind
    if expected.day:
        assert {paper.announced_on for paper in parsed.papers} == {expected.day}
    for paper in parsed.papers:
        assert paper.title and paper.abstract and paper.authors, paper.arxiv_id
        assert not paper.abstract.startswith("arXiv:"), paper.arxiv_id
        assert "<p>" not in paper.abstract and "(arXiv:" not in paper.title, paper.arxiv_id
        assert _ARXIV_ID.match(paper.arxiv_id), paper.arxiv_id
        assert paper.abs_url == f"https://arxiv.org/abs/{paper.arxiv_id}"
        assert paper.primary_category == paper.categories[0]


def test_the_real_rss1_snapshot_reads_updated_and_cross_listed_titles() -> None:
    path = SHARED_FEEDS / "math_2012-09-12_rss1.xml"
    if not path.exists():
        pytest.skip(f"{path} is not here")

    papers = {paper.arxiv_id: paper for paper in feed_parse(content=path.read_bytes()).papers}
    types = Counter(paper.announce_type for paper in papers.values())

    assert types["replace"] + types["replace-cross"] == 54
    assert papers["0901.1155"].announce_type == "cross"
    assert papers["1209.2459"].announce_type == "cross"  # a hep-th paper in the math feed
    assert papers["1209.2411"].authors == ["Gerardo Hernandez-del-Valle"]


# --- Storing -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_storing_the_sample_creates_one_paper_per_arxiv_id() -> None:
    papers = feed_parse(content=fixture_bytes("arxiv_rss2_sample.xml")).papers

    result = papers_store(papers=[*papers, papers[0]])

    assert (result.created, result.replaced, result.unchanged) == (24, 0, 1)
    stored = Paper.objects.get(arxiv_id="2608.05118")
    assert stored.authors == ["Sven Eriksson", "Natalia Ivanova"]
    assert stored.categories == ["cs.RO", "cs.AI", "cs.LG"]
    assert (stored.announce_type, stored.announced_on) == ("cross", DAY)


@pytest.mark.django_db
def test_a_replace_announcement_updates_the_version_but_never_makes_the_paper_new_again() -> None:
    listing_store(rss2_item("2608.70001", title="First Title"))
    category = Category.objects.create(name="Agents", slug="agents")
    Paper.objects.filter(arxiv_id="2608.70001").update(
        category=category, importance=7, classified_by=ClassifiedBy.LLM
    )
    next_day = date(2026, 8, 14)

    result = listing_store(
        rss2_item("2608.70001", version=2, kind="replace", title="Better Title", abstract="New."),
        day=next_day,
    )

    paper = Paper.objects.get(arxiv_id="2608.70001")
    assert result.replaced == 1
    assert (paper.version, paper.title, paper.abstract) == (2, "Better Title", "New.")
    assert paper.replaced_on == next_day
    assert (paper.announce_type, paper.announced_on) == ("new", DAY)
    assert (paper.category, paper.importance, paper.classified_by) == (category, 7, "llm")


@pytest.mark.django_db
def test_a_replacement_of_a_paper_never_seen_is_stored_as_a_replacement() -> None:
    listing_store(rss2_item("2601.00042", version=3, kind="replace-cross"))

    paper = Paper.objects.get(arxiv_id="2601.00042")
    assert (paper.announce_type, paper.version, paper.replaced_on) == ("replace-cross", 3, DAY)


@pytest.mark.django_db
def test_fetching_the_same_feed_twice_changes_nothing() -> None:
    content = fixture_bytes("arxiv_rss2_sample.xml")
    papers_store(papers=feed_parse(content=content).papers)
    before = list(Paper.objects.values_list("arxiv_id", "version", "updated_at"))

    again = papers_store(papers=feed_parse(content=content).papers)

    assert (again.created, again.replaced, again.unchanged) == (0, 0, 24)
    assert list(Paper.objects.values_list("arxiv_id", "version", "updated_at")) == before


@pytest.mark.django_db
def test_a_later_new_listing_never_moves_a_papers_announcement_date() -> None:
    listing_store(rss2_item("2608.70002"))

    listing_store(rss2_item("2608.70002", title="Listed Again"), day=date(2026, 8, 20))

    paper = Paper.objects.get(arxiv_id="2608.70002")
    assert (paper.announced_on, paper.title) == (DAY, "A Paper")


@pytest.mark.django_db
def test_an_older_version_never_overwrites_a_newer_one() -> None:
    listing_store(rss2_item("2608.70003", version=3, kind="replace", title="Version Three"))

    result = listing_store(rss2_item("2608.70003", version=2, kind="replace", title="Two"))

    assert result.unchanged == 1
    assert Paper.objects.get(arxiv_id="2608.70003").title == "Version Three"


@pytest.mark.django_db
def test_cross_lists_are_not_stored_when_the_digest_leaves_them_out(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DIGEST_INCLUDE_CROSSLISTS = False

    result = listing_store(rss2_item("2608.70004"), rss2_item("2608.70005", kind="cross"))

    assert (result.created, result.skipped_crosslists) == (1, 1)
    assert list(Paper.objects.values_list("arxiv_id", flat=True)) == ["2608.70004"]


@pytest.mark.django_db
def test_storing_a_thousand_papers_takes_a_handful_of_queries(
    django_assert_max_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    template = feed_parse(content=rss2_document(rss2_item("2608.80000"))).papers[0]
    papers = [replace(template, arxiv_id=f"2608.{80000 + n}") for n in range(1000)]

    # SQLite caps the parameters of one statement (999), so the bulk writes go in batches of
    # a few dozen rows: a few dozen queries in all, where one per paper would be thousands.
    with django_assert_max_num_queries(25):
        first = papers_store(papers=papers)
    replacements = [replace(paper, version=2, announce_type="replace") for paper in papers]
    with django_assert_max_num_queries(25):
        second = papers_store(papers=replacements)

    assert (first.created, second.replaced) == (1000, 1000)


# --- Fetching feeds ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_malformed_feed_stores_nothing_and_records_the_error_while_the_other_goes_on() -> None:
    broken, good = str(FIXTURES / "malformed_rss2.xml"), str(FIXTURES / "arxiv_rss2_sample.xml")

    results = feeds_fetch(urls=[broken, good])

    assert [result.ok for result in results] == [False, True]
    assert not Paper.objects.filter(arxiv_id="2608.40001").exists()
    assert Paper.objects.count() == 24
    row = Feed.objects.get(url=broken)
    assert row.last_status == Feed.Status.ERROR
    assert row.last_error.startswith("malformed XML at line 23")
    assert row.consecutive_failures == 1 and row.last_fetched_at is not None
    good_row = Feed.objects.get(url=good)
    assert (good_row.last_status, good_row.last_entry_count) == (Feed.Status.OK, 24)
    assert Paper.objects.get(arxiv_id="2608.05101").source_feed == good_row


@pytest.mark.django_db
def test_a_success_after_failures_resets_the_failure_count() -> None:
    feed = Feed.objects.create(url=str(FIXTURES / "arxiv_rss2_sample.xml"))
    Feed.objects.filter(pk=feed.pk).update(consecutive_failures=3, last_error="earlier")
    feed.refresh_from_db()

    result = feed_fetch(feed=feed)

    feed.refresh_from_db()
    assert result.ok and result.parsed == 24
    assert (feed.consecutive_failures, feed.last_error, feed.last_status) == (0, "", "ok")
    assert feed.last_success_at is not None


@pytest.mark.django_db
def test_a_missing_file_is_a_failure_that_counts_up() -> None:
    feed = Feed.objects.create(url="/nonexistent/feed.xml")

    feed_fetch(feed=feed)
    result = feed_fetch(feed=feed)

    feed.refresh_from_db()
    assert not result.ok and "cannot read /nonexistent/feed.xml" in result.error
    assert (feed.consecutive_failures, feed.last_status) == (2, Feed.Status.ERROR)


@pytest.mark.django_db
def test_a_file_url_is_read_from_disk() -> None:
    feed = Feed.objects.create(url=(FIXTURES / "arxiv_atom_sample.xml").as_uri())

    result = feed_fetch(feed=feed)

    assert (result.ok, result.parsed) == (True, 3)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]


class FeedServer:
    """A local HTTP server that answers with set responses and records every request."""

    def __init__(self) -> None:
        self.answers: dict[str, Callable[[dict[str, str]], Answer]] = {}
        self.received: list[Received] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = dict(self.headers.items())
                server.received.append(Received(time.monotonic(), self.path, headers))
                answer = server.answers.get(self.path, lambda _: Answer(404, b"not found"))(headers)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, path: str, answer: Answer | Callable[[dict[str, str]], Answer]) -> str:
        self.answers[path] = answer if callable(answer) else (lambda _: answer)
        return self.base_url + path


@contextmanager
def feed_server_started() -> Iterator[FeedServer]:
    server = FeedServer()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(POLL_INTERVAL,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with feed_server_started() as server:
        yield server


@pytest.mark.django_db
def test_an_http_fetch_sends_the_user_agent_and_keeps_the_validators(
    feed_server: FeedServer,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.FEED_USER_AGENT = "DailyAIInsights-test/1.0"
    validators = {"ETag": '"v1"', "Last-Modified": "Thu, 13 Aug 2026 04:00:00 GMT"}
    url = feed_server.serve(
        "/rss/cs.AI", Answer(200, fixture_bytes("arxiv_rss2_sample.xml"), validators)
    )
    feed = Feed.objects.create(url=url)

    result = feed_fetch(feed=feed)

    feed.refresh_from_db()
    assert (result.ok, result.parsed, result.store.created) == (True, 24, 24)  # type: ignore[union-attr]
    assert feed_server.received[0].headers["User-Agent"] == "DailyAIInsights-test/1.0"
    assert "If-None-Match" not in feed_server.received[0].headers
    assert (feed.etag, feed.last_modified) == ('"v1"', "Thu, 13 Aug 2026 04:00:00 GMT")


@pytest.mark.django_db
def test_a_304_answer_to_a_conditional_get_is_not_modified_and_parses_nothing(
    feed_server: FeedServer,
) -> None:
    def conditional(headers: dict[str, str]) -> Answer:
        if headers.get("If-None-Match") == '"v1"':
            return Answer(304)
        return Answer(200, fixture_bytes("arxiv_rss2_sample.xml"), {"ETag": '"v1"'})

    feed = Feed.objects.create(url=feed_server.serve("/rss/cs.AI", conditional))
    feed_fetch(feed=feed)

    result = feed_fetch(feed=feed)

    feed.refresh_from_db()
    sent = feed_server.received[1].headers
    assert (result.ok, result.not_modified, result.parsed) == (True, True, 0)
    assert result.describe().endswith(" : not modified")
    assert sent["If-None-Match"] == '"v1"' and sent["User-Agent"]
    assert (feed.last_status, feed.etag, feed.last_entry_count) == ("not_modified", '"v1"', 24)


@pytest.mark.django_db
def test_an_http_500_is_recorded_as_a_failure(feed_server: FeedServer) -> None:
    feed = Feed.objects.create(url=feed_server.serve("/rss/cs.AI", Answer(500, b"oops")))

    result = feed_fetch(feed=feed)

    feed.refresh_from_db()
    assert (result.ok, result.error) == (False, "HTTP 500 Internal Server Error")
    assert (feed.last_status, feed.last_error, feed.consecutive_failures) == (
        "error",
        "HTTP 500 Internal Server Error",
        1,
    )


@pytest.mark.django_db
def test_an_api_error_answer_is_recorded_with_arxivs_reason(feed_server: FeedServer) -> None:
    answer = Answer(400, fixture_bytes("arxiv_api_error.xml"), {"Content-Type": "application/xml"})
    feed = Feed.objects.create(url=feed_server.serve("/api/query?max_results=x", answer))

    result = feed_fetch(feed=feed)

    assert result.error == (
        "arXiv rejected the query as malformed: max_results must be an integer"
        " (HTTP 400 Bad Request)"
    )


@pytest.mark.django_db
def test_the_real_400_error_document_is_a_malformed_query_never_an_empty_day(
    feed_server: FeedServer,
) -> None:
    document = shared_feed_bytes("api_query_error_start-not-integer_2026-08-14_atom.xml")
    url = feed_server.serve("/api/query?search_query=cat:cs.CL&start=nope", Answer(400, document))
    feed = Feed.objects.create(url=url)

    result = feed_fetch(feed=feed)

    feed.refresh_from_db()
    assert (result.ok, result.parsed) == (False, 0)
    assert result.error == (
        "arXiv rejected the query as malformed: start must be an integer (HTTP 400 Bad Request)"
    )
    assert (feed.last_status, feed.consecutive_failures) == ("error", 1)
    assert not FetchCount.objects.exists()


@pytest.mark.django_db
def test_the_error_document_is_a_failure_even_when_served_with_200(
    feed_server: FeedServer,
) -> None:
    document = shared_feed_bytes("api_query_error_start-not-integer_2026-08-14_atom.xml")
    feed = Feed.objects.create(
        url=feed_server.serve("/api/query?start=nope", Answer(200, document))
    )

    result = feed_fetch(feed=feed)

    assert result.error == "arXiv rejected the query as malformed: start must be an integer"


@pytest.mark.django_db
def test_the_real_zero_result_answer_is_a_success_with_no_entries(
    feed_server: FeedServer,
) -> None:
    document = shared_feed_bytes("api_query_zero_results_2026-08-14_atom.xml")
    feed = Feed.objects.create(url=feed_server.serve("/api/query?q=none", Answer(200, document)))

    result = feed_fetch(feed=feed)

    feed.refresh_from_db()
    assert (result.ok, result.parsed, result.error) == (True, 0, "")
    assert (feed.last_status, feed.last_entry_count) == ("ok", 0)


@pytest.mark.django_db
def test_a_400_from_the_api_without_its_error_document_is_still_a_malformed_query(
    feed_server: FeedServer,
) -> None:
    api = Feed.objects.create(url=feed_server.serve("/api/query?x=1", Answer(400, b"<html/>")))
    other = Feed.objects.create(url=feed_server.serve("/rss/cs.CL", Answer(400, b"<html/>")))

    assert feed_fetch(feed=api).error == (
        "arXiv rejected the query as malformed: HTTP 400 Bad Request"
    )
    assert feed_fetch(feed=other).error == "HTTP 400 Bad Request"


@pytest.mark.django_db
def test_an_html_page_served_instead_of_the_feed_is_a_failure(feed_server: FeedServer) -> None:
    page = Answer(200, fixture_bytes("not_a_feed.html"), {"Content-Type": "text/html"})
    feed = Feed.objects.create(url=feed_server.serve("/rss/cs.AI", page))

    result = feed_fetch(feed=feed)

    assert not result.ok and result.error.startswith("not a feed")
    assert not Paper.objects.exists()


@pytest.mark.django_db
def test_a_body_over_feed_max_bytes_is_refused(feed_server: FeedServer, settings) -> None:  # type: ignore[no-untyped-def]
    settings.FEED_MAX_BYTES = 1000
    url = feed_server.serve("/big", Answer(200, fixture_bytes("arxiv_rss2_sample.xml")))

    result = feed_fetch(feed=Feed.objects.create(url=url))

    assert not result.ok and "FEED_MAX_BYTES" in result.error


@pytest.mark.django_db
def test_a_refused_connection_is_a_network_error(feed_server: FeedServer) -> None:
    url = feed_server.base_url + "/gone"
    feed_server.httpd.shutdown()
    feed_server.httpd.server_close()

    result = feed_fetch(feed=Feed.objects.create(url=url))

    assert not result.ok and result.error.startswith("network error")


@pytest.mark.django_db
def test_requests_to_an_arxiv_host_are_spaced_by_the_minimum_interval(
    feed_server: FeedServer,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_HOSTS = ["127.0.0.1"]
    settings.ARXIV_MIN_INTERVAL = 0.3
    urls = [
        feed_server.serve(f"/rss/{name}", Answer(200, fixture_bytes("arxiv_api_empty.xml")))
        for name in ("cs.AI", "cs.CL", "cs.LG")
    ]

    results = feeds_fetch(urls=urls)

    assert all(result.ok for result in results)
    times = [request.at for request in feed_server.received]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 2 and min(gaps) >= 0.29, gaps


@pytest.mark.django_db
def test_hosts_that_are_not_arxiv_are_not_throttled(
    feed_server: FeedServer,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.ARXIV_HOSTS = ["arxiv.org"]
    settings.ARXIV_MIN_INTERVAL = 5.0
    urls = [
        feed_server.serve(f"/feed/{n}", Answer(200, fixture_bytes("arxiv_api_empty.xml")))
        for n in range(3)
    ]
    started = time.monotonic()

    feeds_fetch(urls=urls)

    assert time.monotonic() - started < 2
