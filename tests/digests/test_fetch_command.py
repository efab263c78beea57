"""`manage.py fetch_papers`: what it prints and how it exits."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from digests.models import Feed, Paper

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
SAMPLE = str(FIXTURES / "arxiv_rss2_sample.xml")
ATOM = str(FIXTURES / "arxiv_atom_sample.xml")
BROKEN = str(FIXTURES / "malformed_rss2.xml")


def fetch_papers(*args: str) -> str:
    out = StringIO()
    call_command("fetch_papers", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def no_default_feeds(db: None) -> None:
    # The data migration adds the live arXiv feed; the tests must not reach the network.
    Feed.objects.all().delete()


@pytest.mark.django_db
def test_it_fetches_the_feeds_given_and_prints_what_it_stored() -> None:
    output = fetch_papers("--feed", SAMPLE, ATOM)

    assert f"{SAMPLE} : 24 parsed, 24 added, 0 replaced, 0 unchanged\n" in output
    assert f"{ATOM} : 3 parsed, 3 added, 0 replaced, 0 unchanged\n" in output
    assert Paper.objects.count() == 27
    assert Feed.objects.get(url=SAMPLE).last_status == Feed.Status.OK


@pytest.mark.django_db
def test_a_second_run_prints_that_every_paper_is_unchanged() -> None:
    fetch_papers("--feed", SAMPLE)

    output = fetch_papers("--feed", SAMPLE)

    assert f"{SAMPLE} : 24 parsed, 0 added, 0 replaced, 24 unchanged" in output


@pytest.mark.django_db
def test_it_says_how_many_cross_lists_it_left_out(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DIGEST_INCLUDE_CROSSLISTS = False

    output = fetch_papers("--feed", SAMPLE)

    assert (
        f"{SAMPLE} : 24 parsed, 20 added, 0 replaced, 0 unchanged, 4 cross-lists skipped" in output
    )


def test_without_feeds_it_fetches_every_enabled_feed(no_default_feeds: None) -> None:
    Feed.objects.create(url=SAMPLE)
    Feed.objects.create(url=ATOM, enabled=False)

    output = fetch_papers()

    assert SAMPLE in output and ATOM not in output
    assert Paper.objects.count() == 24


def test_without_any_enabled_feed_it_says_so_and_succeeds(no_default_feeds: None) -> None:
    assert "No enabled feeds" in fetch_papers()


@pytest.mark.django_db
def test_a_failed_feed_is_printed_while_the_others_are_stored() -> None:
    output = fetch_papers("--feed", BROKEN, "--feed", SAMPLE)

    assert f"{BROKEN} : FAILED: malformed XML at line 23" in output
    assert f"{SAMPLE} : 24 parsed, 24 added" in output


@pytest.mark.django_db
def test_it_exits_with_an_error_naming_the_reasons_when_every_feed_failed() -> None:
    out = StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("fetch_papers", "--feed", BROKEN, "/nonexistent/feed.xml", stdout=out)

    message = str(failure.value)
    assert message.startswith("Every feed failed.")
    assert f"{BROKEN}: malformed XML" in message
    assert "/nonexistent/feed.xml: cannot read /nonexistent/feed.xml" in message
    assert "FAILED" in out.getvalue()
    assert Feed.objects.get(url=BROKEN).consecutive_failures == 1


@pytest.mark.django_db
def test_the_fetch_tasks_result_is_plain_json_with_the_counts_in_words() -> None:
    """A real worker sends the task's result through JSON: model rows would not encode."""
    from digests.tasks import fetch_papers as fetch_task

    result = json.loads(json.dumps(fetch_task(urls=[SAMPLE])))

    (feed,) = result["feeds"]
    assert feed["ok"] and feed["store"]["created"] == 24
    assert feed["counts"] and all(" new, " in line for line in feed["counts"])
