from __future__ import annotations

from datetime import date, timedelta
from xml.etree import ElementTree

import pytest
from django.test import Client
from django.urls import reverse

from digests.models import Category, Digest, Paper
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"


def issue_url(day: date) -> str:
    return reverse("digests:archive-issue", kwargs={"day": day.isoformat()})


def test_the_urls_are_where_the_issue_says() -> None:
    assert reverse("digests:archive") == "/archive/"
    assert reverse("digests:archive-atom") == "/archive/atom.xml"
    assert issue_url(date(2026, 8, 13)) == "/archive/2026-08-13/"


def test_a_sent_issue_shows_every_category_with_its_chart_and_sources(client: Client) -> None:
    digest = issue_create(status=Digest.Status.SENT, papers_per_section=2)
    paper = Paper.objects.filter(section_entries__section__digest=digest).first()
    assert paper is not None
    page = client.get(issue_url(digest.date)).content.decode()
    for category in Category.objects.all():
        assert f">{category.name}</h2>" in page
    assert 'src="/digests/2026-08-13/chart.png"' in page
    assert f'href="https://arxiv.org/abs/{paper.arxiv_id}v1"' in page
    assert "<strong>요약 보고서: Natural Language Processing</strong>" in page
    assert "Author 1, Author 2, Author 3 외 3명" in page


@pytest.mark.parametrize("status", [Digest.Status.DRAFT, Digest.Status.APPROVED])
def test_drafts_and_approved_issues_are_not_public(client: Client, status: str) -> None:
    digest = issue_create(status=status)
    assert client.get(issue_url(digest.date)).status_code == 404
    assert digest.date.isoformat() not in client.get("/archive/").content.decode()
    assert digest.date.isoformat() not in client.get("/archive/atom.xml").content.decode()


def test_an_issue_being_sent_is_public_so_view_in_browser_works(client: Client) -> None:
    digest = issue_create(status=Digest.Status.SENDING)
    assert client.get(issue_url(digest.date)).status_code == 200


def test_not_a_date_is_404(client: Client) -> None:
    assert client.get("/archive/yesterday/").status_code == 404


def test_the_summaries_are_sanitised_on_the_page(client: Client) -> None:
    nlp = Category.objects.order_by("position").first()
    assert nlp is not None
    digest = issue_create(
        categories=[nlp],
        status=Digest.Status.SENT,
        summaries={nlp.pk: "<script>alert(1)</script>[x](javascript:alert(2)) **ok**"},
    )
    Paper.objects.filter(section_entries__section__digest=digest).update(title="<b onclick=x>T</b>")
    page = client.get(issue_url(digest.date)).content.decode()
    assert "<script>alert" not in page and "javascript:" not in page
    assert "<strong>ok</strong>" in page
    assert "&lt;b onclick=x&gt;T&lt;/b&gt;" in page


def test_the_list_is_newest_first_and_paginated(client: Client) -> None:
    category = Category.objects.order_by("position")[:1]
    start = date(2026, 1, 1)
    for offset in range(25):
        issue_create(
            day=start + timedelta(days=offset),
            categories=category,
            papers_per_section=1,
            status=Digest.Status.SENT,
        )
    first = client.get("/archive/").content.decode()
    assert first.index("2026-01-25") < first.index("2026-01-24")
    assert "2026-01-05" not in first and "?page=2" in first
    second = client.get("/archive/?page=2").content.decode()
    assert "2026-01-05" in second and "2026-01-25" not in second


def test_the_atom_feed_links_each_sent_issue(client: Client) -> None:
    issue_create(day=date(2026, 8, 12), status=Digest.Status.SENT)
    issue_create(day=date(2026, 8, 13), status=Digest.Status.SENT)
    response = client.get("/archive/atom.xml")
    assert response["Content-Type"].startswith("application/atom+xml")
    feed = ElementTree.fromstring(response.content)  # noqa: S314 - our own feed
    entries = feed.findall(f"{ATOM}entry")
    links = [e.find(f"{ATOM}link").get("href") for e in entries]  # type: ignore[union-attr]
    assert links == [
        "http://testserver/archive/2026-08-13/",
        "http://testserver/archive/2026-08-12/",
    ]
    summary = entries[0].find(f"{ATOM}summary")
    assert summary is not None and "요약 보고서" in (summary.text or "")


@pytest.mark.django_db
def test_the_chart_of_an_unpublished_issue_is_only_for_staff(client, admin_client) -> None:  # type: ignore[no-untyped-def]
    digest = Digest.objects.create(
        date=date(2026, 8, 14), title="t", status=Digest.Status.DRAFT, chart_png=b"\x89PNG-draft"
    )
    url = "/digests/2026-08-14/chart.png"

    assert client.get(url).status_code == 404
    staff = admin_client.get(url)
    assert staff.status_code == 200 and staff["Cache-Control"] == "private, no-store"

    Digest.objects.filter(pk=digest.pk).update(status=Digest.Status.SENT)
    public = client.get(url)
    assert public.status_code == 200 and public.content == b"\x89PNG-draft"
    assert public["Cache-Control"] == "public, max-age=3600"
