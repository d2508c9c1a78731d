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
CHAR_WIDTH = 8.1  # average width of a character at FONT_SIZE in a system sans-serif
WIDTH = 560
ROW_HEIGHT = 30
BAR_HEIGHT = 20
VALUE_ROOM = 90  # room right of the longest bar for its value text
MAX_LABEL_CHARS = 28


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


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: max(limit - 1, 1)] + "…"


def _scale(chart: Chart) -> float:
    values = [d.value for d in chart.data if d.value is not None and d.value > 0]
    top = chart.scale_max if chart.scale_max is not None else max(values, default=0.0)
    return float(top) if top and top > 0 else 1.0


def _open_svg(chart: Chart, height: float) -> list[str]:
    chart_id = _safe_id(chart.id)
    description = chart.description or chart.title
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" role="img" '
        f'viewBox="0 0 {WIDTH} {_num(height)}" width="{WIDTH}" height="{_num(height)}" '
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


def bar_chart(chart: Chart) -> Markup:
    """Horizontal bars: a label on the left, the bar, its value at the end of the bar."""
    if not chart.data:
        return _empty(chart)
    longest = max(len(_short(d.label, MAX_LABEL_CHARS)) for d in chart.data)
    label_width = min(longest * CHAR_WIDTH + 12, WIDTH * 0.4)
    plot_width = WIDTH - label_width - VALUE_ROOM
    top = _scale(chart)
    height = len(chart.data) * ROW_HEIGHT + 10
    parts = _open_svg(chart, height)
    # The axis the bars start from.
    parts.append(
        f'<line x1="{_num(label_width)}" y1="0" x2="{_num(label_width)}" '
        f'y2="{_num(height - 5)}" stroke="{AXIS}" stroke-width="1"/>'
    )
    for index, datum in enumerate(chart.data):
        y = index * ROW_HEIGHT + 5
        middle = y + BAR_HEIGHT / 2 + FONT_SIZE * 0.35
        parts.append(
            f'<text x="{_num(label_width - 8)}" y="{_num(middle)}" text-anchor="end" '
            f'fill="{INK}">{escape(_short(datum.label, MAX_LABEL_CHARS))}</text>'
        )
        width = 0.0
        if datum.value is not None and datum.value > 0:
            width = min(datum.value / top, 1.0) * plot_width
            parts.append(
                f'<rect class="bar" x="{_num(label_width)}" y="{_num(y)}" '
                f'width="{_num(width)}" height="{BAR_HEIGHT}" fill="{BAR}" '
                f'data-value="{escape(_num(float(datum.value)))}"/>'
            )
        parts.append(
            f'<text class="value" x="{_num(label_width + width + 6)}" y="{_num(middle)}" '
            f'fill="{INK}">{escape(datum.text)}</text>'
        )
    parts.append("</svg>")
    return _markup(parts)


COLUMN_PLOT_HEIGHT = 180
COLUMN_TOP = 24  # room above the tallest column for its value
COLUMN_BOTTOM = 44  # room below the axis for the labels
COLUMN_LEFT = 32  # room for the first and last label, centred under their columns
MAX_COLUMN_LABELS = 8


def column_chart(chart: Chart) -> Markup:
    """Vertical columns in order (a time series): every few labels under the axis, values on
    top of the columns when there is room for them."""
    if not chart.data:
        return _empty(chart)
    count = len(chart.data)
    top = _scale(chart)
    plot_width = WIDTH - 2 * COLUMN_LEFT
    slot = plot_width / count
    column_width = max(slot * 0.7, 1.0)
    height = COLUMN_TOP + COLUMN_PLOT_HEIGHT + COLUMN_BOTTOM
    baseline = COLUMN_TOP + COLUMN_PLOT_HEIGHT
    label_every = max(1, math.ceil(count / MAX_COLUMN_LABELS))
    show_values = slot >= 30
    parts = _open_svg(chart, height)
    parts.append(
        f'<line x1="{COLUMN_LEFT}" y1="{baseline}" x2="{_num(WIDTH - COLUMN_LEFT)}" '
        f'y2="{baseline}" stroke="{AXIS}" stroke-width="1"/>'
    )
    if not show_values:
        # Too many columns to write each value: mark the largest with a grid line instead.
        parts.append(
            f'<line x1="{COLUMN_LEFT}" y1="{COLUMN_TOP}" x2="{_num(WIDTH - COLUMN_LEFT)}" '
            f'y2="{COLUMN_TOP}" stroke="{GRID}" stroke-width="1" stroke-dasharray="4 3"/>'
            f'<text x="{COLUMN_LEFT}" y="{COLUMN_TOP - 6}" fill="{INK}">'
            f"{escape(_num(top))}</text>"
        )
    for index, datum in enumerate(chart.data):
        x = COLUMN_LEFT + index * slot + (slot - column_width) / 2
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
            parts.append(
                f'<text x="{_num(centre)}" y="{baseline + 18}" text-anchor="middle" '
                f'fill="{INK}">{escape(_short(datum.label, 12))}</text>'
            )
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
