"""The category distribution chart: papers per category for the day, as a PNG.

matplotlib's default font has no Hangul, so Korean labels would render as boxes. We register a
font that has it: CHART_FONT_PATH if set, else a CJK font installed on the system (the Docker
image has fonts-nanum), else the NanumGothic that the koreanize-matplotlib package ships.
"""

from __future__ import annotations

import importlib.util
import io
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and workers

from django.conf import settings
from matplotlib import font_manager
from matplotlib.figure import Figure
from PIL import Image

# Colours of the chart's PNG palette: six category colours, grey, and anti-aliasing between.
PALETTE_COLOURS = 32
SYSTEM_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansKR-Regular.ttf",
)

# pyplot's global state is not thread-safe; we use the object API and serialise rendering anyway.
_render_lock = threading.Lock()


class ChartFontMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class ChartBar:
    label: str
    count: int
    colour: str
    highlighted: bool = True


def _bundled_font() -> Path | None:
    # Located, not imported: importing koreanize_matplotlib would change global rcParams.
    spec = importlib.util.find_spec("koreanize_matplotlib")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "fonts" / "NanumGothic.ttf"
    return path if path.exists() else None


@cache
def hangul_font_name() -> str:
    """Registers a font with Hangul glyphs and returns its family name."""
    candidates: list[Path | None] = (
        [Path(settings.CHART_FONT_PATH)] if settings.CHART_FONT_PATH else []
    )
    candidates += [Path(p) for p in SYSTEM_FONT_CANDIDATES]
    candidates.append(_bundled_font())
    for path in candidates:
        if path is not None and path.exists():
            font_manager.fontManager.addfont(str(path))
            return font_manager.FontProperties(fname=str(path)).get_name()
    raise ChartFontMissing(
        "No font with Hangul found: install fonts-nanum or set CHART_FONT_PATH to a TTF/OTF file"
    )


GREY = "#D0D0D0"


@dataclass
class _Drawn:
    """A laid-out chart: only the bar colours change between readers' variants."""

    figure: Figure
    patches: list[Any]


# Layouts by (labels, counts, title, subtitle): a send draws up to 63 variants of one chart,
# and laying out the figure is most of the cost of drawing one.
_layouts: OrderedDict[tuple[object, ...], _Drawn] = OrderedDict()
_LAYOUTS_KEPT = 4


def _layout(*, bars: Sequence[ChartBar], title: str, subtitle: str) -> _Drawn:
    font = hangul_font_name()
    height = 1.4 + 0.48 * max(len(bars), 1)
    figure = Figure(figsize=(8, height), dpi=110)
    axes = figure.add_subplot()
    labels = [bar.label for bar in bars]
    counts = [bar.count for bar in bars]
    positions = list(range(len(bars)))
    container = axes.barh(positions, counts, color=GREY)
    axes.set_yticks(positions, labels=labels, fontfamily=font, fontsize=11)
    axes.invert_yaxis()  # first category on top
    for position, count in zip(positions, counts, strict=True):
        axes.text(count, position, f" {count}", va="center", fontfamily=font, fontsize=10)
    axes.set_xlim(0, max([*counts, 1]) * 1.15)
    axes.set_title(title, fontfamily=font, fontsize=13, loc="left")
    if subtitle:
        axes.set_xlabel(subtitle, fontfamily=font, fontsize=10)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout()
    return _Drawn(figure=figure, patches=list(container.patches))


def chart_render(*, bars: Sequence[ChartBar], title: str, subtitle: str = "") -> bytes:
    """A horizontal bar chart, one bar per category in the given order, counts at bar ends;
    bars not highlighted are grey."""
    key = (tuple((b.label, b.count) for b in bars), title, subtitle)
    buffer = io.BytesIO()
    with _render_lock:
        drawn = _layouts.get(key)
        if drawn is None:
            drawn = _layouts[key] = _layout(bars=bars, title=title, subtitle=subtitle)
            while len(_layouts) > _LAYOUTS_KEPT:
                _layouts.popitem(last=False)
        _layouts.move_to_end(key)
        for patch, bar in zip(drawn.patches, bars, strict=True):
            patch.set_facecolor(bar.colour if bar.highlighted else GREY)
        drawn.figure.savefig(buffer, format="png")
    return png_palette(buffer.getvalue())


def png_palette(png: bytes) -> bytes:
    """The PNG with a palette of PALETTE_COLOURS (bars, greys, anti-aliased text): a quarter of
    the size of matplotlib's RGBA, alike to the eye. It travels in every email."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(
        colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
    )
    buffer = io.BytesIO()
    small.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
