"""Reads a form out of an admin page the way a browser would submit it, so a test can change
a few fields and post the rest as they were shown (inline management forms included); and the
helpers the digest page's tests share (its URLs, the page as words, its messages)."""

from __future__ import annotations

import importlib
import re
from html import unescape
from html.parser import HTMLParser
from typing import Any

from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse


class _FormReader(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.data: dict[str, list[str]] = {}
        self._textarea: str | None = None
        self._select: str | None = None
        self._select_multiple = False
        self._text: list[str] = []

    def _add(self, name: str, value: str) -> None:
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name and "disabled" not in a:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._add(name, a.get("value", "on"))
            elif kind not in ("submit", "button", "file", "image"):
                self._add(name, a.get("value", ""))
        elif tag == "textarea" and name and "disabled" not in a:
            self._textarea, self._text = name, []
        elif tag == "select" and name and "disabled" not in a:
            self._select, self._select_multiple = name, "multiple" in a
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self._add(self._select, a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "textarea" and self._textarea:
            text = "".join(self._text)
            self._add(self._textarea, text[1:] if text.startswith("\n") else text)
            self._textarea = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text.append(data)


def form_fields(html: str, form_id: str) -> dict[str, Any]:
    """Field name -> value (a list for several values), as the browser would post them."""
    reader = _FormReader(form_id)
    reader.feed(html)
    if not reader.data:
        raise AssertionError(f"no form #{form_id} with fields on the page")
    return {k: (v[0] if len(v) == 1 else v) for k, v in reader.data.items() if v}


def groups_ensure() -> None:
    """The migration's groups; a transactional test's flush removes them with every row."""
    if Group.objects.filter(name__in=["Editors", "Viewers"]).count() < 2:
        roles = importlib.import_module("digests.migrations.0005_editor_groups")
        roles.groups_create(django_apps, None)


def staff_in(group: str, username: str, password: str = "") -> User:
    """A staff user in one of the groups the migration creates (Editors, Viewers)."""
    groups_ensure()
    user = User.objects.create_user(
        username=username, email=f"{username}@example.com", password=password or None, is_staff=True
    )
    user.groups.add(Group.objects.get(name=group))
    return user


def client_for(user: User) -> Client:
    """A test client logged in as `user`."""
    client = Client()
    client.force_login(user)
    return client


# --- The digest's admin pages ---------------------------------------------------------------


def digest_url(name: str, digest: Any) -> str:
    """`admin:digests_digest_<name>` of an issue (change, preview, approve, send_test, ...)."""
    return reverse(f"admin:digests_digest_{name}", args=[digest.pk])


def page_text(response: Any) -> str:
    """The page as words: tags dropped, entities decoded, whitespace collapsed."""
    html = response.content.decode()
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def shown_messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def change_page(client: Client, digest: Any) -> Any:
    response = client.get(digest_url("change", digest))
    assert response.status_code == 200
    return response
