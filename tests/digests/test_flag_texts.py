"""A flag's message and a run's reason are stored in English with their template and parameters
(digests/editor_text.py): the checks and the LLM's retry prompt read the English, the admin the
editor's language."""

from __future__ import annotations

from django.utils import translation

from digests.editing import flag_message
from digests.langcheck import language_issues
from digests.summarize import flag


def test_a_flag_keeps_its_english_message_and_the_template_it_was_made_from() -> None:
    issue = language_issues(text="본 연구者は 새로운 방법을 제안합니다.", language="ko")[0]
    stored = flag(issue.code, issue.message)

    assert stored["message"] == "Japanese characters in Korean text: 者は"
    assert stored["template"] == "%(script)s characters in %(language)s text: %(words)s"
    with translation.override("ko"):
        assert flag_message(stored) == "한국어 글에 일본어 글자: 者は"
    with translation.override("ja"):
        assert flag_message(stored) == "韓国語 の文章に 日本語 の文字: 者は"
    with translation.override("en"):
        assert flag_message(stored) == stored["message"]


def test_a_flag_stored_before_templates_were_kept_shows_its_english_message() -> None:
    old = {"code": "uncited", "message": "never cites [2] “A title”"}
    with translation.override("ko"):
        assert flag_message(old) == "never cites [2] “A title”"
    broken = {"code": "uncited", "message": "never cites [2]", "template": "never cites %(x)s"}
    with translation.override("ko"):
        assert flag_message(broken) == "never cites [2]"  # a parameter missing: the English
