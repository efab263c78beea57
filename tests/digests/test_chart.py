from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from digests.chart import ChartBar, chart_figure, chart_render

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def render_warnings(render) -> list[str]:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        render()
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def test_the_chart_is_a_png_with_hangul_labels_and_no_missing_glyphs() -> None:
    bars = [ChartBar("자연어 처리", 12, "#4C72B0"), ChartBar("컴퓨터 비전", 3, "#55A868")]
    png: list[bytes] = []

    missing = render_warnings(
        lambda: png.append(chart_render(bars=bars, title="분야별 새 논문 수", subtitle="논문 수"))
    )

    assert missing == []
    assert png[0].startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(png[0]))
    assert image.size[0] >= 600 and image.size[1] >= 200
    # Bars, greys and anti-aliased text kept in the palette; small enough for every email.
    assert 8 <= len(image.getcolors(256) or []) <= 32
    assert len(png[0]) < 15_000


def test_the_missing_glyph_check_catches_a_font_without_hangul() -> None:
    # The control for the test above: matplotlib's default font has no Hangul.
    def render_with_default_font() -> None:
        figure = Figure()
        figure.add_subplot().set_title("분야별", fontfamily="DejaVu Sans")
        figure.savefig(__import__("io").BytesIO(), format="png")

    assert render_warnings(render_with_default_font) != []


def test_bars_outside_the_readers_choice_are_greyed_and_the_chart_still_renders() -> None:
    bars = [ChartBar("LLM", 20, "#8172B2"), ChartBar("Multimodal", 0, "#64B5CD", highlighted=False)]

    assert chart_render(bars=bars, title="t").startswith(PNG_SIGNATURE)


def test_recolouring_a_laid_out_chart_gives_the_same_png_as_drawing_it_afresh() -> None:
    from digests import chart

    def bars(first: bool) -> list[ChartBar]:
        return [ChartBar("LLM", 9, "#8172B2", first), ChartBar("비전", 4, "#55A868", not first)]

    first = chart_render(bars=bars(True), title="오늘")
    second = chart_render(bars=bars(False), title="오늘")
    chart.chart_caches_clear()  # drawn afresh, not the kept layout or PNG
    fresh = chart_render(bars=bars(True), title="오늘")

    assert first != second
    assert first == fresh == chart_render(bars=bars(True), title="오늘")


# --- Read on a phone ---------------------------------------------------------------------------

PHONE_WIDTH_PX = 375
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "email"
DAY_BARS = [
    ChartBar("자연어 처리", 42, "#4C72B0"),
    ChartBar("컴퓨터 비전", 17, "#55A868", highlighted=False),
    ChartBar("Model training technique", 9, "#C44E52"),
    ChartBar("LLM", 55, "#8172B2"),
    ChartBar("강화 학습", 3, "#CCB974", highlighted=False),
    ChartBar("멀티모달", 0, "#64B5CD"),
]


def chart_shown_width_on_a_phone() -> float:
    """The chart's width in the digest email on a 375 px screen: the screen less the image's
    horizontal padding (templates/email/_head.mjml), at most its width in digest.mjml."""
    head = (TEMPLATES / "_head.mjml").read_text(encoding="utf-8")
    padding = re.search(r'<mj-image padding="\d+px (\d+)px"', head)
    digest = (TEMPLATES / "digest.mjml").read_text(encoding="utf-8")
    width = re.search(r'<mj-image src="\{\{ chart_src \}\}"[^>]* width="(\d+)px"', digest)
    assert padding and width, "the chart's size is no longer where this test reads it"
    return min(PHONE_WIDTH_PX - 2 * int(padding.group(1)), int(width.group(1)))


def test_every_text_of_the_chart_is_at_least_11_px_tall_in_the_email_on_a_phone() -> None:
    figure = chart_figure(bars=DAY_BARS, title="2026-08-13 분야별 새 논문 수", subtitle="논문 수")
    drawn_width = figure.get_figwidth() * figure.dpi
    scale = chart_shown_width_on_a_phone() / drawn_width
    texts = [text for text in figure.findobj(Text) if text.get_text()]
    shown_px = {text.get_text(): text.get_fontsize() * figure.dpi / 72 * scale for text in texts}

    assert len(shown_px) == 2 + 2 * len(DAY_BARS)  # title, subtitle, each label and count
    assert min(shown_px.values()) >= 11, shown_px


def test_the_phone_chart_is_drawn_as_wide_as_the_email_and_stays_small() -> None:
    png: list[bytes] = []

    missing = render_warnings(
        lambda: png.append(chart_render(bars=DAY_BARS, title="2026-08-13 분야별 새 논문 수"))
    )

    assert missing == []
    assert Image.open(io.BytesIO(png[0])).size[0] == 600  # the body of digest.mjml
    assert len(png[0]) < 15_000


def test_a_long_subtitle_is_wrapped_inside_the_chart() -> None:
    subtitle = "opened and clicked are among those sent; bounced and complained where reported"

    figure = chart_figure(bars=DAY_BARS[:2], title="Deliveries by status", subtitle=subtitle)
    figure.canvas.draw()
    right_edges = [text.get_window_extent().x1 for text in figure.findobj(Text) if text.get_text()]

    assert max(right_edges) <= figure.get_figwidth() * figure.dpi
