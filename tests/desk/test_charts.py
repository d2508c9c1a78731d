"""The SVG charts: bars in proportion to the values, every label and value written in the
picture, the picture named for screen readers, and a data table with the same figures."""

from __future__ import annotations

import itertools
import re
from xml.etree import ElementTree

import pytest

from coop.core.charts import Chart, Datum, bar_chart, column_chart, data_table, text_width, wrap

SVG = "{http://www.w3.org/2000/svg}"


def measures_chart(**overrides: object) -> Chart:
    fields: dict[str, object] = {
        "id": "chart-measure",
        "title": "Registrations per measure",
        "description": "Roof leads.",
        "label_heading": "Measure",
        "value_heading": "Registrations",
        "data": (
            Datum("Roof insulation", 40),
            Datum("Floor insulation", 10),
            Datum("Hybrid heat pump", 20, "20"),
            Datum("Glazing", 0),
        ),
    }
    fields.update(overrides)
    return Chart(**fields)  # type: ignore[arg-type]


def parse(markup: str) -> ElementTree.Element:
    return ElementTree.fromstring(str(markup))


def bar_widths(svg: ElementTree.Element) -> dict[str, float]:
    return {
        rect.get("data-value", ""): float(rect.get("width", "0"))
        for rect in svg.iter(f"{SVG}rect")
        if rect.get("class") == "bar"
    }


def test_bars_are_in_proportion_to_the_values() -> None:
    svg = parse(bar_chart(measures_chart()))
    widths = bar_widths(svg)
    assert set(widths) == {"40", "10", "20"}  # no bar for zero
    assert widths["40"] == max(widths.values())
    assert abs(widths["10"] / widths["40"] - 0.25) < 0.01
    assert abs(widths["20"] / widths["40"] - 0.5) < 0.01


def test_every_label_and_value_is_text_in_the_picture() -> None:
    svg = parse(bar_chart(measures_chart()))
    texts = [t.text for t in svg.iter(f"{SVG}text")]
    for label in ("Roof insulation", "Floor insulation", "Hybrid heat pump", "Glazing"):
        assert label in texts
    values = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == ["40", "10", "20", "0"]


def test_the_picture_is_an_image_named_by_its_title_and_description() -> None:
    svg = parse(bar_chart(measures_chart()))
    assert svg.get("role") == "img"
    labelled_by = (svg.get("aria-labelledby") or "").split()
    title = svg.find(f"{SVG}title")
    desc = svg.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert labelled_by == [title.get("id"), desc.get("id")]
    assert title.text == "Registrations per measure"
    assert desc.text == "Roof leads."


def test_text_and_bars_have_enough_contrast() -> None:
    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    svg = parse(bar_chart(measures_chart()))
    for element in svg.iter():
        fill = element.get("fill")
        if fill and fill.startswith("#"):
            ratio = (1.0 + 0.05) / (luminance(fill) + 0.05)  # against the white page
            minimum = 4.5 if element.tag == f"{SVG}text" else 3.0
            assert ratio >= minimum, (element.tag, fill, ratio)


def test_the_table_has_the_same_numbers_in_the_same_order() -> None:
    chart = measures_chart()
    table = parse(data_table(chart))
    caption = table.find("caption")
    assert caption is not None and caption.text == "Registrations per measure"
    headers = [(th.get("scope"), th.text) for th in table.iter("th")]
    assert headers[:2] == [("col", "Measure"), ("col", "Registrations")]
    rows = [
        (row.find("th").text, row.find("td").text)  # type: ignore[union-attr]
        for row in table.find("tbody")  # type: ignore[union-attr]
    ]
    assert rows == [
        ("Roof insulation", "40"),
        ("Floor insulation", "10"),
        ("Hybrid heat pump", "20"),
        ("Glazing", "0"),
    ]
    svg_values = [
        t.text for t in parse(bar_chart(chart)).iter(f"{SVG}text") if t.get("class") == "value"
    ]
    assert svg_values == [value for _, value in rows]


def test_unknown_values_draw_no_bar_and_say_so() -> None:
    chart = measures_chart(
        data=(Datum("Lombok", 12.5, "12.5%", ("25", "200")), Datum("Zuilen", None, "unknown")),
        extra_headings=("Registrations", "Households"),
        scale_max=100,
    )
    svg = parse(bar_chart(chart))
    widths = bar_widths(svg)
    assert list(widths) == ["12.5"]
    values = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "value"]
    assert values == ["12.5%", "unknown"]
    table = parse(data_table(chart))
    cells = [[td.text for td in row.iter("td")] for row in table.find("tbody")]  # type: ignore[union-attr]
    assert cells == [["12.5%", "25", "200"], ["unknown"]]


def test_scale_max_fixes_what_a_full_bar_means() -> None:
    narrow = bar_widths(parse(bar_chart(measures_chart(data=(Datum("a", 50),), scale_max=100))))
    full = bar_widths(parse(bar_chart(measures_chart(data=(Datum("a", 100),), scale_max=100))))
    assert abs(narrow["50"] * 2 - full["100"]) < 0.2


def test_labels_and_titles_are_escaped() -> None:
    chart = measures_chart(
        title="<script>alert(1)</script>", data=(Datum('<img src=x onerror="x">', 3),)
    )
    markup = str(bar_chart(chart)) + str(data_table(chart))
    assert "<script>" not in markup and "<img" not in markup
    assert "&lt;script&gt;" in markup
    parse(bar_chart(chart))  # still well-formed XML


def test_columns_in_order_with_heights_in_proportion() -> None:
    days = tuple(
        Datum(f"{d} nov", v) for d, v in zip(range(1, 8), [1, 4, 0, 2, 8, 3, 1], strict=True)
    )
    chart = measures_chart(id="over-time", kind="columns", data=days)
    svg = parse(column_chart(chart))
    rects = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert [r.get("data-value") for r in rects] == ["1", "4", "2", "8", "3", "1"]
    heights = {r.get("data-value"): float(r.get("height", "0")) for r in rects}
    assert abs(heights["4"] / heights["8"] - 0.5) < 0.01
    xs = [float(r.get("x", "0")) for r in rects]
    assert xs == sorted(xs)
    assert [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "value"] == [
        "1",
        "4",
        "0",
        "2",
        "8",
        "3",
        "1",
    ]
    assert "1 nov" in [t.text for t in svg.iter(f"{SVG}text")]


def test_many_columns_thin_out_the_labels_but_keep_every_column() -> None:
    days = tuple(Datum(f"day {i}", i % 5) for i in range(60))
    svg = parse(column_chart(measures_chart(kind="columns", data=days)))
    rects = [r for r in svg.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert len(rects) == sum(1 for d in days if d.value)
    labels = [t.text for t in svg.iter(f"{SVG}text") if (t.text or "").startswith("day")]
    assert 5 <= len(labels) <= 12


def test_an_empty_chart_says_there_is_nothing_yet() -> None:
    chart = measures_chart(data=(), empty_text="No registrations yet.")
    assert "No registrations yet." in str(bar_chart(chart))
    assert "No registrations yet." in str(column_chart(chart))
    assert "No registrations yet." in str(data_table(chart))
    assert re.search(r'role="img"', str(bar_chart(chart)))


# --- labels that fit, in Dutch too -----------------------------------------------------------


def text_extents(svg: ElementTree.Element) -> list[tuple[str, float, float]]:
    """Every line of text in the picture with its left and right edge, taking the widths the
    widest fallback font (DejaVu Sans) gives them."""
    extents = []
    for element in svg.iter(f"{SVG}text"):
        anchor = element.get("text-anchor", "start")
        spans = list(element.iter(f"{SVG}tspan")) or [element]
        for span in spans:
            line = span.text or ""
            x = float(span.get("x") or element.get("x") or "0")
            width = text_width(line)
            left = {"end": x - width, "middle": x - width / 2}.get(anchor, x)
            extents.append((line, left, left + width))
    return extents


def shown_labels(svg: ElementTree.Element) -> list[str]:
    """The labels as a reader sees them: the lines of a wrapped label joined again."""
    labels = []
    for element in svg.iter(f"{SVG}text"):
        if element.get("class") == "value":
            continue
        spans = list(element.iter(f"{SVG}tspan"))
        lines = [span.text or "" for span in spans] if spans else [element.text or ""]
        joined = ""
        for line in lines:
            joined += line if not joined or joined.endswith("-") else " " + line
        labels.append(joined)
    return labels


def assert_nothing_is_cut(markup: str) -> ElementTree.Element:
    svg = parse(markup)
    view_width = float((svg.get("viewBox") or "").split()[2])
    for line, left, right in text_extents(svg):
        assert left >= 0, f"{line!r} starts {-left:.1f} before the picture"
        assert right <= view_width, f"{line!r} ends {right - view_width:.1f} after the picture"
    return svg


DUTCH_DWELLINGS = (
    Datum("Twee-onder-een-kapwoning", 123, "123"),
    Datum("Vrijstaande woning", 45, "45"),
    Datum("Tussenwoning", 1234, "1.234"),
    Datum("Hoekwoning", 8, "8"),
    Datum("Appartement", 0, "0"),
)


@pytest.mark.parametrize(
    "data",
    [
        DUTCH_DWELLINGS,
        # Postcode areas: four wide digits each.
        tuple(Datum(pc4, n, str(n)) for pc4, n in (("3521", 40), ("3584", 12), ("9999", 7))),
        (
            Datum("Eigenaar van een appartement in een VvE", 3, "3"),
            Datum("Huurder, particuliere verhuurder", 12, "12"),
            Datum("Huurder, woningcorporatie", 40, "40"),
        ),
        # Survey answers hidden below five, and an answer far longer than the label room.
        (
            Datum("Ja, als de kosten meevallen en de buren ook meedoen", 1, "minder dan 5"),
            Datum("Nee", None, "minder dan 5"),
            Datum("Weet ik nog niet", 50, "50"),
            Datum("Warmtepompinstallatiebedrijfsvoorwaardenoverzicht", 9, "100,0%"),
        ),
    ],
)
def test_dutch_labels_and_values_fit_in_the_bar_chart(data: tuple[Datum, ...]) -> None:
    svg = assert_nothing_is_cut(bar_chart(measures_chart(data=data)))
    # Whole labels, nothing shortened with an ellipsis.
    assert shown_labels(svg) == [d.label for d in data]
    # Every label ends before the axis the bars start from.
    axis = next(svg.iter(f"{SVG}line"))
    axis_x = float(axis.get("x1", "0"))
    for line, _left, right in text_extents(svg):
        if line in [d.text for d in data]:
            continue
        assert right <= axis_x, line
    # Bars keep the room they need and stay in proportion.
    widths = [w for w in bar_widths(svg).values()]
    assert widths and max(widths) >= 150


def test_a_long_label_wraps_at_hyphens_and_spaces() -> None:
    assert wrap("Twee-onder-een-kapwoning", 120) == ["Twee-onder-", "een-", "kapwoning"]
    assert wrap("Twee-onder-een-kapwoning", 1000) == ["Twee-onder-een-kapwoning"]
    assert wrap("Huurder, particuliere verhuurder", 180) == ["Huurder, particuliere", "verhuurder"]
    assert wrap("", 100) == [""]


def test_column_labels_are_whole_at_both_ends_and_never_overlap() -> None:
    days = tuple(Datum(label, n, str(n)) for n, label in enumerate(["1 nov. 2026", "8 nov."] * 6))
    wide = tuple(Datum(f"Week van 30 december {i}", i, "1.234") for i in range(5))
    for data in (days, wide):
        svg = assert_nothing_is_cut(column_chart(measures_chart(kind="columns", data=data)))
        # Each label (all its lines) as one box; boxes side by side never overlap.
        boxes = []
        for element in svg.iter(f"{SVG}text"):
            if element.get("class") == "value" or element.get("text-anchor") != "middle":
                continue
            lines = text_extents(ElementTree.fromstring(ElementTree.tostring(element)))
            boxes.append((min(x[1] for x in lines), max(x[2] for x in lines)))
        assert len(boxes) >= 2
        for (_, right), (left, _) in itertools.pairwise(sorted(boxes)):
            assert right <= left, boxes
        assert all(label in shown_labels(svg) for label in [data[0].label])


def test_text_widths_are_not_underestimated() -> None:
    # DejaVu Sans at 15 px, measured: "Twee-onder-een-kapwoning" 209.2 px, "3521" 38.2 px.
    assert text_width("Twee-onder-een-kapwoning") >= 209.2
    assert text_width("3521") >= 38.2
    assert text_width("Öztürk") >= text_width("Ozturk")
    assert text_width("漢") >= 15  # an unknown character counts as a full em
