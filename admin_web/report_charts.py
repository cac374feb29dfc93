"""The report page's charts as inline SVG that people can read: both axes labelled (days,
hours, district and queue names), every value on hover (`<title>` on each bar), a legend
naming the series, and the target drawn where there is one. Pure: rows in, a drawing out;
`templates/_chart.html` writes it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

WIDTH, HEIGHT = 900, 330
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 16, 96
# Colours with at least 3:1 against white (WCAG 1.4.11), told apart by the legend too.
COLOURS = ("#1f5fa8", "#2e7d32", "#b3261e", "#8a5200", "#5e35b1")


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass
class Chart:
    id: str
    title: str
    unit_label: str                 # the vertical axis: "Kontakter", "%", "Sekunder"
    axis_label: str                 # the horizontal axis: "Dag", "Timme", "Kö"
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)     # (y, text)
    labels: list[tuple[float, str, bool]] = field(default_factory=list)   # (x, text, rotated)
    legend: list[tuple[str, str]] = field(default_factory=list)      # (colour, series name)
    target: tuple[float, str] | None = None                          # (y, text)
    empty: bool = False
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_bottom: int = HEIGHT - BOTTOM
    plot_right: int = WIDTH - RIGHT


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def draw(chart_id: str, title: str, rows: Sequence[dict[str, Any]], by: str,
         series: Sequence[tuple[str, str]], label_of: Callable[[Any], str],
         shown: Callable[[Any], str], unit_label: str, axis_label: str,
         percent: bool = False, target: tuple[float, str] | None = None) -> Chart:
    """A grouped bar chart of `series` ((key, name) pairs) over the rows' `by` values;
    `label_of` names a category, `shown` writes a value. Percentages run to 100."""
    chart = Chart(chart_id, title, unit_label, axis_label)
    chart.legend = [(COLOURS[i % len(COLOURS)], name) for i, (_key, name) in enumerate(series)]
    values = [r.get(k) for r in rows for k, _name in series if r.get(k) is not None]
    if not rows or not values:
        chart.empty = True
        return chart
    top = 100.0 if percent else _nice_max(max(float(v) for v in values))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base = HEIGHT - BOTTOM
    chart.ticks = [(base - plot_h * i / 5, _tick(top * i / 5)) for i in range(6)]
    if target is not None:
        chart.target = (base - plot_h * min(target[0], top) / top, target[1])
    group = plot_w / len(rows)
    bar_w = max(1.0, group * 0.8 / len(series))
    rotate = len(rows) > 12 or by in ("queue", "district", "category")
    every = max(1, math.ceil(len(rows) / 31))
    for i, row in enumerate(rows):
        name = label_of(row.get(by))
        x0 = LEFT + group * i + group * 0.1
        if i % every == 0:
            chart.labels.append((LEFT + group * (i + 0.5), name, rotate))
        for j, (key, series_name) in enumerate(series):
            value = row.get(key)
            h = 0.0 if value is None else plot_h * min(float(value), top) / top
            chart.bars.append(Bar(x0 + bar_w * j, base - h, bar_w, h, COLOURS[j % len(COLOURS)],
                                  f"{name} – {series_name}: {shown(value)}"))
    return chart


def _tick(value: float) -> str:
    return f"{value:g}" if value < 10 else f"{round(value):d}"
