from __future__ import annotations

import io
import warnings

from matplotlib.figure import Figure
from PIL import Image

from digests.chart import ChartBar, chart_render

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
    chart._layouts.clear()
    fresh = chart_render(bars=bars(True), title="오늘")

    assert first != second
    assert first == fresh == chart_render(bars=bars(True), title="오늘")
