"""The feeds in the admin: who may change them (issue 5)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from digests.models import Feed
from tests.admin_forms import client_for, form_fields, staff_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor() -> User:
    return staff_in("Editors", "eun-ji")


@pytest.fixture
def viewer() -> User:
    return staff_in("Viewers", "min-ho")


def feed_change(client: Client, feed: Feed, **changes: str) -> Any:
    url = reverse("admin:digests_feed_change", args=[feed.pk])
    fields = form_fields(client.get(url).content.decode(), "feed_form")
    return client.post(url, {**fields, **changes, "_save": "Save"})


def test_a_superuser_and_an_editor_change_a_feed(admin_user: User, editor: User) -> None:
    feed = Feed.objects.create(url="https://rss.arxiv.org/rss/cs.AI", name="cs.AI")

    assert feed_change(client_for(admin_user), feed, name="arXiv cs.AI").status_code == 302
    feed.refresh_from_db()
    assert feed.name == "arXiv cs.AI"

    response = feed_change(client_for(editor), feed, url="https://rss.arxiv.org/rss/cs.LG")
    assert response.status_code == 302
    feed.refresh_from_db()
    assert feed.url == "https://rss.arxiv.org/rss/cs.LG"


def test_a_viewer_cannot_change_a_feed(viewer: User) -> None:
    feed = Feed.objects.create(url="https://rss.arxiv.org/rss/cs.AI", name="cs.AI")
    client = client_for(viewer)
    url = reverse("admin:digests_feed_change", args=[feed.pk])

    page = client.get(url)
    refused = client.post(url, {"url": "https://evil.example/rss", "name": "x", "enabled": "on"})

    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    assert refused.status_code == 403
    feed.refresh_from_db()
    assert feed.url == "https://rss.arxiv.org/rss/cs.AI"
