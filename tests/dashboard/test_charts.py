"""The SVG charts: well-formed XML, accessible, escaped, one mark per value, empty-data message."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from reviewer.dashboard import charts
from reviewer.ml.evaluation import reliability_bins

NS = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert(\"x\")</script> & 'co'"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    assert root[0].tag == f"{NS}title" and root.get("aria-label") == root[0].text
    return root


def marks(root: ET.Element, tag: str, css: str) -> list[ET.Element]:
    return [el for el in root.iter(f"{NS}{tag}") if el.get("class") == css]


def texts(root: ET.Element) -> list[str]:
    return [el.text for el in root.iter(f"{NS}text")]


def every_chart(label: str) -> list[str]:
    bins = reliability_bins([0.95, 0.85, 0.55], [1, 0, 1])
    return [
        charts.svg_bars({label: 3, "b": 5}, title=label, y_label=label),
        charts.svg_histogram([0.0, 0.5, 1.0], [2, 1], title=label, x_label=label),
        charts.svg_line(
            {label: ([0, 1], [0, 0.3])},
            title=label,
            x_label="x",
            y_label=label,
            marker=(0.5, 0.1, label),
        ),
        charts.svg_reliability(bins, title=label),
        charts.svg_hbars({label: 3, "b": 0}, title=label, x_label=label),
    ]


@pytest.mark.parametrize("index", range(5))
def test_every_chart_is_accessible_xml_with_escaped_text(index):
    svg = every_chart(EVIL)[index]
    assert "<script>" not in svg
    root = parse(svg)
    assert root.get("aria-label") == EVIL and root[0].text == EVIL
    assert EVIL in texts(root)  # drawn as text, decoded back by the XML parser


def test_bars_one_rect_per_value_with_labels_and_ticks():
    values = [("a", 1), ("b", 4), ("c", 2), ("<d>", 7)]
    root = parse(charts.svg_bars(values, title="Labels", y_label="count", fmt="{:.1f}"))
    bars = marks(root, "rect", "bar")
    assert len(bars) == 4
    assert [bar.find(f"{NS}title").text for bar in bars] == [
        "a: 1.0",
        "b: 4.0",
        "c: 2.0",
        "<d>: 7.0",
    ]
    heights = [float(bar.get("height")) for bar in bars]
    assert heights[3] > heights[1] > heights[2] > heights[0] > 0
    shown = texts(root)
    assert {"a", "b", "c", "<d>", "7.0", "count"} <= set(shown)
    assert {"0", "2", "4", "6", "8"} <= set(shown)  # y ticks up to a round number above 7


def test_bars_accept_a_dict_and_skip_missing_values():
    root = parse(charts.svg_bars({"1": 0.5, "2": None}, title="Rate", y_label="rate", fmt="{:.2f}"))
    assert len(marks(root, "rect", "bar")) == 1
    assert "n/a" in texts(root) and "0.50" in texts(root)


def test_histogram_one_contiguous_rect_per_bin():
    root = parse(
        charts.svg_histogram([0, 0.25, 0.5, 0.75, 1.0], [3, 0, 1, 2], title="H", x_label="entropy")
    )
    bars = marks(root, "rect", "bar")
    assert len(bars) == 4
    right = [float(b.get("x")) + float(b.get("width")) for b in bars[:-1]]
    assert right == pytest.approx([float(b.get("x")) for b in bars[1:]], abs=0.11)
    assert float(bars[1].get("height")) == 0
    assert {"entropy", "count", "0", "0.2", "1"} <= set(texts(root))


def test_line_one_polyline_per_series_and_the_marker():
    series = {"risk": ([0.2, 0.5, 1.0], [0.0, 0.1, 0.3]), "target": ([0.2, 1.0], [0.2, 0.2])}
    root = parse(
        charts.svg_line(
            series,
            title="Risk",
            x_label="coverage",
            y_label="risk",
            marker=(0.5, 0.1, "threshold 0.6"),
        )
    )
    lines = marks(root, "polyline", "line")
    assert len(lines) == 2 and len(lines[0].get("points").split()) == 3
    assert len(marks(root, "circle", "marker")) == 1
    assert {"risk", "target", "threshold 0.6", "coverage"} <= set(texts(root))


def test_reliability_bars_for_filled_bins_and_the_diagonal():
    bins = reliability_bins([0.95, 0.92, 0.85, 0.55], [1, 1, 0, 1])
    root = parse(charts.svg_reliability(bins))
    bars = marks(root, "rect", "bar")
    assert len(bars) == 3  # bins (0.5, 0.6], (0.8, 0.9], (0.9, 1.0]
    assert float(bars[1].get("height")) == 0  # accuracy 0 in (0.8, 0.9]
    assert float(bars[0].get("height")) == pytest.approx(float(bars[2].get("height")))
    assert len(marks(root, "line", "diagonal")) == 1
    assert {"confidence", "accuracy"} <= set(texts(root))


@pytest.mark.parametrize(
    "svg",
    [
        lambda: charts.svg_bars({}, title="T", y_label="n"),
        lambda: charts.svg_bars([("a", None)], title="T", y_label="n"),
        lambda: charts.svg_histogram([], [], title="T", x_label="x"),
        lambda: charts.svg_histogram([0, 1, 2], [0, 0], title="T", x_label="x"),
        lambda: charts.svg_line({}, title="T", x_label="x", y_label="y"),
        lambda: charts.svg_line({"a": ([], [])}, title="T", x_label="x", y_label="y"),
        lambda: charts.svg_reliability([]),
        lambda: charts.svg_reliability(reliability_bins([], [])),
    ],
)
def test_empty_data_says_so(svg):
    root = parse(svg())
    assert charts.NO_DATA in texts(root)
    assert not list(root.iter(f"{NS}rect")) and not list(root.iter(f"{NS}polyline"))


def test_size_is_configurable():
    root = parse(charts.svg_bars({"a": 1}, title="T", y_label="n", width=300, height=150))
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == (
        "300",
        "150",
        "0 0 300 150",
    )


@pytest.mark.parametrize("index", range(5))
def test_every_text_is_at_least_11_px_at_the_charts_own_size(index):
    root = parse(every_chart("x")[index])
    for text in root.iter(f"{NS}text"):
        size = text.get("font-size") or _inherited_size(root, text)
        assert float(size) >= 11, ET.tostring(text)


def _inherited_size(root, node):
    parents = {child: parent for parent in root.iter() for child in parent}
    while node in parents:
        node = parents[node]
        if node.get("font-size"):
            return node.get("font-size")
    raise AssertionError("a text without a font size")


def test_horizontal_bars_keep_every_name_whole_and_every_zero():
    names = ["0", "1", "none_of_these", "a rather long class name"]
    root = parse(
        charts.svg_hbars(dict(zip(names, [3, 0, 2, 5], strict=True)), title="T", x_label="labels")
    )
    labels = [el.text for el in marks(root, "text", "bar-label")]
    assert labels == names  # nothing cut, zero-label rows kept, in the given order
    assert [el.text for el in marks(root, "text", "value")] == ["3", "0", "2", "5"]
    widths = [float(el.get("width")) for el in marks(root, "rect", "bar")]
    assert widths[1] == 0 and widths[3] > widths[0] > 0
    very_long = "a class name far longer than any chart could hold beside its bar"
    root = parse(charts.svg_hbars({very_long: 2, "b": 1}, title="T", x_label="labels"))
    shown = marks(root, "text", "bar-label")[0]
    assert shown.text.endswith("…") and shown.find(f"{NS}title").text == very_long
    left = max(float(el.get("x")) for el in marks(root, "text", "bar-label"))
    assert left < float(root.get("width")) / 2  # the bars keep their room


def test_bars_say_how_many_items_each_rests_on():
    root = parse(charts.svg_bars([(1, 0.5), (2, None)], title="T", y_label="rate", counts=[12, 0]))
    assert [el.text for el in marks(root, "text", "count")] == ["n=12", "n=0"]


def test_histogram_and_reliability_bars_carry_their_counts():
    root = parse(charts.svg_histogram([0, 1, 2, 3], [1200, 0, 7], title="T", x_label="x"))
    assert [el.text for el in marks(root, "text", "value")] == ["1.2k", "7"]
    bins = reliability_bins([0.95, 0.92, 0.55], [1, 0, 1])
    counts = [el.text for el in marks(parse(charts.svg_reliability(bins)), "text", "count")]
    assert sorted(counts) == ["n=1", "n=2"]


def test_a_single_series_has_no_legend_two_do():
    one = parse(charts.svg_line({"only": ([0, 1], [0, 1])}, title="T", x_label="x", y_label="y"))
    assert marks(one, "text", "legend") == []
    two = parse(
        charts.svg_line(
            {"a": ([0, 1], [0, 1]), "b": ([0, 1], [1, 0])}, title="T", x_label="x", y_label="y"
        )
    )
    assert [el.text for el in marks(two, "text", "legend")] == ["a", "b"]
