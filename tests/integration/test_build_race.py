"""Two builds of the same day racing on PostgreSQL end with one Digest and one set of sections."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection

from digests.build import digest_build
from digests.models import Digest, SectionPaper
from tests.factories import paper_create
from tests.integration.conftest import run_at_once

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DAY = date(2026, 8, 13)


def test_two_builds_of_one_day_racing_make_one_digest(settings, default_categories) -> None:  # type: ignore[no-untyped-def]
    assert connection.vendor == "postgresql"
    settings.OPENAI_API_KEY = ""
    for topic in ("translation", "video segmentation", "robot policy", "quantization"):
        paper_create(title=f"A paper on {topic}", announced_on=DAY)
    _, errors = run_at_once(lambda: digest_build(day=DAY))

    assert errors == []
    assert Digest.objects.filter(date=DAY).count() == 1
    digest = Digest.objects.get(date=DAY)
    assert digest.build_count == 2
    assert SectionPaper.objects.filter(section__digest=digest).count() == 4
