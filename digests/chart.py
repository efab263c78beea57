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
from typing import TYPE_CHECKING

from django.conf import settings
from PIL import Image

if TYPE_CHECKING:
    from matplotlib.figure import Figure

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


def figure_new(*, width: float, height: float) -> Figure:
    """A matplotlib figure (the object API: no pyplot state, the Agg canvas). matplotlib is
    imported here, on the first chart, not at every process start (0.6 s)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110)


@cache
def hangul_font_name() -> str:
    """Registers a font with Hangul glyphs and returns its family name."""
    candidates: list[Path | None] = (
        [Path(settings.CHART_FONT_PATH)] if settings.CHART_FONT_PATH else []
    )
    candidates += [Path(p) for p in SYSTEM_FONT_CANDIDATES]
    candidates.append(_bundled_font())
    from matplotlib import font_manager

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
    """A chart drawn once, as a palette image in which each bar has a palette entry of its own:
    a reader's variant only sets those entries (colour or grey) and encodes the PNG."""

    image: Image.Image  # mode "P"
    palette: list[int]  # flat RGB, as image.getpalette()


# Layouts by (labels, counts, title, subtitle): a send draws up to 63 variants of one chart,
# and drawing the figure is nearly all of the cost of one.
_layouts: OrderedDict[tuple[object, ...], _Drawn] = OrderedDict()
_LAYOUTS_KEPT = 4
# Grey levels in the palette, for black text anti-aliased on white (and the grey of the axes).
GREY_LEVELS = 24


def _marker(index: int) -> tuple[int, int, int]:
    """A saturated colour no anti-aliased grey comes near, one per bar; bars are drawn in it,
    then it becomes the bar's real colour in the palette."""
    return (255, (index * 37) % 200, 255 - (index * 53) % 160)


def _rgb(colour: str) -> list[int]:
    value = colour.lstrip("#")
    return [int(value[k : k + 2], 16) for k in (0, 2, 4)]


def _layout(*, bars: Sequence[ChartBar], title: str, subtitle: str) -> _Drawn:
    """Draws the chart once (bars in their marker colours) and maps it onto a palette of the
    markers and GREY_LEVELS greys; bars are snapped to whole pixels, so their edges hold
    no blend of a marker and the background."""
    font = hangul_font_name()
    height = 1.4 + 0.48 * max(len(bars), 1)
    figure = figure_new(width=8, height=height)
    axes = figure.add_subplot()
    labels = [bar.label for bar in bars]
    counts = [bar.count for bar in bars]
    positions = list(range(len(bars)))
    markers = [_marker(index) for index in range(len(bars))]
    axes.barh(
        positions,
        counts,
        color=[tuple(c / 255 for c in marker) for marker in markers],
        snap=True,
        antialiased=False,
    )
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
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    drawn = Image.open(buffer).convert("RGB")
    palette = [channel for marker in markers for channel in marker]
    for level in range(GREY_LEVELS):
        palette += [round(level * 255 / (GREY_LEVELS - 1))] * 3
    mapping = Image.new("P", (1, 1))
    mapping.putpalette(palette + [0] * (768 - len(palette)))
    image = drawn.quantize(palette=mapping, dither=Image.Dither.NONE)
    return _Drawn(image=image, palette=palette)


def chart_render(*, bars: Sequence[ChartBar], title: str, subtitle: str = "") -> bytes:
    """A horizontal bar chart, one bar per category in the given order, counts at bar ends;
    bars not highlighted are grey. A palette PNG (a few KB: it travels in every email)."""
    key = (tuple((b.label, b.count) for b in bars), title, subtitle)
    with _render_lock:
        drawn = _layouts.get(key)
        if drawn is None:
            drawn = _layouts[key] = _layout(bars=bars, title=title, subtitle=subtitle)
            while len(_layouts) > _LAYOUTS_KEPT:
                _layouts.popitem(last=False)
        _layouts.move_to_end(key)
        image = drawn.image.copy()
        palette = list(drawn.palette)
    for index, bar in enumerate(bars):
        palette[3 * index : 3 * index + 3] = _rgb(bar.colour if bar.highlighted else GREY)
    image.putpalette(palette)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
