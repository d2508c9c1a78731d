"""Charts as SVG drawn on the server: no JavaScript, readable by screen readers.

Pure functions from data to markup; they know nothing of Flask, the database or the language
(the caller passes translated titles and formatted numbers). Every chart is an ``<svg
role="img">`` named by its ``<title>`` and ``<desc>``, with its labels and values written as text
in the picture, and comes with a ``<table>`` of the same figures to put beside it: the table is
what a screen reader user (or someone copying the numbers into a memo) reads.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from markupsafe import Markup, escape

# Colours with enough contrast on white: text 16:1, bars 7.6:1 (WCAG asks 4.5:1 and 3:1).
INK = "#1a1a1a"
BAR = "#00594f"
AXIS = "#4a4a4a"
GRID = "#b1b4b6"

FONT_SIZE = 15
WIDTH = 560
ROW_HEIGHT = 30
BAR_HEIGHT = 20
VALUE_ROOM = 90  # least room right of the longest bar for its value text
LINE_HEIGHT = 18  # between the lines of a label that wraps
EDGE = 4  # free room at the picture's left and right edge
LABEL_GAP = 8  # between a label and the axis, and a bar and its value
MAX_LABEL_SHARE = 0.4  # of the width: a longer label wraps onto more lines
MIN_PLOT_WIDTH = 160  # the bars keep at least this room; the picture widens if it must

# Advance widths (in em) of DejaVu Sans, the widest of the fonts a chart may be drawn in (the
# fallback of system-ui and sans-serif on Linux; Segoe UI, Roboto and Arial are narrower), so a
# label given the room these widths ask for is never cut. A character not listed counts as 1 em;
# an accented letter as its base letter.
_EM_WIDTHS = (
    (1.0, "@…"),
    (0.99, "W"),
    (0.97, "m"),
    (0.95, "%"),
    (0.86, "M"),
    (0.84, "#+<=>^~"),
    (0.82, "w"),
    (0.79, "OQ"),
    (0.78, "&"),
    (0.77, "DG"),
    (0.75, "HN"),
    (0.73, "U"),
    (0.7, "C"),
    (0.69, "BRXZ"),
    (0.68, "AV"),
    (0.66, "K"),
    (0.64, "0123456789${}€"),
    (0.63, "bdghnpquES"),
    (0.62, "e"),
    (0.61, "aoTY"),
    (0.6, "P"),
    (0.59, "vxy"),
    (0.58, "kF"),
    (0.56, "L"),
    (0.55, "c"),
    (0.53, "?"),
    (0.52, "sz“”"),
    (0.5, "*_`–"),
    (0.46, '"'),
    (0.41, "r"),
    (0.4, "!"),
    (0.39, "t()[]"),
    (0.36, "-"),
    (0.35, "f"),
    (0.34, "/:;\\|"),
    (0.32, ",. ’‘·"),
    (0.29, "IJ"),
    (0.28, "ijlı"),
    (0.27, "'"),
)
_EM = {char: width for width, chars in _EM_WIDTHS for char in chars}
SAFETY = 1.05  # kerning and hinting differ a little between renderers


@dataclass(frozen=True)
class Datum:
    """One bar: its label, its value (None when unknown: no bar is drawn) and how to show it."""

    label: str
    value: float | None
    display: str = ""  # the value as the reader sees it ("1.234", "12,5%", "unknown")
    extra: tuple[str, ...] = ()  # further columns in the table only

    @property
    def text(self) -> str:
        if self.display:
            return self.display
        if self.value is None:
            return "–"
        return f"{self.value:g}"


@dataclass(frozen=True)
class Chart:
    """What a chart shows; ``svg()`` and ``table()`` draw it for the page."""

    id: str  # unique on the page; used for the ids that tie title and description to the svg
    title: str
    label_heading: str
    value_heading: str
    data: tuple[Datum, ...]
    kind: Literal["bars", "columns"] = "bars"
    description: str = ""
    extra_headings: tuple[str, ...] = ()
    # The value a full-width bar stands for (100 for percentages); the largest value if None.
    scale_max: float | None = None
    empty_text: str = "No data yet."

    def svg(self) -> Markup:
        return column_chart(self) if self.kind == "columns" else bar_chart(self)

    def table(self) -> Markup:
        return data_table(self)


def _markup(parts: list[str]) -> Markup:
    # Every piece of text from outside (labels, titles, values) went through ``escape`` above;
    # the rest is our own fixed markup and numbers.
    return Markup("".join(parts))  # noqa: S704


def _safe_id(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", value) or "chart"


def _num(value: float) -> str:
    """Coordinates without needless decimals, so the markup stays small and stable."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def text_width(text: str, font_size: float = FONT_SIZE) -> float:
    """The width ``text`` takes at ``font_size``, on the generous side (see ``_EM_WIDTHS``)."""
    total = 0.0
    for char in text:
        width = _EM.get(char)
        if width is None:
            base = unicodedata.normalize("NFD", char)[:1]
            width = _EM.get(base, 1.0)
        total += width
    return total * font_size * SAFETY


def wrap(label: str, max_width: float) -> list[str]:
    """``label`` in lines of at most ``max_width``, broken at spaces and after hyphens
    ("Twee-onder-een-" / "kapwoning"); a single word wider than that keeps a line of its own."""
    pieces: list[tuple[str, str]] = []  # (what joins it to the piece before, the piece)
    for word_index, word in enumerate(label.split()):
        for part_index, part in enumerate(re.findall(r"[^-]*-+|[^-]+", word)):
            pieces.append((" " if word_index and not part_index else "", part))
    lines: list[str] = []
    current = ""
    for joiner, piece in pieces:
        candidate = current + joiner + piece if current else piece
        if current and text_width(candidate) > max_width:
            lines.append(current)
            current = piece
        else:
            current = candidate
    lines.append(current)
    return lines


def _scale(chart: Chart) -> float:
    values = [d.value for d in chart.data if d.value is not None and d.value > 0]
    top = chart.scale_max if chart.scale_max is not None else max(values, default=0.0)
    return float(top) if top and top > 0 else 1.0


def _open_svg(chart: Chart, height: float, width: float = WIDTH) -> list[str]:
    chart_id = _safe_id(chart.id)
    description = chart.description or chart.title
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" role="img" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" '
        f'height="{_num(height)}" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, Arial, sans-serif" '
        f'font-size="{FONT_SIZE}">',
        f'<title id="{chart_id}-title">{escape(chart.title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]


def _empty(chart: Chart) -> Markup:
    parts = _open_svg(chart, 40)
    parts.append(f'<text x="0" y="25" fill="{INK}">{escape(chart.empty_text)}</text></svg>')
    return _markup(parts)


def _label_text(x: float, y: float, lines: list[str], anchor: str) -> str:
    """A label at (x, y), its lines below one another; one line is plain text."""
    if len(lines) == 1:
        return (
            f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" '
            f'fill="{INK}">{escape(lines[0])}</text>'
        )
    spans = "".join(
        f'<tspan x="{_num(x)}" dy="{0 if index == 0 else LINE_HEIGHT}">{escape(line)}</tspan>'
        for index, line in enumerate(lines)
    )
    return f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" fill="{INK}">{spans}</text>'


def bar_chart(chart: Chart) -> Markup:
    """Horizontal bars: a label on the left, the bar, its value at the end of the bar.

    The room for the labels follows the longest label (a label longer than ``MAX_LABEL_SHARE``
    of the width wraps), and the room after the bars the longest value, so no text is cut."""
    if not chart.data:
        return _empty(chart)
    widest_label = max(text_width(d.label) for d in chart.data)
    labels = [wrap(d.label, min(widest_label, WIDTH * MAX_LABEL_SHARE)) for d in chart.data]
    label_room = max(text_width(line) for lines in labels for line in lines)
    axis = EDGE + label_room + LABEL_GAP
    value_room = max(VALUE_ROOM, LABEL_GAP + max(text_width(d.text) for d in chart.data) + EDGE)
    width = max(float(WIDTH), axis + MIN_PLOT_WIDTH + value_room)
    plot_width = width - axis - value_room
    top = _scale(chart)
    rows = [max(ROW_HEIGHT, (len(lines) - 1) * LINE_HEIGHT + ROW_HEIGHT) for lines in labels]
    height = sum(rows) + 10
    parts = _open_svg(chart, height, width)
    # The axis the bars start from.
    parts.append(
        f'<line x1="{_num(axis)}" y1="0" x2="{_num(axis)}" '
        f'y2="{_num(height - 5)}" stroke="{AXIS}" stroke-width="1"/>'
    )
    y = 5.0
    for datum, lines, row in zip(chart.data, labels, rows, strict=True):
        # The bar sits in the middle of its row; a wrapped label is centred on it.
        bar_y = y + (row - ROW_HEIGHT) / 2
        middle = bar_y + BAR_HEIGHT / 2 + FONT_SIZE * 0.35
        first_line = middle - (len(lines) - 1) * LINE_HEIGHT / 2
        parts.append(_label_text(axis - LABEL_GAP, first_line, lines, "end"))
        bar = 0.0
        if datum.value is not None and datum.value > 0:
            bar = min(datum.value / top, 1.0) * plot_width
            parts.append(
                f'<rect class="bar" x="{_num(axis)}" y="{_num(bar_y)}" '
                f'width="{_num(bar)}" height="{BAR_HEIGHT}" fill="{BAR}" '
                f'data-value="{escape(_num(float(datum.value)))}"/>'
            )
        parts.append(
            f'<text class="value" x="{_num(axis + bar + LABEL_GAP)}" y="{_num(middle)}" '
            f'fill="{INK}">{escape(datum.text)}</text>'
        )
        y += row
    parts.append("</svg>")
    return _markup(parts)


COLUMN_PLOT_HEIGHT = 180
COLUMN_TOP = 24  # room above the tallest column for its value
COLUMN_BOTTOM = 44  # room below the axis for one line of labels
COLUMN_LEFT = 32  # least room left and right of the columns
MAX_COLUMN_LABELS = 8


def column_chart(chart: Chart) -> Markup:
    """Vertical columns in order (a time series): every few labels under the axis, values on
    top of the columns when there is room for them.

    Labels are written as far apart as the widest needs, and the room at the sides follows the
    widest label too, so the first and the last label (centred under their column) are whole."""
    if not chart.data:
        return _empty(chart)
    count = len(chart.data)
    top = _scale(chart)
    labels = [wrap(d.label, WIDTH / 3) for d in chart.data]
    label_width = max(text_width(line) for lines in labels for line in lines)
    side = max(float(COLUMN_LEFT), label_width / 2 + EDGE)
    plot_width = WIDTH - 2 * side
    slot = plot_width / count
    column_width = max(slot * 0.7, 1.0)
    label_lines = max(len(lines) for lines in labels)
    baseline = COLUMN_TOP + COLUMN_PLOT_HEIGHT
    height = baseline + COLUMN_BOTTOM + (label_lines - 1) * LINE_HEIGHT
    label_every = max(
        1, math.ceil(count / MAX_COLUMN_LABELS), math.ceil((label_width + LABEL_GAP) / slot)
    )
    show_values = slot >= max(30.0, max(text_width(d.text) for d in chart.data) + 4)
    parts = _open_svg(chart, height)
    parts.append(
        f'<line x1="{_num(side)}" y1="{baseline}" x2="{_num(WIDTH - side)}" '
        f'y2="{baseline}" stroke="{AXIS}" stroke-width="1"/>'
    )
    if not show_values:
        # Too many columns to write each value: mark the largest with a grid line instead.
        parts.append(
            f'<line x1="{_num(side)}" y1="{COLUMN_TOP}" x2="{_num(WIDTH - side)}" '
            f'y2="{COLUMN_TOP}" stroke="{GRID}" stroke-width="1" stroke-dasharray="4 3"/>'
            f'<text x="{_num(side)}" y="{COLUMN_TOP - 6}" fill="{INK}">'
            f"{escape(_num(top))}</text>"
        )
    for index, datum in enumerate(chart.data):
        x = side + index * slot + (slot - column_width) / 2
        centre = x + column_width / 2
        column_height = 0.0
        if datum.value is not None and datum.value > 0:
            column_height = min(datum.value / top, 1.0) * COLUMN_PLOT_HEIGHT
            parts.append(
                f'<rect class="bar" x="{_num(x)}" y="{_num(baseline - column_height)}" '
                f'width="{_num(column_width)}" height="{_num(column_height)}" fill="{BAR}" '
                f'data-value="{escape(_num(float(datum.value)))}"/>'
            )
        if show_values:
            parts.append(
                f'<text class="value" x="{_num(centre)}" '
                f'y="{_num(baseline - column_height - 6)}" text-anchor="middle" '
                f'fill="{INK}">{escape(datum.text)}</text>'
            )
        if index % label_every == 0:
            parts.append(_label_text(centre, baseline + 18, labels[index], "middle"))
    parts.append("</svg>")
    return _markup(parts)


def data_table(chart: Chart) -> Markup:
    """The chart's figures as a table with a caption and header cells, in the same order."""
    chart_id = _safe_id(chart.id)
    headings: Sequence[str] = (chart.label_heading, chart.value_heading, *chart.extra_headings)
    parts = [
        f'<table class="table chart-table" id="{chart_id}-table">',
        f"<caption>{escape(chart.title)}</caption>",
        "<thead><tr>",
        f'<th scope="col">{escape(headings[0])}</th>',
        *(f'<th scope="col" class="num">{escape(h)}</th>' for h in headings[1:]),
        "</tr></thead><tbody>",
    ]
    for datum in chart.data:
        parts.append(f'<tr><th scope="row">{escape(datum.label)}</th>')
        parts.append(f'<td class="num">{escape(datum.text)}</td>')
        parts.extend(f'<td class="num">{escape(value)}</td>' for value in datum.extra)
        parts.append("</tr>")
    if not chart.data:
        parts.append(f'<tr><td colspan="{len(headings)}">{escape(chart.empty_text)}</td></tr>')
    parts.append("</tbody></table>")
    return _markup(parts)
