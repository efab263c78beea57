"""An editor's morning in the admin, in a real browser (issue 5, "Shown by").

Log in as a member of Editors, open the day's draft, see the flagged section, edit its summary
(the preview beside it follows the typing), move a paper to another section, save; preview the
email and look at it at mobile width; approve it to be sent now; watch the deliveries reach the
fake ESP (Mailgun's HTTP API, talked to by anymail's real Mailgun backend in a real Celery
worker) and the counts appear on the issue's page.

Screenshots: test-artifacts/screenshots/admin-digest-page.png, admin-preview.png (the page;
Chromium leaves sandboxed frames blank in a full-page shot), admin-preview-desktop.png and
admin-preview-mobile.png (the two frames), admin-deliveries.png.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from digests.editing import digest_counts_refresh
from digests.models import Category, ClassifiedBy, Digest, Paper, SummarySource
from subscribers.models import Delivery, Subscriber
from tests.browser.conftest import SCREENSHOTS, editor_login, worker_env, worker_running
from tests.fakes.esp_server import FakeESP
from tests.integration.conftest import (
    Service,
    free_port,
    service_start,
    wait_until,
)
from tests.issue_factory import issue_create

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

DOMAIN = "mg.example.com"
LLM_LATENCY = 3.0
NEW_SUMMARY = "**편집자 요약**\n\n편집자가 고친 요약입니다. 첫 논문이 가장 중요합니다 [1]."


@pytest.fixture(scope="module")
def fake_esp() -> Iterator[FakeESP]:
    with FakeESP(latency=0.05) as fake:
        yield fake


@pytest.fixture(scope="module")
def services_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("editor-journey-services")


@pytest.fixture(scope="module")
def slow_llm(browser_preconditions: None, services_log_dir: Path) -> Iterator[str]:
    """The fake OpenAI-compatible server, answering after LLM_LATENCY seconds, so a
    regeneration is still under way when the editor is back on the page."""
    server = service_start(
        "editor-journey-llm",
        [
            sys.executable,
            *("-m", "tests.fakes.openai_server", "--port", str(free_port())),
            *("--latency", str(LLM_LATENCY)),
        ],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        log_dir=services_log_dir,
    )
    try:
        yield server.wait_for_log(r"https?://\S+", timeout=30).group(0).rstrip(".,")
    finally:
        server.stop(timeout=5)


@pytest.fixture(scope="module")
def esp_worker(
    browser_preconditions: None,
    django_db_setup: None,
    live_server: Any,
    fake_esp: FakeESP,
    slow_llm: str,
    services_log_dir: Path,
) -> Iterator[Service]:
    """A real Celery worker on the test database that sends through the fake Mailgun API and
    asks the (slow) fake LLM."""
    env = worker_env(
        live_server,
        EMAIL_BACKEND="anymail.backends.mailgun.EmailBackend",
        ANYMAIL_MAILGUN_API_KEY="key",
        ANYMAIL_MAILGUN_SENDER_DOMAIN=DOMAIN,
        ANYMAIL_MAILGUN_API_URL=fake_esp.base_url + "/v3",
        DEFAULT_FROM_EMAIL=f"Daily AI Insights <digest@{DOMAIN}>",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=slow_llm,
    )
    with worker_running("editor-journey-worker", env=env, log_dir=services_log_dir) as worker:
        yield worker


def readers_create(categories: list[Category]) -> list[str]:
    active = []
    for n in range(4):
        reader = Subscriber.objects.create(
            email=f"reader{n}@example.com", status=Subscriber.Status.ACTIVE, language="ko"
        )
        reader.categories.set(categories[: 1 + n % len(categories)])
        active.append(reader.email)
    Subscriber.objects.create(email="gone@example.com", status=Subscriber.Status.UNSUBSCRIBED)
    return active


def test_an_editor_edits_previews_approves_and_watches_the_send(
    page: Page,
    live_server: Any,
    esp_worker: Service,
    fake_esp: FakeESP,
    default_categories: None,
    screenshot: Callable[..., Path],
) -> None:
    categories = list(Category.objects.filter(active=True).order_by("position")[:2])
    digest = issue_create(categories=categories, papers_per_section=3, summary_length=900)
    first, second = digest.sections.order_by("position").select_related("category")
    first.flags = [{"code": "language", "message": "Han characters in Korean text: 重大"}]
    first.save()
    digest_counts_refresh(digest=digest)  # the real chart of these papers
    moved = first.entries.order_by("position").last()
    assert moved is not None
    readers = readers_create(categories)
    change_url = live_server.url + reverse("admin:digests_digest_change", args=[digest.pk])

    # Log in; the list shows today's draft with its flagged section.
    editor_login(page, live_server, reverse("admin:digests_digest_changelist"))
    expect(page.locator("td.field-flagged_sections").first).to_have_text("1")
    page.goto(change_url)

    # The flag is at the top of its section; edit the summary and watch the preview follow.
    expect(page.locator("ul.section-flags").first).to_contain_text("Language check")
    summary = page.locator("textarea[name='sections-0-summary']")
    summary.fill(NEW_SUMMARY)
    preview = page.locator(".summary-preview").first
    expect(preview).to_contain_text("편집자가 고친 요약입니다")
    expect(preview.locator("strong")).to_have_text("편집자 요약")

    # Move the first section's last paper to the second section.
    rows = page.locator("select[name$='-section']")
    moved_row = None
    for index in range(rows.count()):
        name = rows.nth(index).get_attribute("name") or ""
        paper_input = page.locator(f"input[name='{name.removesuffix('-section')}-id']")
        if paper_input.count() and paper_input.input_value() == str(moved.pk):
            moved_row = rows.nth(index)
    assert moved_row is not None, "the paper's row is on the page"
    moved_row.select_option(label=second.category.name)
    screenshot(page, "admin-digest-page")
    page.locator("input[name='_save']").click()
    expect(page).to_have_url(live_server.url + reverse("admin:digests_digest_changelist"))

    first.refresh_from_db()
    assert first.summary == NEW_SUMMARY and first.summary_source == SummarySource.EDITOR
    paper = Paper.objects.get(pk=moved.paper_id)
    assert paper.category_id == second.category_id
    assert paper.classified_by == ClassifiedBy.EDITOR

    # Preview: every section, at desktop and at mobile width.
    page.goto(change_url)
    page.get_by_role("link", name="Preview the email").click()
    expect(page.locator(".preview-size")).to_contain_text("KB of Gmail's 102 KB")
    mobile = page.locator("iframe[title='The email at mobile width']")
    mobile.scroll_into_view_if_needed()
    mobile_frame = page.frame_locator("iframe[title='The email at mobile width']")
    expect(mobile_frame.locator("body")).to_contain_text("편집자가 고친 요약입니다")
    expect(mobile_frame.locator("body")).to_contain_text(paper.title)
    desktop_frame = page.frame_locator("iframe[title='The email at desktop width']")
    expect(desktop_frame.locator("body")).to_contain_text("편집자가 고친 요약입니다")
    screenshot(page, "admin-preview")
    # A full-page shot leaves sandboxed frames blank in Chromium: each frame on its own too.
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    mobile.screenshot(path=SCREENSHOTS / "admin-preview-mobile.png")
    desktop = page.locator("iframe[title='The email at desktop width']")
    desktop.scroll_into_view_if_needed()
    desktop.screenshot(path=SCREENSHOTS / "admin-preview-desktop.png")
    width = mobile_frame.locator("html").evaluate("node => node.clientWidth")
    assert width <= 375

    # Approve to be sent now; the worker sends through the fake ESP.
    page.goto(change_url)
    page.get_by_role("button", name="Approve and send now").click()
    expect(page.locator("ul.messagelist")).to_contain_text("Approved")
    wait_until(
        lambda: Digest.objects.get(pk=digest.pk).status == Digest.Status.SENT,
        timeout=90,
        what="the issue sent",
        log=esp_worker.log_tail,
    )
    assert sorted(fake_esp.recipients()) == sorted(readers), "each active reader once"
    assert Delivery.objects.filter(digest=digest, status=Delivery.Status.SENT).count() == 4

    # The counts appear on the issue's page.
    page.goto(change_url)
    panel = page.locator("#deliveries-panel")
    expect(panel.locator("tr.status-sent td.number")).to_have_text("4")
    expect(panel.locator("tr.status-failed td.number")).to_have_text("0")
    expect(panel.locator("img.deliveries-chart")).to_be_visible()
    panel.scroll_into_view_if_needed()
    screenshot(page, "admin-deliveries")


def test_an_editor_regenerates_a_summary_watches_its_progress_and_finds_the_old_text(
    page: Page,
    live_server: Any,
    esp_worker: Service,
    default_categories: None,
    screenshot: Callable[..., Path],
) -> None:
    category = Category.objects.get(slug="llm")
    old_text = "**요약 보고서**\n\n편집자가 예전에 쓴 요약입니다 [1]."
    digest = issue_create(categories=[category], summaries={category.pk: old_text})
    digest_counts_refresh(digest=digest)
    section = digest.sections.get()
    change = reverse("admin:digests_digest_change", args=[digest.pk])
    editor_login(page, live_server, change)

    page.get_by_role("link", name="Regenerate with the LLM…").click()
    page.get_by_role("button", name="Regenerate the summary").click()

    # Back on the issue: the worker is waiting for the (slow) LLM; the page shows it, then
    # tells the editor the new text is ready.
    status = page.locator(f"#regenerate-{section.pk} .regeneration-status")
    expect(status.locator("progress")).to_be_visible()
    reload = status.get_by_role("link", name="Reload the page to see it")
    expect(reload).to_be_visible(timeout=60_000)
    screenshot(page, "admin-regeneration-done")
    reload.click()

    section.refresh_from_db()
    assert section.summary != old_text and section.summary_source == SummarySource.LLM
    textarea = page.locator("textarea[name='sections-0-summary']")
    expect(textarea).to_have_value(section.summary)
    history = page.locator(f"#regenerate-{section.pk} .revision-history")
    history.locator("summary").click()
    history.get_by_role("link").first.click()
    expect(page.locator("body")).to_contain_text("편집자가 예전에 쓴 요약입니다 [1].")
