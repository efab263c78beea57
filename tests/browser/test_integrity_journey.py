"""A short day, caught and mended in a real browser (issue 11, "Shown by").

The feed behind the Feed row is a file of arXiv's RSS shape that the test rewrites between
fetches: the first fetch finds 3 of the day's papers where cs.AI usually has 20. The editor
opens the flagged day, sees the integrity panel with the figures, re-fetches; a real Celery
worker reads the feed again (now complete) and rebuilds the same issue, and the missing papers
appear on its page, none repeated.

Screenshots: test-artifacts/screenshots/admin-integrity-suspect.png and
admin-integrity-refetched.png.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from digests.build import digest_build
from digests.ingest import feeds_fetch
from digests.models import Digest, Feed, Paper, SectionPaper
from tests.browser.conftest import editor_login, worker_env, worker_running
from tests.digests.test_integrity import DAY, arxiv_ids, history_create, rss_document
from tests.integration.conftest import Service, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module")
def offline_worker(
    browser_preconditions: None,
    django_db_setup: None,
    live_server: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Service]:
    """A real Celery worker on the test database, without an LLM (rules and extractive
    summaries), so the rebuild takes a second."""
    env = worker_env(live_server, OPENAI_API_KEY="")
    logs = tmp_path_factory.mktemp("integrity-journey-services")
    with worker_running("integrity-journey-worker", env=env, log_dir=logs) as worker:
        yield worker


def test_an_editor_sees_a_short_day_refetches_it_and_the_missing_papers_join_the_issue(
    page: Page,
    live_server: Any,
    offline_worker: Service,
    default_categories: None,
    tmp_path: Path,
    screenshot: Callable[..., Path],
) -> None:
    Feed.objects.update(enabled=False)  # the migration's feed (rss.arxiv.org) is not read
    listing = tmp_path / "cs.AI.xml"
    listing.write_text(rss_document(arxiv_ids(40001, 3)))
    Feed.objects.create(url=str(listing), name="cs.AI listing (a file)")
    history_create(new=20)  # cs.AI usually has 20 new papers
    feeds_fetch()
    digest_build(day=DAY)
    digest = Digest.objects.get(date=DAY)
    assert digest.paper_count == 3 and digest.integrity["suspect"]
    change = reverse("admin:digests_digest_change", args=[digest.pk])

    editor_login(page, live_server, change)

    panel = page.locator("#integrity")
    expect(panel).to_contain_text("Suspect counts for 2026-08-13 in 1 categories: cs.AI.")
    row = panel.locator("tr[data-category='cs.AI']")
    expect(row).to_contain_text("3 / 0 / 0")
    expect(row).to_contain_text("20 new (median of 20 days)")
    expect(row).to_contain_text("short: 3 new entries, under 0.5 x the usual 20")
    screenshot(page, "admin-integrity-suspect")

    # arXiv's feed is complete now (and still lists the first three).
    listing.write_text(rss_document(arxiv_ids(40001, 20)))
    page.get_by_role("button", name="Re-fetch the day").click()
    expect(page.locator("ul.messagelist")).to_contain_text(
        "Fetching the feeds again for 2026-08-13"
    )
    wait_until(
        lambda: Digest.objects.get(pk=digest.pk).paper_count == 20,
        timeout=60,
        what="the missing papers added to the issue",
        log=offline_worker.log_tail,
    )

    page.goto(live_server.url + change)
    expect(panel).to_contain_text("The counts of 2026-08-13 look normal")
    expect(page.get_by_role("button", name="Re-fetch the day")).to_have_count(0)
    # The section counts the day's 20 papers and lists its top ones, new ones among them.
    expect(page.locator(".field-paper_count .readonly").first).to_have_text("20")
    shown = list(
        SectionPaper.objects.filter(digest=digest).values_list("paper__arxiv_id", flat=True)
    )
    assert set(shown) - set(arxiv_ids(40001, 3)), "papers of the re-fetch are shown"
    papers = page.locator("#entries-group")
    for arxiv_id in shown:
        expect(papers).to_contain_text(arxiv_id)
    screenshot(page, "admin-integrity-refetched")
    assert Digest.objects.count() == 1
    assert Paper.objects.filter(digest=digest).count() == 20
    assert not Paper.objects.filter(announced_on=DAY, digest__isnull=True).exists()
