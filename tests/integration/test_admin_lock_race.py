"""Two editors saving the same issue at the same moment on PostgreSQL: one save wins, the other
is refused with the message and nothing is silently overwritten (issue 5, the locking rule).

Both pages were opened at the same version; the two POSTs are released together, each on its
own database connection, so the second save's version check runs while the first save's
transaction is still open. The row lock taken by the check makes it wait and then see the new
version.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from digests.models import Category, Digest, DigestSection
from tests.admin_forms import client_for, form_fields, staff_in
from tests.integration.conftest import run_at_once
from tests.issue_factory import issue_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROUNDS = 5


def test_two_saves_at_once_one_wins_and_the_other_is_refused(default_categories: None) -> None:
    assert connection.vendor == "postgresql"
    digest = issue_create(categories=list(Category.objects.order_by("position")[:2]))
    url = reverse("admin:digests_digest_change", args=[digest.pk])
    editors = [client_for(staff_in("Editors", name)) for name in ("eun-ji", "min-jun")]
    section = DigestSection.objects.filter(digest=digest).order_by("position").first()
    assert section is not None

    for round_ in range(ROUNDS):
        start = Digest.objects.get(pk=digest.pk).version
        forms: list[dict[str, Any]] = []
        for n, client in enumerate(editors):
            fields = form_fields(client.get(url).content.decode(), "digest_form")
            fields["sections-0-summary"] = f"편집자 {n}의 글, {round_}번째 [1]."
            forms.append(fields)
        assert {f["version"] for f in forms} == {str(start)}
        turns = iter(range(len(editors)))

        def save(
            turns: Iterator[int] = turns, forms: list[dict[str, Any]] = forms
        ) -> tuple[int, str, int]:
            n = next(turns)
            response = editors[n].post(url, forms[n])
            return n, response.content.decode(), response.status_code

        results, errors = run_at_once(save, times=len(editors))

        assert errors == []
        saved = [n for n, _, status in results if status == 302]
        refused = [page for _, page, status in results if status == 200]
        assert len(saved) == 1 and len(refused) == 1, [status for _, _, status in results]
        assert "Not saved:" in refused[0] and "changed this issue at" in refused[0]
        winner = saved[0]
        loser = 1 - winner
        assert f"편집자 {loser}의 글, {round_}번째 [1]." in refused[0], "kept in the form"
        section.refresh_from_db()
        assert section.summary == f"편집자 {winner}의 글, {round_}번째 [1]."
        assert Digest.objects.get(pk=digest.pk).version == start + 1
