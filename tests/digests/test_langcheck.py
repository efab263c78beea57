from __future__ import annotations

from digests.langcheck import language_issues, language_problems

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


# --- Every script that does not belong, fused fragments, paragraphs in another language --------


def codes_and_messages(text: str, language: str = "ko", allowed: list[str] | None = None) -> list:
    return [
        (p.code, p.message)
        for p in language_issues(text=text, language=language, allowed_terms=allowed or [])
    ]


def test_japanese_inside_a_korean_word_is_reported_once_as_japanese() -> None:
    text = "본 연구者は 대규모 언어 모델의 추론 능력을 평가하였다 [1]."

    assert codes_and_messages(text) == [("language", "Japanese characters in Korean text: 者は")]


def test_cyrillic_words_inside_a_korean_sentence_are_reported() -> None:
    text = "이 방법은 модели 압축을 통해 추론 비용을 절반으로 줄였습니다 [2]."

    assert codes_and_messages(text) == [("language", "Cyrillic characters in Korean text: модели")]


def test_greek_arabic_hebrew_thai_and_devanagari_each_get_their_own_flag() -> None:
    text = (
        "모델은 μοντέλο 구조와 نموذج 학습, מודל 평가, แบบจำลอง 분석, मॉडल 설계를 다룹니다. "
        "이 연구는 여러 언어의 데이터를 모아 새로운 평가 기준을 만들고 결과를 공개합니다."
    )

    assert codes_and_messages(text) == [
        ("language", "Greek characters in Korean text: μοντέλο"),
        ("language", "Arabic characters in Korean text: نموذج"),
        ("language", "Hebrew characters in Korean text: מודל"),
        ("language", "Thai characters in Korean text: แบบจำลอง"),
        ("language", "Devanagari characters in Korean text: मॉडल"),
    ]


def test_a_lone_greek_letter_is_a_math_symbol_not_a_word() -> None:
    text = "정규화 계수 λ를 0.1로 두고 β-VAE와 비교했습니다 [1]."

    assert language_issues(text=text, language="ko") == []


def test_english_text_reports_any_non_latin_script_but_not_in_allowed_terms() -> None:
    text = "The model, called Модель, beats the baseline on three benchmarks [1]."

    assert codes_and_messages(text, "en") == [
        ("language", "Cyrillic characters in English text: Модель")
    ]
    assert codes_and_messages(text, "en", allowed=["Модель: a Russian LLM"]) == []


def test_english_fragments_fused_into_hangul_words_are_reported() -> None:
    text = "이 기법은 모델의performance개선에 기여하며, 후속 연구ing 단계에서 검증됩니다 [1]."

    assert codes_and_messages(text) == [
        (
            "fused_latin",
            "English fragments fused into Korean words: 모델의performance개선에, 연구ing",
        )
    ]


def test_whole_english_terms_with_a_korean_particle_are_fine() -> None:
    text = (
        "LLM은 Transformer를 바탕으로 하며 GPT-4의 성능에 근접합니다. codealign은 vLLM을 "
        "사용하고, fine-tuning된 모델은 arXiv에 공개되었습니다. PixWizard라는 모델은 LoRA기반 "
        "학습과 PyTorch로 구현한 코드를 제공합니다."
    )

    assert language_issues(text=text, language="ko") == []


def test_english_paragraphs_under_korean_headings_are_reported_once() -> None:
    text = (
        "**요약 보고서**\n\n오늘 자연어 처리 분야의 논문 세 편을 살펴보았습니다 [1][2][3]. "
        "연구들은 효율성과 신뢰성을 함께 높이고 있습니다.\n\n"
        "**주제별 요약**\n\n"
        "1. **효율적인 어텐션**\n\nThe first paper proposes a sparse attention method that "
        "halves the cost of inference and outperforms dense attention on three benchmarks [1].\n\n"
        "2. **평가 방법**\n\nThe second paper shows that the evaluation of these models is "
        "often unreliable, and it introduces a new benchmark for long documents [2].\n\n"
        "**추세와 패턴**\n\n* 여러 연구가 대규모 모델의 효율을 다룹니다 [1][3].\n\n"
        "**결론**\n\n이러한 연구는 실제 적용을 앞당길 것으로 보입니다. 새로운 평가 기준과 "
        "효율적인 구조가 함께 발전하고 있으며, 앞으로 더 많은 분야에서 활용될 것입니다."
    )

    [(code, message)] = codes_and_messages(text)

    assert code == "wrong_language"
    assert message.startswith("2 paragraphs written in English instead of Korean: “The first")


def test_a_list_of_model_names_is_not_an_english_paragraph() -> None:
    text = (
        "비교 대상: GPT-4o, Claude 3.5 Sonnet, Gemini 1.5 Pro, Llama 3.1 70B, Mistral Large, "
        "Qwen2 72B Instruct, DeepSeek-V2 Chat [1].\n\n연구진은 이 모델들을 같은 조건에서 "
        "평가했고, 작은 모델도 적절한 미세 조정을 거치면 큰 모델에 가까운 성능을 낸다고 "
        "보고합니다. 특히 수학 추론과 코드 생성에서 차이가 크게 줄었습니다."
    )

    assert language_issues(text=text, language="ko") == []


def test_the_mostly_other_language_problem_has_its_own_code() -> None:
    text = "This report summarises three papers about large language models 요약."

    assert [p.code for p in language_issues(text=text, language="ko")] == ["wrong_language"]


# --- Prose in another language than the digest's, beyond English --------------------------------

PARAGRAPHS = {
    "English": (
        "The authors show that large language models outperform the baselines on three "
        "benchmarks, and they release their code [1]."
    ),
    "French": (
        "Les auteurs montrent que les grands modèles de langage surpassent les méthodes de "
        "référence sur trois jeux de données, et l'article publie le code [1]."
    ),
    "German": (
        "Die Autoren zeigen, dass die großen Sprachmodelle die Basismethoden auf drei "
        "Benchmarks übertreffen, und sie veröffentlichen den Code [1]."
    ),
    "Spanish": (
        "Los autores muestran que los grandes modelos de lenguaje superan a los métodos de "
        "referencia en tres conjuntos de datos, y publican el código [1]."
    ),
    "Portuguese": (
        "Os autores mostram que os grandes modelos de linguagem superam os métodos de "
        "referência em três conjuntos de dados, e o código é publicado [1]."
    ),
    "Italian": (
        "Gli autori mostrano che i grandi modelli linguistici superano i metodi di riferimento "
        "su tre insiemi di dati, e il codice è pubblicato con l'articolo [1]."
    ),
}
KOREAN_AROUND = (
    "**요약 보고서**\n\n오늘 자연어 처리 분야의 논문 세 편을 살펴보았습니다 [1][2][3]. "
    "연구들은 효율성과 신뢰성을 함께 높이고 있습니다.\n\n{paragraph}\n\n**결론**\n\n"
    "이러한 연구는 실제 적용을 앞당길 것으로 보입니다. 새로운 평가 기준과 효율적인 구조가 함께 "
    "발전하고 있으며, 앞으로 더 많은 분야에서 활용될 것입니다."
)
ENGLISH_AROUND = (
    "**Summary report**\n\nThree papers today study the efficiency and the reliability of "
    "large language models, and all of them report gains on public benchmarks [1][2][3].\n\n"
    "{paragraph}\n\n**Conclusion**\n\nThese results bring efficient models closer to practice, "
    "and the new benchmarks make it easier to compare them with the earlier work."
)


def test_a_paragraph_in_any_profiled_language_is_named_in_a_korean_text() -> None:
    for language, paragraph in PARAGRAPHS.items():
        text = KOREAN_AROUND.format(paragraph=paragraph)

        [(code, message)] = codes_and_messages(text)

        assert code == "wrong_language"
        assert message.startswith(f"1 paragraph written in {language} instead of Korean: “")


def test_a_paragraph_in_another_language_is_flagged_in_an_english_text() -> None:
    for language, paragraph in PARAGRAPHS.items():
        text = ENGLISH_AROUND.format(paragraph=paragraph)
        expected = (
            []
            if language == "English"
            else [
                (
                    "wrong_language",
                    f"1 paragraph written in {language} instead of English: "
                    f"“{paragraph[:79].rstrip()}…”",
                )
            ]
        )

        assert codes_and_messages(text, "en") == expected


def test_a_whole_text_in_another_latin_language_is_mostly_not_the_digests() -> None:
    text = "\n\n".join([PARAGRAPHS["German"]] * 3)

    assert codes_and_messages(text, "en") == [
        (
            "wrong_language",
            "text is mostly not English: it reads as German (21 German function words, 0 English)",
        )
    ]
    assert codes_and_messages(text, "de") == []


def test_a_french_digest_flags_an_english_paragraph_but_not_english_terms() -> None:
    french = (
        "Les auteurs comparent GPT-4o, Llama 3.1 70B et Mistral Large avec RLHF et DPO sur "
        "des benchmarks de raisonnement, et le fine-tuning réduit les erreurs [1]."
    )

    assert codes_and_messages(french, "fr") == []
    [(code, message)] = codes_and_messages(f"{french}\n\n{PARAGRAPHS['English']}", "fr")
    assert (code, message[:48]) == (
        "wrong_language",
        "1 paragraph written in English instead of French",
    )


def test_a_quoted_foreign_title_is_not_a_paragraph_in_that_language() -> None:
    title = "Un modelo de lenguaje para el español y el portugués de la región"
    text = f"“{title}” trains a small model on regional news [2]."

    assert codes_and_messages(text, "en", allowed=[title]) == []
    assert codes_and_messages(text, "en")[0][0] == "wrong_language"


def test_a_mostly_foreign_korean_text_says_which_language_it_reads_as() -> None:
    [(code, message)] = codes_and_messages(PARAGRAPHS["Spanish"])

    assert code == "wrong_language"
    assert message.endswith("; it reads as Spanish")


def test_a_latin_script_language_without_a_profile_gets_the_script_check_only() -> None:
    # Dutch prose shares "de", "en", "die" with the profiled languages: judging it by them
    # would misflag it, so a Dutch digest is checked for foreign scripts only.
    dutch = (
        "De auteurs tonen aan dat de grote taalmodellen de referentiemethoden overtreffen op "
        "drie benchmarks, en zij publiceren de code [1]."
    )

    assert codes_and_messages(dutch, "nl") == []
    assert codes_and_messages(f"{dutch} 重大", "nl") == [
        ("language", "Chinese characters in nl text: 重大")
    ]
