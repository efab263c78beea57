from __future__ import annotations

from digests.langcheck import language_problems

CLEAN_KOREAN = (
    "대규모 언어 모델(LLM)은 코드 생성에서 기존 방법을 능가합니다 [1]. 연구진은 Transformer "
    "구조를 바탕으로 GPT-4o와 Llama 3를 비교했고, RAG 파이프라인이 환각을 줄인다고 보고합니다 [2]."
)


def test_a_clean_korean_paragraph_with_english_technical_terms_passes() -> None:
    assert language_problems(text=CLEAN_KOREAN, language="ko") == []


def test_chinese_characters_inside_a_korean_word_are_reported() -> None:
    text = "이러한 편향은 시장 동향과 사회적 평형에重大한 영향을 미칠 수 있습니다."

    assert language_problems(text=text, language="ko") == [
        "Chinese characters in Korean text: 重大"
    ]


def test_a_vietnamese_syllable_fused_with_hangul_is_reported() -> None:
    text = "본 연구에서는 원주민 언어를 체계화하고, 국가 dân족 통계 데이터를 제공하였다."

    assert language_problems(text=text, language="ko") == ["Vietnamese words: dân족"]


def test_vietnamese_words_between_korean_words_are_reported_as_one_phrase() -> None:
    text = "우리는 자동 회귀 giám sát 미세 조정(SFT)과 직접 선호도 최적화(DPO)를 사용했습니다."

    [problem] = language_problems(text=text, language="ko")

    assert problem.endswith(": giám sát")


def test_the_samples_three_bad_words_are_all_reported_in_one_text() -> None:
    text = (
        "평형에重大한 영향을 미칠 수 있습니다. 국가 dân족 통계 데이터를 제공하였다. "
        "자동 회귀 giám sát 미세 조정을 사용했습니다."
    )

    assert language_problems(text=text, language="ko") == [
        "Chinese characters in Korean text: 重大",
        "Vietnamese words: dân족, giám sát",
    ]


def test_accented_names_are_fine_when_they_are_allowed_terms() -> None:
    text = "Nguyễn Văn An 연구진과 Schölkopf 교수는 새로운 방법을 제안했습니다."

    assert language_problems(text=text, language="ko") != []
    allowed = ["Nguyễn Văn An", "Bernhard Schölkopf"]
    assert language_problems(text=text, language="ko", allowed_terms=allowed) == []


def test_japanese_kana_in_korean_text_is_reported() -> None:
    text = "이 모델은 データ 효율이 높습니다."

    assert language_problems(text=text, language="ko") == [
        "Japanese characters in Korean text: データ"
    ]


def test_text_that_is_mostly_english_is_not_korean() -> None:
    text = "This report summarises three papers about large language models 요약."

    [problem] = language_problems(text=text, language="ko")

    assert problem.startswith("text is mostly not Korean")


def test_quoted_english_titles_do_not_count_against_the_korean_majority() -> None:
    title = "Evolving Deeper LLM Thinking with Many Long English Words In It"
    text = f'첫 번째 논문 "{title}"은 추론을 개선합니다.'

    assert language_problems(text=text, language="ko", allowed_terms=[title]) == []


def test_hangul_and_han_in_english_text_are_reported() -> None:
    text = "Large language models show 重大 gains in 요약 quality."

    assert language_problems(text=text, language="en") == [
        "Chinese characters in English text: 重大",
        "Korean characters in English text: 요약",
    ]


def test_clean_english_and_accented_french_pass() -> None:
    assert language_problems(text="Models reason better with tools [1].", language="en") == []
    french = "Les modèles de langue généralisent mieux après un réglage fin."
    assert language_problems(text=french, language="fr") == []


def test_other_languages_get_a_script_majority_check() -> None:
    assert language_problems(text="これは日本語の文章です。", language="ja") == []
    [problem] = language_problems(text="This is not Japanese at all.", language="ja")
    assert problem.startswith("text is mostly not Japanese")


def test_an_unknown_language_is_not_checked() -> None:
    assert language_problems(text="whatever 重大", language="xx") == []
