"""What the admin shows from stored English, in the editor's language: Django's permission names
(stored in English when created), django-celery-beat's pages (its own catalogues lack Japanese
and leave Korean entries in English), a section's flags and a daily run's reasons (stored as
English with their template: digests/editor_text.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone, translation
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from digests.models import Category, DailyRun, Regeneration
from digests.pipeline import daily_run
from digests.regenerate import NO_PAPERS
from digests.reportcheck import uncited_problem
from digests.summarize import flag
from newsletter.third_party_messages import CELERY_BEAT_MESSAGES
from tests.admin_forms import page_text
from tests.issue_factory import issue_create

pytestmark = pytest.mark.django_db


def editor_chooses(client: Any, language: str) -> None:
    client.post("/i18n/setlang/", {"language": language, "next": "/admin/"})


@pytest.fixture
def editors() -> Group:
    group = Group.objects.create(name="Reviewers")
    group.permissions.set(Permission.objects.filter(content_type__app_label="digests"))
    return group


@pytest.mark.parametrize(
    ("language", "shown"),
    [
        ("ko", ["구독자 추가 가능", "호를 승인하고 발송을 예약·취소할 수 있음"]),
        ("ja", ["購読者 を追加できる", "号を承認し、配信を予約・取り消しできる"]),
    ],
)
def test_the_group_page_names_permissions_in_the_editors_language(
    admin_client: Any, editors: Group, language: str, shown: list[str]
) -> None:
    editor_chooses(admin_client, language)
    text = page_text(admin_client.get(reverse("admin:auth_group_change", args=[editors.pk])))
    assert [name for name in shown if name not in text] == []
    assert "Can add" not in text and "Can approve" not in text and "Can view" not in text


def visible_english(text: str, language: str) -> list[str]:
    """The catalogue's msgids of django-celery-beat that a page still shows in English (those
    whose translation is another text)."""
    with translation.override(language):
        translated = [m for m in CELERY_BEAT_MESSAGES if translation.gettext(m) != m]
    words = f" {text} "
    return [m for m in translated if f" {m} " in words or f" {m}:" in words]


def test_the_periodic_task_pages_are_in_japanese(admin_client: Any) -> None:
    every_hour = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(
        name="hourly", task="digests.tasks.auto_approve", interval=every_hour
    )
    editor_chooses(admin_client, "ja")
    changelist = page_text(
        admin_client.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    )
    add = page_text(admin_client.get(reverse("admin:django_celery_beat_periodictask_add")))
    assert "定期タスク" in changelist and "選択したタスクを有効にする" in changelist
    assert "スケジュール" in add and "位置引数" in add and "優先度" in add
    assert visible_english(changelist, "ja") == []
    assert visible_english(add, "ja") == []
    # The task field's name, which the package leaves in English (newsletter/beat_admin.py).
    assert "Task Name" not in changelist and "タスク名" in changelist
    schedule = page_text(
        admin_client.get(
            reverse("admin:django_celery_beat_intervalschedule_change", args=[every_hour.pk])
        )
    )
    assert "Task Name" not in schedule and "タスク名" in schedule and "hourly" in schedule


def test_running_a_periodic_task_is_told_in_the_editors_language(
    admin_client: Any, settings: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    every_hour = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    task = PeriodicTask.objects.create(
        name="notices", task="subscribers.tasks.notices_send", interval=every_hour
    )
    editor_chooses(admin_client, "ja")
    page = admin_client.post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": "run_tasks", "_selected_action": [task.pk]},
        follow=True,
    )
    text = page_text(page)
    assert "1 件のタスクを実行しました。" in text
    assert "successfully run" not in text


def test_a_flagged_sections_message_is_shown_in_the_editors_language(admin_client: Any) -> None:
    digest = issue_create(categories=list(Category.objects.order_by("position")[:1]))
    section = digest.sections.get()
    problem = uncited_problem(cited=frozenset({1}), titles=["First", "Second paper title"])
    assert problem == "never cites [2] “Second paper title”"  # English where it is stored
    section.flags = [flag("uncited", problem)]
    section.save()
    url = reverse("admin:digests_digest_change", args=[digest.pk])
    editor_chooses(admin_client, "ja")
    text = page_text(admin_client.get(url))
    assert "引用していない論文: [2] “Second paper title”" in text
    assert "never cites" not in text


def test_a_runs_reasons_are_shown_in_the_editors_language(
    admin_client: Any, tmp_path: Path
) -> None:
    daily_run(urls=[str(tmp_path / "nowhere.xml")])
    run = DailyRun.objects.get()
    assert run.reasons[0].startswith("Every feed failed; nothing built.")  # stored in English
    editor_chooses(admin_client, "ko")
    text = page_text(admin_client.get(reverse("admin:digests_dailyrun_change", args=[run.pk])))
    assert "모든 피드가 실패해 아무것도 만들지 않았습니다." in text
    assert "Every feed failed" not in text and "To try it offline" not in text


def test_a_regenerations_reason_and_progress_are_in_the_editors_language(
    admin_client: Any,
) -> None:
    first, second = list(Category.objects.order_by("position")[:2])
    digest = issue_create(categories=[first, second], papers_per_section=1)
    failed_section, busy_section = list(digest.sections.order_by("position"))
    Regeneration.objects.create(
        section=failed_section,
        status=Regeneration.Status.FAILED,
        error=NO_PAPERS,
        finished_at=timezone.now(),
    )
    busy = Regeneration.objects.create(section=busy_section, status=Regeneration.Status.RUNNING)
    editor_chooses(admin_client, "ja")

    page = admin_client.get(reverse("admin:digests_digest_change", args=[digest.pk]))
    text = page_text(page)
    html = page.content.decode()

    assert "このセクションには論文がありません" in text and NO_PAPERS not in text
    # The words regenerate.js shows while it polls, from the page in the editor's language.
    assert 'data-text-running="LLM が新しい文章を書いています（{seconds} 秒）…"' in html
    assert "The LLM is writing" not in html
    assert busy.status == Regeneration.Status.RUNNING
    failed = Regeneration.objects.get(section=failed_section)
    answer = admin_client.get(
        reverse("admin:digests_digest_regeneration_status", args=[digest.pk, failed.pk])
    ).json()
    assert answer["error"].startswith("このセクションには論文がありません")
