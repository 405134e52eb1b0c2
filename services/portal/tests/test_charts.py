"""The SVG charts: parsed as XML, their accessible name and description, scales and points,
the figures of the table beside them, contrast and the cues other than colour."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest

from portal import charts
from portal.charts import Series, bar_chart, contrast, nice_ticks, step_chart
from portal.formatting import day, number
from portal.i18n import set_locale

NS = {"svg": "http://www.w3.org/2000/svg"}


@pytest.fixture(autouse=True)
def _french() -> None:
    set_locale("fr")


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output


def path_points(d: str) -> list[tuple[float, float]]:
    """The corners of an M…H…V… path."""
    x = y = 0.0
    corners = []
    for op, value in re.findall(r"([MHV])([-\d. ]+)", d):
        if op == "M":
            x, y = (float(v) for v in value.split())
        elif op == "H":
            x = float(value)
        else:
            y = float(value)
        corners.append((x, y))
    return corners


HISTORY = [
    Series("Paris 11e", [(date(2026, 1, 1), 1000.0), (date(2026, 1, 11), 1500.0)]),
    Series("Paris 12e", [(date(2026, 1, 6), 250.5)]),
]


def history_chart() -> charts.Chart:
    return step_chart(
        HISTORY,
        chart_id="hist",
        title="Surface de production",
        desc="Deux arrondissements",
        unit="m²",
        number=number,
        day=day,
        until=date(2026, 1, 21),
    )


def test_ticks_are_round_and_reach_the_top() -> None:
    assert nice_ticks(1500) == [0, 500, 1000, 1500]
    assert nice_ticks(1730) == [0, 500, 1000, 1500, 2000]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(12.5)[-1] >= 12.5


def test_step_chart_is_an_accessible_image_with_title_and_description() -> None:
    root = parse(history_chart().svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img"
    title = root.find("svg:title", NS)
    desc = root.find("svg:desc", NS)
    assert title is not None and title.text == "Surface de production"
    assert desc is not None and desc.text == "Deux arrondissements"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


def test_step_chart_points_sit_on_their_scales() -> None:
    root = parse(history_chart().svg)
    groups = root.findall("svg:g[@class='chart-series']", NS)
    assert [g.get("data-series") for g in groups] == ["Paris 11e", "Paris 12e"]
    first = path_points(groups[0].find("svg:path", NS).get("d"))  # type: ignore[union-attr]
    x0, x1 = charts.LEFT, charts.WIDTH - charts.RIGHT
    y0, y1 = charts.HEIGHT - charts.BOTTOM, charts.TOP
    top = 1500  # nice_ticks(1500)[-1]

    def y(v: float) -> float:
        return y0 - v / top * (y0 - y1)

    # 1 Jan at the left edge, 11 Jan half way to 21 Jan, then held to the end of the period.
    assert first[0] == pytest.approx((x0, y(1000)), abs=0.01)
    assert first[1] == pytest.approx(((x0 + x1) / 2, y(1000)), abs=0.01)
    assert first[2] == pytest.approx(((x0 + x1) / 2, y(1500)), abs=0.01)
    assert first[-1] == pytest.approx((x1, y(1500)), abs=0.01)
    second = path_points(groups[1].find("svg:path", NS).get("d"))  # type: ignore[union-attr]
    assert second[0] == pytest.approx((x0 + (x1 - x0) / 4, y(250.5)), abs=0.01)
    # The top tick is the scale's top, written the French way.
    ticks = [
        t.text
        for t in root.iter("{http://www.w3.org/2000/svg}text")
        if t.get("class") == "chart-tick"
    ]
    assert ticks == ["0", "500", "1\u202f000", "1\u202f500"]


def test_series_differ_by_more_than_colour() -> None:
    root = parse(history_chart().svg)
    groups = root.findall("svg:g[@class='chart-series']", NS)
    paths = [g.find("svg:path", NS) for g in groups]
    assert len({(p.get("stroke-dasharray") or "") for p in paths if p is not None}) == 2
    markers = [
        [child.tag for child in g if not child.tag.endswith(("path", "text"))] for g in groups
    ]
    assert markers[0] != markers[1]
    labels = [g.find("svg:text", NS).text for g in groups]  # type: ignore[union-attr]
    assert labels == ["Paris 11e · 1\u202f500", "Paris 12e · 250,5"]


def test_step_chart_table_has_the_figures_in_force_each_day() -> None:
    chart = history_chart()
    assert chart.headers == ["", "Paris 11e", "Paris 12e"]
    assert chart.rows == [
        ["1 janvier 2026", "1\u202f000", "—"],
        ["6 janvier 2026", "1\u202f000", "250,5"],
        ["11 janvier 2026", "1\u202f500", "250,5"],
    ]


def test_numbers_follow_the_page_language() -> None:
    set_locale("en")
    chart = history_chart()
    assert chart.rows[1] == ["January 6, 2026", "1,000", "250.5"]


def test_an_empty_history_is_still_a_valid_image() -> None:
    chart = step_chart(
        [Series("Total", [])], chart_id="e", title="t", desc="d", unit="m²", number=number, day=day
    )
    root = parse(chart.svg)
    assert root.get("role") == "img"
    assert chart.rows == []


def test_bar_chart_bars_are_proportional_and_labelled() -> None:
    bars = [("Paris 3e", 400.0), ("Paris 11e", 1000.0), ("Paris 20e", 0.0)]
    chart = bar_chart(
        bars,
        chart_id="bars",
        title="Par arrondissement",
        desc="Trois arrondissements",
        unit="m²",
        number=number,
        headers=("Arrondissement", "m²"),
    )
    root = parse(chart.svg)
    assert root.get("role") == "img"
    groups = root.findall("svg:g[@class='chart-bar']", NS)
    assert [g.get("data-label") for g in groups] == ["Paris 3e", "Paris 11e", "Paris 20e"]
    widths = [float(g.find("svg:rect", NS).get("width")) for g in groups]  # type: ignore[union-attr]
    assert widths[0] / widths[1] == pytest.approx(0.4, abs=0.01)
    assert widths[2] == 0
    values = [g.findall("svg:text", NS)[1].text for g in groups]
    assert values == ["400", "1\u202f000", "0"]
    assert chart.rows == [["Paris 3e", "400"], ["Paris 11e", "1\u202f000"], ["Paris 20e", "0"]]
    assert chart.headers == ["Arrondissement", "m²"]


def test_names_are_escaped() -> None:
    chart = bar_chart(
        [("<script>", 1.0)], chart_id="x", title="a & b", desc="<d>", unit="m²", number=number
    )
    assert "<script>" not in chart.svg
    root = parse(chart.svg)
    assert root.find("svg:title", NS).text == "a & b"  # type: ignore[union-attr]


def test_colours_have_three_to_one_contrast_on_white() -> None:
    for colour in charts.COLOURS:
        assert contrast(colour) >= 3.0, colour
    assert contrast("#ffffff") == pytest.approx(1.0)
    assert contrast("#000000") == pytest.approx(21.0)
    assert len(set(charts.DASHES)) == len(charts.DASHES)
    assert len(set(charts.MARKERS)) == len(charts.MARKERS)
