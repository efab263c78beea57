"""A reader's keywords: the rules, the pages that take them, and the email they shape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone, translation

from digests.models import Category, Digest, Paper
from subscribers import rendering
from subscribers.admin_views.preview import email_preview, reader_choice
from subscribers.csv_io import csv_lines, subscribers_csv_rows, subscribers_import
from subscribers.keywords import (
    KeywordError,
    KeywordRules,
    PaperIndex,
    rules_key,
    rules_make,
    rules_parse,
)
from subscribers.models import Delivery, Subscriber
from subscribers.sending import plan
from subscribers.services import ReaderChoice, keywords_apply
from subscribers.tasks import send_start
from subscribers.tokens import Purpose
from tests.fakes.esp_server import FakeESP
from tests.issue_factory import issue_create, paper_make

from .factories import path_of, signup_data, subscriber_create

DOMAIN = "mg.example.com"


def rules(include: str = "", exclude: str = "", everywhere: bool = False) -> KeywordRules:
    return rules_make(include=include, exclude=exclude, all_categories=everywhere)


def matched(rule_set: KeywordRules, title: str, abstract: str = "") -> str:
    return rule_set.match(title=title, abstract=abstract)


# --- the rules ------------------------------------------------------------------------------------


def test_a_keyword_matches_whole_words_in_any_letter_case() -> None:
    rl = rules("RL")
    assert matched(rl, "Offline rl for robots") == "include"
    assert matched(rl, "RL-based agents") == "include"
    assert matched(rl, "Parsing every URL") == ""
    assert matched(rl, "RLHF at scale") == ""
    assert matched(rules("transform*"), "Transformers are sequence models") == "include"
    assert matched(rules("transform*"), "A retransformed view") == ""


def test_a_phrase_matches_its_words_in_order_across_spaces_and_lines() -> None:
    phrase = rules('"graph neural network"')
    assert matched(phrase, "A Graph  Neural\nNetwork for molecules") == "include"
    assert matched(phrase, "Network graphs, neural or not") == ""
    assert matched(rules("graph neural network"), "graph neural network") == "include"
    assert matched(phrase, "", "We train a graph neural network.") == "include"  # the abstract


def test_exclude_wins_over_include() -> None:
    both = rules("diffusion", "survey")
    assert matched(both, "Diffusion models: a survey") == "exclude"
    assert matched(both, "Diffusion for video") == "include"
    assert matched(both, "A survey of agents") == "exclude"


def test_the_word_index_finds_what_one_paper_at_a_time_finds() -> None:
    titles = [
        "Offline RL for robots",
        "Parsing every URL",
        "A graph\nneural network",
        "Transformers everywhere",
        "Diffusion models: a survey",
        "C++ code generation",
        "snake_case identifiers",
    ]
    index = PaperIndex(titles)
    rule_set = rules('rl\n"graph neural network"\ntransform*\nc++\nsnake_*\ndiffusion', "survey")
    included, excluded = index.rules_matches(rule_set)
    by_one = [matched(rule_set, title) for title in titles]
    assert included == {n for n, kind in enumerate(by_one) if kind == "include"} == {0, 2, 3, 5, 6}
    assert excluded == {n for n, kind in enumerate(by_one) if kind == "exclude"} == {4}


def test_the_key_names_the_normalised_rules() -> None:
    one = rules('RL\n"Graph Neural Network"', "survey", everywhere=True)
    same = rules("graph   neural network\n\nrl\nRL", "Survey", everywhere=True)
    assert one.key == same.key == rules_key(same) and len(one.key) == 16
    assert rules("rl", "survey", everywhere=False).key != one.key
    assert rules().key == ""
    assert rules("", "survey", everywhere=True) == rules("", "survey")  # nothing to find elsewhere


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('rl\n""', "Line 2: the quotation marks are empty."),
        ('"graph neural', "Line 1: a quotation mark is not closed."),
        ("x" * 61, "Line 1: a keyword can have at most 60 characters."),
        ("a*b", "Line 1: use * only once, at the end of a word."),
        ("\n".join(f"k{n}" for n in range(21)), "At most 20 keywords, one per line"),
    ],
)
def test_a_bad_list_is_refused_naming_the_line(text: str, message: str) -> None:
    with translation.override("en"), pytest.raises(KeywordError) as error:
        rules_parse(text)
    assert any(m.startswith(message) for m in error.value.messages), error.value.messages


# --- the pages ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_signup_with_keywords_and_weekly_is_saved_with_its_key(visitor: Client) -> None:
    data = signup_data(
        keywords_include='RL\n"graph neural network"',
        keywords_exclude="survey",
        keywords_all_categories="on",
        cadence="weekly",
    )
    response = visitor.post("/subscribe/?lang=en", data)

    assert response.status_code == 302
    reader = Subscriber.objects.get()
    assert reader.keywords_include == 'RL\n"graph neural network"'
    assert reader.keywords_exclude == "survey"
    assert reader.keywords_all_categories and reader.cadence == "weekly"
    assert reader.keywords_key == rules('RL\n"graph neural network"', "survey", True).key


@pytest.mark.django_db
def test_bad_keywords_reshow_the_form_with_the_line_named_and_everything_typed(
    visitor: Client,
) -> None:
    typed = 'RL\n""\n<b>diffusion</b>'
    data = signup_data(
        keywords_include=typed, keywords_exclude="survey", cadence="weekly", email="r@example.com"
    )
    for lang, message in [
        ("en", "Line 2: the quotation marks are empty."),
        ("ko", "2번째 줄: 따옴표 안이 비어 있습니다."),
    ]:
        response = visitor.post(f"/subscribe/?lang={lang}", data)
        text = response.content.decode()
        assert response.status_code == 200 and not Subscriber.objects.exists()
        assert message in text
        assert "RL\n&quot;&quot;\n&lt;b&gt;diffusion&lt;/b&gt;</textarea>" in text
        assert ">survey</textarea>" in text
        assert 'value="r@example.com"' in text
        assert 'value="weekly" id="id_cadence_1" checked>' in text
        assert 'aria-invalid="true"' in text
    assert mail.outbox == []


@pytest.mark.django_db
def test_the_preferences_page_shows_and_saves_the_rules_and_the_cadence(
    visitor: Client,
    settings: Any,
) -> None:
    settings.DIGEST_LANGUAGES = ["ko", "en"]  # the language is offered, and saved with the rest
    reader = subscriber_create(email="reader@example.com")
    keywords_apply(reader, choice=ReaderChoice("diffusion", "survey", True, "weekly"))
    reader.save()
    path = path_of(reader, Purpose.PREFERENCES)

    text = visitor.get(path + "?lang=en").content.decode()
    assert ">diffusion</textarea>" in text and ">survey</textarea>" in text
    assert 'name="keywords_all_categories" id="id_keywords_all_categories" value="on" checked>' in (
        text
    )
    assert 'value="weekly" id="id_cadence_1" checked>' in text
    assert "Keywords to look for" in text and "Weekly: the week" in text

    chosen = [str(c.pk) for c in Category.objects.filter(active=True)[:1]]
    form = {"action": "save", "categories": chosen, "language": "en", "cadence": "daily"}
    text = visitor.post(path, {**form, "keywords_include": "agents\nRL"}).content.decode()
    reader.refresh_from_db()
    assert "Your choices are saved." in text
    assert reader.keywords_include == "agents\nRL" and reader.keywords_exclude == ""
    assert not reader.keywords_all_categories and reader.cadence == "daily"
    assert reader.keywords_key == rules("rl\nagents").key
    assert ">agents\nRL</textarea>" in text

    text = visitor.post(path, {**form, "keywords_exclude": "x" * 61}).content.decode()
    reader.refresh_from_db()
    assert "Your choices were not saved." in text
    assert "Line 1: a keyword can have at most 60 characters." in text
    assert reader.keywords_include == "agents\nRL"  # unchanged
    assert "x" * 61 + "</textarea>" in text


@pytest.mark.django_db
def test_the_korean_page_offers_the_new_fields_in_korean(visitor: Client) -> None:
    text = visitor.get("/subscribe/").content.decode()
    assert "찾을 키워드" in text and "뺄 키워드" in text and "매주" in text


# --- the email ------------------------------------------------------------------------------------


def categories() -> list[Category]:
    return list(Category.objects.order_by("position", "name"))


def day_paper(digest: Digest, category: Category, title: str, importance: int = 3) -> Paper:
    """A paper of the day in the category that is not among its section's top papers."""
    paper = paper_make(day=digest.date, title=title)
    Paper.objects.filter(pk=paper.pk).update(
        category=category, digest=digest, importance=importance, classified_by="llm"
    )
    return paper


@pytest.fixture
def issue() -> Digest:
    """Two top papers per section; the first section's first is about a survey; a diffusion
    paper beyond the top in the first section and one in the third."""
    cats = categories()
    digest = issue_create(papers_per_section=2)
    top = digest.sections.get(category=cats[0]).entries.order_by("position").first()
    assert top is not None
    Paper.objects.filter(pk=top.paper_id).update(title="A survey of everything top")
    day_paper(digest, cats[0], "Diffusion beyond the top papers")
    day_paper(digest, cats[2], "Diffusion in another category")
    day_paper(digest, cats[0], "Nothing to see here")
    digest.refresh_from_db()
    return digest


def email_of(digest: Digest, reader: Subscriber) -> rendering.RenderedVariant:
    key = rendering.variant_key(reader.categories.values_list("pk", flat=True), reader.keywords_key)
    content = rendering.digest_context(digest=digest)
    cid = rendering.chart_cid_make(digest_id=digest.pk, key=key)
    return rendering.variant_render(content=content, key=key, language="en", chart_cid=cid)


def keyword_reader(
    include: str = "", exclude: str = "", everywhere: bool = False, **fields: Any
) -> Subscriber:
    reader = subscriber_create(categories=categories()[:2], **fields)
    keywords_apply(reader, choice=ReaderChoice(include, exclude, everywhere))
    reader.save()
    return reader


@pytest.mark.django_db
def test_an_excluded_paper_never_appears_in_that_readers_email(issue: Digest) -> None:
    plain = email_of(issue, keyword_reader())
    assert "A survey of everything top" in plain.html and "A survey of everything top" in plain.text

    shaped = email_of(issue, keyword_reader(exclude="SURVEY"))
    for part in (shaped.html, shaped.text):
        assert "A survey of everything top" not in part
        assert "Nothing to see here" not in part
    assert shaped.html.count('<ol class="src">') == 2  # both sections still there
    assert "1 of the 5 new papers" in shaped.text  # the count says what is shown


@pytest.mark.django_db
def test_an_include_match_is_shown_and_marked_beyond_the_top_papers(issue: Digest) -> None:
    shaped = email_of(issue, keyword_reader(include="diffusion\n<script>"))
    assert "Diffusion beyond the top papers" in shaped.html
    assert "★ keyword</span><a href=" in shaped.html
    assert "<script>" not in shaped.html
    assert "[★ keyword] Diffusion beyond the top papers" in shaped.text
    assert "3 of the 5 new papers" in shaped.text
    assert "Diffusion in another category" not in shaped.text  # not a chosen category
    assert "Nothing to see here" not in shaped.text


@pytest.mark.django_db
def test_matches_from_other_categories_come_when_the_reader_asks(issue: Digest) -> None:
    shaped = email_of(issue, keyword_reader(include="diffusion", everywhere=True))
    other = categories()[2].name
    assert "★ Your keywords in other categories" in shaped.html
    assert "Diffusion in another category" in shaped.html
    assert f"[★ keyword] Diffusion in another category\n   {other} · " in shaped.text
    assert shaped.text.count("== ") == 3  # two sections and the keywords'


@pytest.mark.django_db
def test_the_summaries_stay_the_editors_text(issue: Digest) -> None:
    plain = email_of(issue, keyword_reader())
    shaped = email_of(issue, keyword_reader(include="diffusion", exclude="survey"))
    summary = issue.sections.order_by("position").first()
    assert summary is not None
    first_line = summary.summary.splitlines()[0].strip("*")
    assert first_line in plain.text and first_line in shaped.text


@pytest.mark.django_db
def test_the_admin_preview_as_a_reader_shows_their_marks(issue: Digest) -> None:
    reader = keyword_reader(include="diffusion", exclude="survey", language="en")
    shown = email_preview(digest=issue, choice=reader_choice(subscriber=reader))
    assert "★ keyword" in shown.html and "Diffusion beyond the top papers" in shown.text
    assert "A survey of everything top" not in shown.text


# --- the send -------------------------------------------------------------------------------------


@pytest.fixture
def mailgun(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeESP]:
    monkeypatch.setattr("subscribers.tasks.EAGER_RETRY_MAX_SLEEP", 0.0)
    with FakeESP() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
        settings.ANYMAIL = {
            "MAILGUN_API_KEY": "key",
            "MAILGUN_SENDER_DOMAIN": DOMAIN,
            "MAILGUN_API_URL": fake.base_url + "/v3",
        }
        settings.DEFAULT_FROM_EMAIL = f"Daily AI Insights <digest@{DOMAIN}>"
        settings.SITE_URL = "https://insights.example.org"
        settings.CELERY_TASK_ALWAYS_EAGER = True
        yield fake


@pytest.fixture
def send(django_capture_on_commit_callbacks: Callable[..., Any]) -> Callable[[Digest], Any]:
    def run(digest: Digest) -> plan.Plan:
        Digest.objects.filter(pk=digest.pk).update(
            status=Digest.Status.APPROVED, send_at=timezone.now() - timedelta(minutes=1)
        )
        with django_capture_on_commit_callbacks(execute=True):
            return send_start(digest.pk)

    return run


@pytest.mark.django_db
def test_readers_with_the_same_rules_share_one_rendering_and_one_call(
    mailgun: FakeESP, send: Callable[[Digest], Any], issue: Digest
) -> None:
    one = keyword_reader("Diffusion", "survey", email="one@example.com")
    two = keyword_reader("diffusion\n\n", "SURVEY", email="two@example.com")
    plain = keyword_reader(email="plain@example.com")
    idle = keyword_reader("quantum", email="idle@example.com")  # matches nothing today

    send(issue)

    variants = dict(Delivery.objects.values_list("email", "variant"))
    categories_key = rendering.variant_key(c.pk for c in categories()[:2])
    assert variants["one@example.com"] == variants["two@example.com"]
    assert variants["one@example.com"] == f"{categories_key}+{one.keywords_key}"
    assert variants["plain@example.com"] == variants["idle@example.com"] == categories_key
    assert two.keywords_key == one.keywords_key and idle.keywords_key
    assert sorted(sorted(call.to) for call in mailgun.calls) == [
        ["idle@example.com", "plain@example.com"],
        ["one@example.com", "two@example.com"],
    ]
    shaped = mailgun.call_for("one@example.com")
    assert "Diffusion beyond the top papers" in shaped.text
    assert "A survey of everything top" not in shaped.text
    assert "A survey of everything top" in mailgun.call_for("plain@example.com").text
    assert plain.keywords_key == ""


@pytest.mark.django_db
def test_a_reader_who_changed_their_rules_since_the_plan_gets_their_current_rules(
    issue: Digest,
) -> None:
    reader = keyword_reader(exclude="survey")
    old_key = reader.keywords_key
    Delivery.objects.create(
        digest=issue,
        subscriber=reader,
        email=reader.email,
        variant=rendering.variant_key([c.pk for c in categories()[:2]], old_key),
    )
    keywords_apply(reader, choice=ReaderChoice("", "survey\neverything"))
    reader.save()

    assert rendering.keyword_rules(key=old_key, digest_id=issue.pk).exclude == (
        "everything",
        "survey",
    )


# --- CSV ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_csv_export_and_import_carry_the_rules_and_the_cadence() -> None:
    reader = keyword_reader('=cmd\n"graph neural network"', "survey", True, email="j@example.com")
    Subscriber.objects.filter(pk=reader.pk).update(cadence="weekly")
    reader.refresh_from_db()
    rows = list(subscribers_csv_rows(subscribers=[reader]))
    exported = dict(zip(rows[0], rows[1], strict=True))
    assert exported["cadence"] == "weekly"
    assert exported["keywords_include"] == '\'=cmd\n"graph neural network"'  # no formula
    assert (exported["keywords_exclude"], exported["keywords_all_categories"]) == ("survey", "yes")

    Subscriber.objects.all().delete()
    exported["email"] = "k@example.com"
    bad = {**exported, "email": "bad@example.com", "keywords_exclude": '""'}
    text = "".join(csv_lines([rows[0], list(exported.values()), list(bad.values())]))
    report = subscribers_import(
        data=text.encode(), confirmed=False, consent_note="", imported_by="admin"
    )

    assert report.created == ["k@example.com"]
    assert report.invalid == [(5, "키워드: 1번째 줄: 따옴표 안이 비어 있습니다.")]
    imported = Subscriber.objects.get()
    assert imported.keywords_include == '=cmd\n"graph neural network"'
    assert imported.keywords_key == reader.keywords_key and imported.cadence == "weekly"


@pytest.mark.django_db
def test_small_keyword_variants_share_a_chunk_and_each_costs_one_call(
    mailgun: FakeESP, send: Callable[[Digest], Any], issue: Digest
) -> None:
    for number, (include, exclude) in enumerate([("diffusion", ""), ("", "survey"), ("top", "")]):
        keyword_reader(include, exclude, email=f"kw{number}@example.com")
    keyword_reader(email="plain@example.com")

    report = send(issue)

    assert sorted(len(chunk) for chunk in report.chunks) == [1, 3]  # plain, the three packed
    assert len(mailgun.calls) == 4 and len({call.text for call in mailgun.calls}) == 4
    assert Delivery.objects.filter(status="sent").count() == 4


@pytest.mark.django_db
def test_a_reader_with_no_section_today_still_gets_their_matches_from_elsewhere(
    issue: Digest,
) -> None:
    reader = subscriber_create(categories=[])
    keywords_apply(reader, choice=ReaderChoice("diffusion", "", True))
    reader.save()

    shaped = email_of(issue, reader)

    assert not shaped.empty and shaped.chart_png
    assert shaped.subject.endswith("· your keywords")
    assert "Diffusion beyond the top papers" in shaped.text
    assert "Diffusion in another category" in shaped.text
    assert email_of(issue, subscriber_create(categories=[])).empty  # without rules: the note
