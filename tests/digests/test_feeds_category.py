"""The archive's Atom feeds per category and per keyword set: valid Atom 1.0 (RFC 4287's RELAX
NG schema), newest first, escaped, bounded, cached, and answered 304 when nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from django.core.cache import cache
from django.test import Client

from digests.models import Category, Digest, Paper
from tests.digests.atom import NS, atom_valid
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def first_category() -> Category:
    category = Category.objects.order_by("position").first()
    assert category is not None
    return category


def texts(root, path: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.text or "" for e in root.xpath(path, namespaces=NS)]


def test_a_category_feed_has_its_report_and_papers_in_each_sent_issue(client: Client) -> None:
    nlp = first_category()
    issue_create(day=date(2026, 8, 12), categories=[nlp], status=Digest.Status.SENT)
    newest = issue_create(day=date(2026, 8, 13), status=Digest.Status.SENT, papers_per_section=1)
    issue_create(day=date(2026, 8, 14), categories=[nlp], status=Digest.Status.DRAFT)
    paper = Paper.objects.get(digest=newest, category=nlp)

    response = client.get(f"/archive/{nlp.slug}/atom.xml")

    assert response["Content-Type"].startswith("application/atom+xml")
    root = atom_valid(response.content)
    links = root.xpath("a:entry/a:link/@href", namespaces=NS)
    assert links == [
        f"http://testserver/archive/2026-08-13/#category-{nlp.pk}",
        f"http://testserver/archive/2026-08-12/#category-{nlp.pk}",
    ]
    summary = texts(root, "a:entry/a:summary")[0]
    assert f"요약 보고서: {nlp.name}" in summary
    assert f'href="https://arxiv.org/abs/{paper.arxiv_id}v1"' in summary
    assert texts(root, "a:id") == [f"http://testserver/archive/{nlp.slug}/atom.xml"]


def test_a_category_that_does_not_exist_is_404(client: Client) -> None:
    assert client.get("/archive/no-such-category/atom.xml").status_code == 404


def test_text_from_papers_and_reports_is_escaped(client: Client) -> None:
    nlp = first_category()
    digest = issue_create(
        categories=[nlp],
        status=Digest.Status.SENT,
        papers_per_section=1,
        summaries={nlp.pk: "<script>alert(1)</script> **ok**"},
    )
    Paper.objects.filter(digest=digest).update(
        title="<script>alert(2)</script> diffusion", abstract="<b>bold</b> & more"
    )

    category_body = client.get(f"/archive/{nlp.slug}/atom.xml").content
    keyword_body = client.get("/archive/atom.xml?q=diffusion").content
    for body in (category_body, keyword_body):
        assert b"<script>" not in body and b"<b>" not in body
    report = texts(atom_valid(category_body), "a:entry/a:summary")[0]
    assert "<script>" not in report and "<strong>ok</strong>" in report
    assert "&lt;script&gt;alert(2)&lt;/script&gt; diffusion" in report

    root = atom_valid(client.get("/archive/atom.xml?q=diffusion").content)
    assert texts(root, "a:entry/a:title") == ["<script>alert(2)</script> diffusion"]
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in texts(root, "a:entry/a:summary")[0]


def test_the_keyword_feed_lists_matching_papers_newest_first(client: Client) -> None:
    nlp = first_category()
    for day in (date(2026, 8, 12), date(2026, 8, 13)):
        issue_create(day=day, categories=[nlp], status=Digest.Status.SENT, papers_per_section=3)
    papers = Paper.objects.order_by("digest__date", "arxiv_id")
    titles = ["Diffusion models", "Graph neural network survey", "Diffusion survey", "Other"]
    for paper, title in zip(papers, titles, strict=False):
        Paper.objects.filter(pk=paper.pk).update(title=title)
    newest = papers.filter(digest__date=date(2026, 8, 13)).first()
    assert newest is not None
    Paper.objects.filter(pk=newest.pk).update(abstract="We study DIFFUSION.")

    response = client.get('/archive/atom.xml?q=diffusion,"graph neural network",-survey')

    root = atom_valid(response.content)
    own = "http://testserver/archive/atom.xml?q=diffusion%2Cgraph+neural+network%2C-survey"
    assert texts(root, "a:id") == [own]
    assert root.xpath("a:link[@rel='self']/@href", namespaces=NS) == [own]
    assert texts(root, "a:entry/a:title")[0] == newest.title
    assert texts(root, "a:entry/a:title")[1:] == ["Diffusion models"]
    assert root.xpath("a:entry/a:link/@href", namespaces=NS)[1].startswith("https://arxiv.org/")


@pytest.mark.parametrize(
    "query", ["", "-survey", '"unclosed', "x" * 1001, ",".join(f"w{n}" for n in range(21))]
)
def test_a_malformed_or_too_long_query_is_400(client: Client, query: str) -> None:
    response = client.get("/archive/atom.xml", {"q": query})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain") and len(response.content) < 300


def test_the_keyword_feed_is_cached_until_an_issue_changes(client: Client) -> None:
    digest = issue_create(categories=[first_category()], status=Digest.Status.SENT)
    Paper.objects.filter(digest=digest).update(title="Diffusion")
    assert len(atom_valid(client.get("/archive/atom.xml?q=diffusion").content)) > 0

    Paper.objects.filter(digest=digest).update(title="Nothing")
    cached = atom_valid(client.get("/archive/atom.xml?q=DIFFUSION").content)
    assert texts(cached, "a:entry/a:title")[0] == "Diffusion"  # same rules, same state

    digest.save()  # the issue changed: a new state, a new key
    fresh = atom_valid(client.get("/archive/atom.xml?q=diffusion").content)
    assert texts(fresh, "a:entry/a:title") == []


@pytest.mark.parametrize(
    "url", ["/archive/atom.xml", "/archive/{slug}/atom.xml", "/archive/atom.xml?q=x"]
)
def test_every_feed_answers_a_conditional_get_with_304(client: Client, url: str) -> None:
    category = first_category()
    issue_create(categories=[category], status=Digest.Status.SENT, papers_per_section=1)
    url = url.format(slug=category.slug)
    first = client.get(url)
    assert first.status_code == 200 and first["ETag"] and first["Last-Modified"]

    assert client.get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    since = client.get(url, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert since.status_code == 304

    issue_create(day=date(2026, 8, 14), categories=[category], status=Digest.Status.SENT)
    again = client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200 and again["ETag"] != first["ETag"]


def test_feeds_are_valid_atom_and_linked_from_the_archive_pages(client: Client) -> None:
    category = first_category()
    issue_create(status=Digest.Status.SENT, papers_per_section=1)
    atom_valid(client.get("/archive/atom.xml").content)
    feed = f'href="/archive/{category.slug}/atom.xml"'
    for page in ("/archive/", "/archive/2026-08-13/"):
        html = client.get(page).content.decode()
        assert f'<link rel="alternate" type="application/atom+xml" {feed}' in html
        assert f'<a {feed} type="application/atom+xml">{category.name}</a>' in html
