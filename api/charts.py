"""The dashboard's charts, drawn on the server as SVG with pygal (a well-kept Python charting
library): the console shows them as images, so it needs no JavaScript charting bundle, no build
step and no script from anywhere else (pygal's tooltip script, fetched from a CDN by default,
is left out: ``js=[]``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pygal
from pygal.style import Style

_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#333333",
    foreground_strong="#111111",
    foreground_subtle="#dddddd",
    colors=("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c"),
    font_family="system-ui, sans-serif",
    stroke_width="2.5",
)


def _config(title: str) -> dict[str, Any]:
    return {
        "title": title,
        "style": _STYLE,
        "js": [],
        "width": 720,
        "height": 280,
        "show_legend": False,
        "disable_xml_declaration": True,
        "print_values": False,
        "no_data_text": "No conversations in this period",
    }


def series_svg(points: Sequence[dict[str, Any]], metric: str, title: str) -> str:
    """A line over the buckets (a gap where the metric is undefined, e.g. a rate of 0 / 0)."""
    many = len(points) > 14
    chart = pygal.Line(
        **_config(title),
        x_label_rotation=45 if many else 0,
        show_minor_x_labels=not many,
        x_labels_major_every=7 if many else None,
        dots_size=2,
        allow_interruptions=True,
    )
    chart.x_labels = [p["bucket"] for p in points]
    values = [p.get(metric) for p in points]
    if any(values):  # a flat line at 0 would look like data: pygal says "No conversations"
        chart.add(metric, values)
    return str(chart.render(is_unicode=True))


def breakdown_svg(rows: Sequence[dict[str, Any]], by: str, metric: str, title: str) -> str:
    """Horizontal bars, the largest group on top (at most 12 groups, the rest left out)."""
    top = list(rows)[:12]
    chart = pygal.HorizontalBar(**_config(title))
    chart.x_labels = [str(r.get(by) if r.get(by) is not None else "none") for r in reversed(top)]
    values = [r.get(metric) for r in reversed(top)]
    if any(values):
        chart.add(metric, values)
    return str(chart.render(is_unicode=True))
