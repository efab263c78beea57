"""The integrity of a day (issue 11): short, stale and under-listed categories are suspect with
their figures, a holiday is told apart from broken feeds, the build stores and prints the
verdict, the issue's page shows it, and a suspect draft can be fetched again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.test import Client

from digests.build import digest_build
from digests.ingest import feeds_fetch
from digests.integrity import DayKind, day_integrity, latest_claimed_day
from digests.models import DailyRun, Digest, Feed, FetchCount, Paper
from digests.pipeline import daily_run
from tests.admin_forms import change_page, digest_url, page_text, shown_messages
from tests.factories import paper_create

pytestmark = pytest.mark.django_db

DAY = date(2026, 8, 13)  # a Thursday
Capture = Callable[..., Any]


# --- Test data ---------------------------------------------------------------------------------


def feed_create(url: str = "https://rss.arxiv.org/rss/cs.AI", **fields: Any) -> Feed:
    return Feed.objects.create(url=url, name=fields.pop("name", url), **fields)


def count_create(
    *,
    category: str = "cs.AI",
    day: date = DAY,
    new: int = 0,
    cross: int = 0,
    replaced: int = 0,
    known: int = 0,
    feed: Feed | None = None,
    at: datetime | None = None,
    **expected: int | None,
) -> FetchCount:
    """One fetch's row (what digests/ingest.py writes per feed and arXiv category)."""
    return FetchCount.objects.create(
        feed=feed,
        fetched_at=at or datetime.combine(day, datetime.min.time(), tzinfo=UTC),
        arxiv_category=category,
        announced_on=day,
        new=new,
        cross=cross,
        replaced=replaced,
        known=known,
        **expected,
    )


def announcement_days(before: date, count: int) -> list[date]:
    """The `count` weekdays before `before`, latest first."""
    days: list[date] = []
    day = before
    while len(days) < count:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            days.append(day)
    return days


def history_create(
    *, category: str = "cs.AI", new: Sequence[int] | int = 100, feed: Feed | None = None
) -> None:
    """A category's usual days before DAY (20 of them, or one per given count)."""
    counts = [new] * 20 if isinstance(new, int) else list(new)
    for day, count in zip(announcement_days(DAY, len(counts)), counts, strict=True):
        count_create(category=category, day=day, new=count, cross=count // 4, feed=feed)


def default_feed_off() -> None:
    """The migration's feed (rss.arxiv.org) is never read in tests."""
    Feed.objects.update(enabled=False)


def category(integrity: Any, name: str) -> Any:
    return next(c for c in integrity.categories if c.category == name)


# --- Judging a day -----------------------------------------------------------------------------


def test_a_normal_day_is_not_suspect() -> None:
    history_create(new=[90, 100, 110, 95, 105])
    count_create(new=96, cross=25, replaced=10, known=2)

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.OK
    assert not integrity.suspect
    ai = category(integrity, "cs.AI")
    assert not ai.suspect and ai.reasons == []
    assert ai.usual.median == 100 and ai.usual.days == 5


def test_a_short_day_is_flagged_with_its_figures() -> None:
    history_create(new=100)
    count_create(new=31, cross=8)

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.SUSPECT
    ai = category(integrity, "cs.AI")
    assert ai.suspect
    assert (ai.received.new, ai.usual.median, ai.usual.days) == (31, 100, 20)
    assert ai.reasons == [
        "short: 31 new entries, under 0.5 x the usual 100 (median of the last 20 announcement days)"
    ]


def test_the_usual_count_is_the_median_of_the_last_history_days_only(settings) -> None:  # type: ignore[no-untyped-def]
    settings.INTEGRITY_HISTORY_DAYS = 3
    history_create(new=[40, 40, 40, 500, 500, 500])  # the last three days (latest first): 40
    count_create(new=30)

    ai = category(day_integrity(day=DAY), "cs.AI")

    assert (ai.usual.median, ai.usual.days) == (40, 3)
    assert not ai.suspect


def test_a_stale_category_serving_yesterdays_entries_again_is_flagged() -> None:
    history_create(category="cs.AI", new=100)
    history_create(category="cs.LG", new=200)
    count_create(category="cs.AI", new=98, cross=20, known=118)  # yesterday's list again
    count_create(category="cs.LG", new=205, cross=30, known=4)

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.SUSPECT
    ai = category(integrity, "cs.AI")
    assert ai.suspect and ai.known == 118
    assert ai.reasons == [
        "stale: 118 of its 118 new and cross-listed entries were already known (the feed seems "
        "to serve an earlier announcement again)"
    ]
    assert not category(integrity, "cs.LG").suspect
    assert [c.category for c in integrity.suspect_categories] == ["cs.AI"]


def test_a_second_fetch_of_a_good_day_is_not_taken_for_a_stale_feed() -> None:
    feed = feed_create()
    first = datetime(2026, 8, 13, 1, 0, tzinfo=UTC)
    count_create(new=100, cross=20, known=0, feed=feed, at=first)
    count_create(new=100, cross=20, known=120, feed=feed, at=first + timedelta(hours=2))

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.OK


def test_a_refetch_that_completes_a_short_day_clears_it() -> None:
    feed = feed_create()
    first = datetime(2026, 8, 13, 1, 0, tzinfo=UTC)
    count_create(new=80, feed=feed, at=first, expected_new=120)
    count_create(new=120, known=80, feed=feed, at=first + timedelta(hours=2), expected_new=120)

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.OK
    ai = category(integrity, "cs.AI")
    assert (ai.received.new, ai.known) == (120, 0)


def test_a_stale_feed_stays_stale_when_fetched_again_unchanged() -> None:
    feed = feed_create()
    first = datetime(2026, 8, 13, 1, 0, tzinfo=UTC)
    count_create(new=90, cross=10, known=100, feed=feed, at=first)
    count_create(new=90, cross=10, known=100, feed=feed, at=first + timedelta(hours=2))

    assert category(day_integrity(day=DAY), "cs.AI").reasons[0].startswith("stale: 100 of")


def test_fewer_received_than_the_listing_shows_is_flagged() -> None:
    count_create(new=80, cross=30, replaced=12, expected_new=120, expected_cross=30)

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.SUSPECT
    ai = category(integrity, "cs.AI")
    assert ai.expected is not None and ai.expected.new == 120
    assert ai.reasons == ["listing: arXiv's listing shows 120 new, the feeds gave 80"]


def test_a_listing_that_agrees_is_not_suspect() -> None:
    count_create(new=120, cross=30, replaced=12, expected_new=120, expected_cross=30)

    assert day_integrity(day=DAY).kind == DayKind.OK


def test_a_new_install_without_history_has_nothing_suspect_by_history() -> None:
    count_create(new=3, cross=1)

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.OK
    assert category(integrity, "cs.AI").usual.median is None


def test_a_category_the_feeds_usually_report_and_missing_today_is_short() -> None:
    feed = feed_create(last_status=Feed.Status.OK)
    history_create(category="cs.AI", new=100, feed=feed)
    history_create(category="cs.CV", new=150, feed=feed)
    count_create(category="cs.AI", new=101, feed=feed)

    cv = category(day_integrity(day=DAY), "cs.CV")

    assert cv.suspect and cv.received.new == 0
    assert cv.reasons[0].startswith("short: 0 new entries")


def test_an_empty_day_with_every_feed_fine_is_a_holiday_not_a_broken_parse() -> None:
    default_feed_off()
    feed = feed_create(last_status=Feed.Status.OK, last_entry_count=0)
    history_create(category="cs.AI", new=100, feed=feed)
    history_create(category="cs.CL", new=60, feed=feed)
    count_create(category="cs.AI", feed=feed)  # the channel of the day, without items
    count_create(category="cs.CL", feed=feed)

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.EMPTY
    assert not integrity.suspect
    assert integrity.suspect_categories == []
    assert "arXiv announced nothing" in integrity.summary


def test_a_feed_that_failed_makes_the_day_broken_not_a_holiday() -> None:
    default_feed_off()
    feed = feed_create(last_status=Feed.Status.ERROR, last_error="HTTP 503 Service Unavailable")
    history_create(new=100, feed=feed)

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.BROKEN
    assert integrity.suspect
    assert [(p.feed, p.problem) for p in integrity.feeds] == [
        (feed.name, "failed: HTTP 503 Service Unavailable")
    ]


def test_a_feed_that_parsed_nothing_while_the_others_had_papers_is_a_broken_parse() -> None:
    default_feed_off()
    ai = feed_create(last_status=Feed.Status.OK)
    cl = feed_create("https://rss.arxiv.org/rss/cs.CL", last_status=Feed.Status.OK)
    history_create(category="cs.AI", new=100, feed=ai)
    history_create(category="cs.CL", new=60, feed=cl)
    count_create(category="cs.AI", new=104, feed=ai)
    count_create(category="cs.CL", new=0, feed=cl)  # parsed 0 entries

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.BROKEN
    assert len(integrity.feeds) == 1
    assert integrity.feeds[0].feed == cl.name
    assert "gave no entries for 2026-08-13" in integrity.feeds[0].problem
    assert "usually has 75" in integrity.feeds[0].problem  # 60 new + 15 cross
    assert category(integrity, "cs.CL").suspect


def test_a_feed_not_modified_while_the_others_moved_on_is_named() -> None:
    default_feed_off()
    ai = feed_create(last_status=Feed.Status.OK)
    cl = feed_create("https://rss.arxiv.org/rss/cs.CL", last_status=Feed.Status.NOT_MODIFIED)
    history_create(category="cs.AI", new=100, feed=ai)
    history_create(category="cs.CL", new=60, feed=cl)
    count_create(category="cs.AI", new=104, feed=ai)

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.BROKEN
    assert "has not changed since its previous fetch (HTTP 304)" in integrity.feeds[0].problem


def test_the_latest_day_the_feeds_claim_is_the_one_to_judge_after_an_empty_fetch() -> None:
    count_create(new=100)
    count_create(day=DAY + timedelta(days=1))  # a holiday's empty listing

    assert latest_claimed_day() == DAY + timedelta(days=1)


def test_a_feed_failing_today_does_not_blame_an_older_day() -> None:
    default_feed_off()
    feed = feed_create(last_status=Feed.Status.ERROR, last_error="timed out")
    count_create(new=100, feed=feed)
    count_create(new=100, feed=feed, day=DAY + timedelta(days=1))

    assert day_integrity(day=DAY).kind == DayKind.OK


# --- The build stores and prints it ------------------------------------------------------------


def papers_of_day(count: int, day: date = DAY) -> list[Paper]:
    return [
        paper_create(title=f"Agents that plan, part {n}", categories=["cs.AI"], announced_on=day)
        for n in range(count)
    ]


def test_the_build_stores_the_verdict_on_the_issue(offline: None) -> None:
    history_create(new=100)
    count_create(new=31, cross=8, replaced=3, known=1)
    papers_of_day(3)

    report = digest_build(day=DAY)

    judged = Digest.objects.get(date=DAY).integrity
    assert judged["day"] == "2026-08-13"
    assert judged["kind"] == "suspect" and judged["suspect"] is True
    (ai,) = judged["categories"]
    assert ai["category"] == "cs.AI"
    assert ai["received"] == {"new": 31, "cross": 8, "replaced": 3}
    assert ai["known"] == 1
    assert ai["usual"] == {"median": 100.0, "days": 20}
    assert ai["expected"] is None
    assert ai["suspect"] is True and ai["reasons"][0].startswith("short: 31 new")
    assert report.suspect and [c["category"] for c in report.suspect_categories] == ["cs.AI"]


def test_build_digest_prints_each_suspect_category_with_its_figures(offline: None, capsys) -> None:  # type: ignore[no-untyped-def]
    history_create(category="cs.AI", new=100)
    history_create(category="cs.LG", new=200)
    count_create(category="cs.AI", new=31, cross=8)
    count_create(category="cs.LG", new=190, cross=40, known=225)
    count_create(category="cs.CL", new=50, expected_new=70)
    papers_of_day(2)

    call_command("build_digest", "--date", "2026-08-13")

    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "suspect cs." in line]
    assert len(lines) == 3
    ai, cl, lg = lines
    assert "received 31 new, 8 cross" in ai and "usual 100 new (median of 20 days)" in ai
    assert "short" in ai
    assert "listing shows 70 new" in cl and "received 50 new" in cl
    assert "225 already known" in lg and "stale" in lg


def test_build_digest_prints_nothing_suspect_on_a_normal_day(offline: None, capsys) -> None:  # type: ignore[no-untyped-def]
    history_create(new=100)
    count_create(new=100)
    papers_of_day(2)

    call_command("build_digest", "--date", "2026-08-13")

    out = capsys.readouterr().out
    assert "suspect" not in out
    assert "Integrity of 2026-08-13: ok" in out


def test_a_day_without_papers_and_with_a_failed_feed_is_not_called_a_holiday(offline: None) -> None:
    default_feed_off()
    feed = feed_create(last_status=Feed.Status.ERROR, last_error="HTTP 503")
    history_create(new=100, feed=feed)
    lines: list[str] = []

    report = digest_build(day=DAY, log=lines.append)

    assert not report.built
    assert "does not look like a day without announcements (broken)" in report.reason
    assert "Friday and Saturday" not in report.reason
    assert any("suspect" in line and "HTTP 503" in line for line in lines)


def test_a_holiday_builds_nothing_and_says_so(offline: None) -> None:
    default_feed_off()
    feed = feed_create(last_status=Feed.Status.OK)
    history_create(new=100, feed=feed)
    count_create(feed=feed)

    report = digest_build(day=DAY)

    assert not report.built
    assert report.integrity["kind"] == "empty"
    assert "Friday and Saturday" in report.reason


# --- The issue's page -----------------------------------------------------------------------------


def suspect_issue(**fields: Any) -> Digest:
    history_create(new=100)
    count_create(new=31, cross=8, known=1)
    count_create(category="<b>cs.X</b>", new=5)  # a name is shown as text, never as markup
    papers_of_day(2)
    digest_build(day=DAY)
    digest = Digest.objects.get(date=DAY)
    if fields:
        Digest.objects.filter(pk=digest.pk).update(**fields)
        digest.refresh_from_db()
    return digest


def test_the_page_shows_the_integrity_panel_with_the_figures(
    editor_client: Client, offline: None
) -> None:
    digest = suspect_issue()

    response = change_page(editor_client, digest)

    text = page_text(response)
    assert "Integrity of the day" in text
    assert "Suspect: Suspect counts for 2026-08-13 in 1 categories: cs.AI." in text
    assert "2 arXiv categories, 1 suspect" in text
    # The suspect ones first, with their figures and why.
    assert (
        "verdict cs.AI 31 / 8 / 0 - 100 new (median of 20 days) 1 of 39 suspect : short: 31 new "
        "entries, under 0.5 x the usual 100" in text
    )
    assert "<b>cs.X</b> 5 / 0 / 0 - no history yet 0 of 5 ok" in text
    html = response.content.decode()
    assert "&lt;b&gt;cs.X&lt;/b&gt;" in html and "<b>cs.X</b>" not in html
    assert 'id="integrity-refetch-form"' in html


def test_a_normal_day_shows_its_counts_without_a_refetch_button(
    editor_client: Client, offline: None
) -> None:
    history_create(new=100)
    count_create(new=100, expected_new=100)
    papers_of_day(2)
    digest_build(day=DAY)

    response = change_page(editor_client, Digest.objects.get(date=DAY))

    text = page_text(response)
    assert "Normal: The counts of 2026-08-13 look normal in 1 categories." in text
    assert "cs.AI 100 / 0 / 0 100 / ? / ? 100 new (median of 20 days) 0 of 100 ok" in text
    assert "integrity-refetch-form" not in response.content.decode()


def test_a_viewer_sees_the_panel_but_no_refetch_button_and_cannot_post_one(
    viewer_client: Client, offline: None, django_capture_on_commit_callbacks: Capture
) -> None:
    digest = suspect_issue()

    response = change_page(viewer_client, digest)
    assert "Integrity of the day" in page_text(response)
    assert "integrity-refetch-form" not in response.content.decode()

    with django_capture_on_commit_callbacks(execute=False) as queued:
        refused = viewer_client.post(digest_url("refetch", digest))
    assert refused.status_code == 403
    assert queued == []


def test_a_refetch_is_post_only(editor_client: Client, offline: None) -> None:
    digest = suspect_issue()

    assert editor_client.get(digest_url("refetch", digest)).status_code == 405


def test_an_approved_issue_is_not_fetched_again(
    editor_client: Client, offline: None, django_capture_on_commit_callbacks: Capture
) -> None:
    digest = suspect_issue(status=Digest.Status.APPROVED)

    assert "integrity-refetch-form" not in change_page(editor_client, digest).content.decode()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = editor_client.post(digest_url("refetch", digest), follow=True)

    assert queued == []
    assert shown_messages(response) == [
        "The issue of 2026-08-13 is approved: only a draft can be fetched again. Cancel its "
        "approval first if it has not been sent."
    ]


# --- Fetching again ------------------------------------------------------------------------------


ITEM = """
    <item>
      <title>{title}</title>
      <link>https://arxiv.org/abs/{arxiv_id}</link>
      <description>arXiv:{arxiv_id}v1 Announce Type: new
Abstract: We study planning agents for paper {arxiv_id} and report what they find.</description>
      <guid isPermaLink="false">oai:arXiv.org:{arxiv_id}v1</guid>
      <category>cs.AI</category>
      <pubDate>{pub_date}</pubDate>
      <arxiv:announce_type>new</arxiv:announce_type>
      <dc:creator>Ada Lovelace, Alan Turing</dc:creator>
    </item>"""


def rss_document(arxiv_ids: Sequence[str], *, day: date = DAY) -> str:
    """arXiv's RSS 2.0 listing of cs.AI for `day` (the shape of rss.arxiv.org)."""
    pub_date = f"{day:%a, %d %b %Y} 00:00:00 -0400"
    items = "".join(
        ITEM.format(arxiv_id=i, title=f"Planning agents, study {i}", pub_date=pub_date)
        for i in arxiv_ids
    )
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:atom="http://www.w3.org/2005/Atom" version="2.0">
  <channel>
    <title>cs.AI updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/cs.AI</link>
    <description>cs.AI updates on the arXiv.org e-print archive.</description>
    <language>en-us</language>
    <pubDate>{pub_date}</pubDate>{items}
  </channel>
</rss>
"""


def arxiv_ids(first: int, count: int) -> list[str]:
    return [f"2608.{first + n:05d}" for n in range(count)]


def refetch_from_admin(client: Client, digest: Digest, capture: Capture) -> Any:
    """The editor's click; the (eager) task runs once the request's transaction commits."""
    with capture(execute=True):
        response = client.post(digest_url("refetch", digest))
    assert response.status_code == 302
    return client.get(response["Location"])


def test_a_refetch_adds_the_missing_papers_to_the_same_issue_and_repeats_none(
    editor_client: Client,
    offline: None,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    default_feed_off()
    listing = tmp_path / "cs.AI.xml"
    listing.write_text(rss_document(arxiv_ids(30001, 3)))
    feed = feed_create(url=str(listing), name="cs.AI listing")
    history_create(new=100)
    yesterday = paper_create(title="Yesterday's paper", announced_on=DAY - timedelta(days=1))
    digest_build(day=DAY - timedelta(days=1))
    feeds_fetch()
    count_create(new=3, feed=feed)  # the short day as the fetch saw it
    digest_build(day=DAY)
    digest = Digest.objects.get(date=DAY)
    assert digest.paper_count == 3 and digest.integrity["suspect"]
    first_judged = digest.integrity["judged_at"]
    # arXiv's feed is complete now, and still lists yesterday's paper.
    listing.write_text(rss_document([*arxiv_ids(30001, 60), yesterday.arxiv_id]))

    page = refetch_from_admin(editor_client, digest, django_capture_on_commit_callbacks)

    assert any("Fetching the feeds again for 2026-08-13" in m for m in shown_messages(page))
    digest.refresh_from_db()
    assert Digest.objects.filter(date=DAY).count() == 1
    assert digest.paper_count == 60
    assert set(digest.papers.values_list("arxiv_id", flat=True)) == set(arxiv_ids(30001, 60))
    yesterday.refresh_from_db()
    assert yesterday.digest is not None and yesterday.digest.date == DAY - timedelta(days=1)
    assert digest.build_count == 2
    assert digest.integrity["judged_at"] != first_judged  # the day judged again
    assert LogEntry.objects.filter(change_message__contains="fetch the day's feeds").exists()
    run = DailyRun.objects.get()  # the re-fetch is in the run history
    assert run.trigger == DailyRun.Trigger.ADMIN and run.outcome == DailyRun.Outcome.BUILT
    assert run.day == DAY and run.digest == digest and run.papers_new == 57


def test_a_day_no_fetch_counted_is_uncounted_not_a_holiday() -> None:
    papers_of_day(2)

    integrity = day_integrity(day=DAY)

    assert integrity.kind == DayKind.UNCOUNTED
    assert not integrity.suspect


def test_a_run_with_nothing_new_judges_the_day_the_feeds_claim(offline: None) -> None:
    """A fetch that stored nothing on a day the feeds say is new: broken feeds, not a holiday."""
    default_feed_off()
    feed = feed_create(last_status=Feed.Status.ERROR, last_error="HTTP 503 Service Unavailable")
    history_create(new=100, feed=feed)
    papers_of_day(2, day=DAY - timedelta(days=1))
    digest_build(day=DAY - timedelta(days=1))
    ok = feed_create("https://rss.arxiv.org/rss/cs.CL", name="cs.CL")
    count_create(category="cs.CL", new=0, feed=ok)  # today's channel, with no items

    outcome = daily_run(urls=[], trigger=DailyRun.Trigger.COMMAND)

    run = DailyRun.objects.get(pk=outcome.run_id)
    assert run.outcome == DailyRun.Outcome.NOTHING and run.suspect
    assert "look broken" in run.reasons[0]
    assert any("HTTP 503" in reason for reason in run.reasons)
