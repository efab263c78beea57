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
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from PIL import Image

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SYSTEM_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansKR-Regular.ttf",
)

FIGURE_DPI = 110

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

    return Figure(figsize=(width, height), dpi=FIGURE_DPI)


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
# Finished PNGs kept per process (a few KB each).
_PNGS_KEPT = 64
# Grey levels in the palette, for black and grey text anti-aliased on white.
GREY_LEVELS = 24


def _marker(index: int) -> tuple[int, int, int]:
    """A saturated colour no anti-aliased grey comes near, one per bar; bars are drawn in it,
    then it becomes the bar's real colour in the palette."""
    return (255, (index * 37) % 200, 255 - (index * 53) % 160)


def _rgb(colour: str) -> list[int]:
    value = colour.lstrip("#")
    return [int(value[k : k + 2], 16) for k in (0, 2, 4)]


# The chart is drawn as wide as the email's body (templates/email/digest.mjml: 600 px) with fonts
# chosen for a phone: on a 375 px screen the image is shown PHONE_SHOWN_PX wide (the screen less
# the image's 16 px padding each side), so a font FONT_PX tall reads as FONT_PX * 343 / 600 px
# there (at least 11). Each label sits on its own line above its bar, so long names need no room
# beside the bars and the fonts can be that large.
CHART_WIDTH_PX = 600
PHONE_SHOWN_PX = 375 - 2 * 16
FONT_PX = {"title": 24, "subtitle": 20, "label": 22, "count": 22}
MARGIN_PX = 16
BAR_PX = 22
COUNT_ROOM_PX = 72  # right of the longest bar: its count
ROW_GAP_PX = 13


def _points(px: int) -> float:
    """matplotlib sizes fonts in points; the figure is drawn at figure_new's dpi."""
    return px * 72 / FIGURE_DPI


def _em_widths(text: str) -> float:
    """A text's width in ems, over-estimated (Hangul and other wide glyphs count one em, the rest
    0.6): enough to wrap a subtitle before it runs off the chart."""
    return sum(0.6 if char.isascii() else 1.0 for char in text)


def _wrapped(text: str, *, px: int) -> list[str]:
    fits = (CHART_WIDTH_PX - 2 * MARGIN_PX) / px
    lines: list[str] = []
    for word in text.split():
        if lines and _em_widths(f"{lines[-1]} {word}") <= fits:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _line_px(px: int) -> int:
    return round(px * 1.3)


def chart_figure(*, bars: Sequence[ChartBar], title: str, subtitle: str) -> Figure:
    """The chart as a figure, laid out in pixels (the axes fill the figure, one data unit a
    pixel, y downwards): the title and subtitle on top, then per bar its label, and below it the
    bar with its count at the end. Bars are in their marker colours (`_marker`)."""
    notes = _wrapped(subtitle, px=FONT_PX["subtitle"]) if subtitle else []
    head = MARGIN_PX + _line_px(FONT_PX["title"]) + len(notes) * _line_px(FONT_PX["subtitle"])
    row = _line_px(FONT_PX["label"]) + BAR_PX + ROW_GAP_PX
    height = head + row * max(len(bars), 1) + MARGIN_PX
    figure = figure_new(width=CHART_WIDTH_PX / FIGURE_DPI, height=height / FIGURE_DPI)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, CHART_WIDTH_PX)
    axes.set_ylim(height, 0)
    axes.set_axis_off()
    _text(axes, MARGIN_PX, MARGIN_PX, title, "title")
    for index, note in enumerate(notes):
        y = MARGIN_PX + _line_px(FONT_PX["title"]) + index * _line_px(FONT_PX["subtitle"])
        _text(axes, MARGIN_PX, y, note, "subtitle", color="#555555")
    most = max([bar.count for bar in bars] + [1])
    for index, bar in enumerate(bars):
        _bar_row(axes, bar, index=index, top=head + ROW_GAP_PX + index * row, most=most)
    return figure


def _text(axes: Axes, x: float, y: float, text: str, kind: str, **style: Any) -> None:
    font = hangul_font_name()
    style.setdefault("va", "top")
    axes.text(x, y, text, fontfamily=font, fontsize=_points(FONT_PX[kind]), **style)


def _bar_row(axes: Axes, bar: ChartBar, *, index: int, top: int, most: int) -> None:
    """A bar's label, and below it the bar (whole pixels, no anti-aliasing) and its count."""
    _text(axes, MARGIN_PX, top, bar.label, "label")
    middle = top + _line_px(FONT_PX["label"]) + BAR_PX / 2
    length = round((CHART_WIDTH_PX - 2 * MARGIN_PX - COUNT_ROOM_PX) * bar.count / most)
    colour = tuple(channel / 255 for channel in _marker(index))
    axes.barh(
        middle, length, height=BAR_PX, left=MARGIN_PX, color=colour, snap=True, antialiased=False
    )
    _text(axes, MARGIN_PX + length + 6, middle, str(bar.count), "count", va="center")


def _layout(*, bars: Sequence[ChartBar], title: str, subtitle: str) -> _Drawn:
    """Draws the chart once (bars in their marker colours) and maps it onto a palette of the
    markers and GREY_LEVELS greys; bars are snapped to whole pixels, so their edges hold
    no blend of a marker and the background."""
    figure = chart_figure(bars=bars, title=title, subtitle=subtitle)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    drawn = Image.open(buffer).convert("RGB")
    markers = [_marker(index) for index in range(len(bars))]
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
    return _chart_png(tuple(bars), title, subtitle)


def chart_caches_clear() -> None:
    """Forget the laid-out charts and the finished PNGs of this process."""
    with _render_lock:
        _layouts.clear()
    _chart_png.cache_clear()


@lru_cache(maxsize=_PNGS_KEPT)
def _chart_png(bars: tuple[ChartBar, ...], title: str, subtitle: str) -> bytes:
    """The PNG of one chart (its compression is most of a recoloured chart's cost: 10 ms), kept
    per process: the same choice of categories is drawn again by each preview and rebuild."""
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
