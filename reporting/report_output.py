"""Report tables as CSV and charts as SVG (pygal), drawn on the server. Pure: rows in, text out."""
from __future__ import annotations

import csv
import io
import re
from typing import Any, Iterable, Sequence

import pygal
from pygal.style import Style

from reporting.reports import DEFINITION_BY_KEY

_STYLE = Style(
    background="white", plot_background="white", foreground="#222", foreground_strong="#000",
    foreground_subtle="#666", colors=("#1f5fa8", "#2e8b57", "#c0392b", "#e67e22", "#7f8c8d"),
    font_family="system-ui, sans-serif", label_font_size=12, major_label_font_size=12,
    legend_font_size=13, title_font_size=16, value_font_size=11, tooltip_font_size=12,
)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value        # never a formula in a spreadsheet
    return value


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], comments: Sequence[str] = ()) -> str:
    """CSV with a header of the figures' keys; empty cells for figures without a value. Before
    the header, `#` comment lines: `comments`, then each figure's definition."""
    out = io.StringIO()
    for text in comments:
        out.write(f"# {_one_line(text)}\r\n")
    for key in columns:
        d = DEFINITION_BY_KEY.get(key)
        if d is not None:
            out.write(f"# {d.key}: {_one_line(d.label)} ({d.unit}). {_one_line(d.text)}\r\n")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _label(key: str) -> str:
    d = DEFINITION_BY_KEY.get(key)
    return d.label if d else key.replace("_", " ").capitalize()


def chart(rows: Sequence[dict[str, Any]], by: str, series: Sequence[str], title: str,
          kind: str = "line", width: int = 900, height: int = 360) -> str:
    """An SVG chart of `series` (figure keys) over the rows' `by` values."""
    cls = {"line": pygal.Line, "bar": pygal.Bar}[kind]
    many = len(rows) > 40
    config = dict(
        style=_STYLE, width=width, height=height, title=title, show_dots=not many,
        x_label_rotation=45 if many or by in ("queue", "district", "category") else 0,
        show_minor_x_labels=False, truncate_label=24, legend_at_bottom=True,
        disable_xml_declaration=True, js=[], include_x_axis=True, print_values=False,
        allow_interruptions=True, no_data_text="No contacts in the period",
    )
    c = cls(**config)
    labels = [str(r[by]) if by != "hour" else f"{r[by]:02d}" for r in rows]
    c.x_labels = labels
    if many:
        step = max(1, len(labels) // 24)
        c.x_labels_major = labels[::step]
    for key in series:
        c.add(_label(key), [r.get(key) for r in rows])
    # pygal's inline <script> only configures its optional JavaScript (not loaded here)
    return _SCRIPT.sub("", c.render(is_unicode=True))


_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


CHARTS = {
    # name: (breakdown, series, title, kind)
    "volume-by-day": ("day", ("offered", "answered", "abandoned"), "Contacts per day", "line"),
    "service-level-by-day": ("day", ("service_level", "availability"), "Service level and availability per day (%)", "line"),
    "volume-by-hour": ("hour", ("offered", "answered", "abandoned"), "Contacts by hour of day", "bar"),
    "asa-by-hour": ("hour", ("asa", "aht"), "Speed of answer and handle time by hour (s)", "bar"),
    "volume-by-queue": ("queue", ("offered", "answered", "abandoned", "overflowed_out"), "Contacts by queue", "bar"),
    "volume-by-district": ("district", ("offered", "answered", "abandoned", "overflowed_out", "overflowed_in"), "Contacts by district", "bar"),
}
