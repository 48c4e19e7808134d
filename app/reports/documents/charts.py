"""The report's charts, drawn once with matplotlib as SVG: the HTML inlines the SVG, the PDF
converts the same SVG to vector drawings (svglib), so both show the same picture.

- one chart per goal over the period: the daily value against the goal line (and the
  ambition line where the goal has one);
- the wait distribution: answered and abandoned calls per wait band.

Deterministic: the SVG carries no date, and its element ids come from a fixed salt per
chart (matplotlib otherwise salts them with a random UUID), so the same report gives the
same bytes. Text stays text (``svg.fonttype = none``), in DejaVu Sans: the PDF maps it to
the same embedded font, so a chart's words are searchable there too, and svglib converts
a chart five times faster than with every glyph a path; the HTML names like fonts after
it for a reader without DejaVu.

matplotlib is used through its object API (``Figure``, no pyplot): no global figure
registry, no GUI backend. Its ``rcParams`` are global, though, so drawing is serialised
by a lock (renders run in worker threads).
"""

from __future__ import annotations

import io
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

import app.reports.documents.danish as danish

# Colours chosen to survive a black-and-white printer: the value line is dark and solid,
# the goal line dashed, the ambition line dotted.
INK = "#1f3b57"
GOAL = "#b3261e"
AMBITION = "#5f6b00"
ABANDONED = "#c98a2b"
GRID = "#d9d9d9"
WIDTH_IN, HEIGHT_IN = 7.0, 2.6  # fits an A4 page's text width at 1:1

_RC: dict[Any, Any] = {  # rc_context types its keys as a Literal of every name
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",  # shipped with matplotlib: æ, ø, å and every digit
    "font.size": 8.5,
    "axes.edgecolor": "#555555",
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "xtick.major.size": 3,
    "ytick.major.size": 3,
    "legend.frameon": False,
    "legend.fontsize": 8,
    "path.simplify": False,  # the same path whatever the cache: fixed bytes
}
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Chart:
    key: str  # goal key or "wait_distribution"
    title: str  # Danish
    svg: str  # a standalone <svg> element (no XML declaration, no DOCTYPE)


def _svg(fig: Figure, salt: str) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"acd-report-{salt}"}):
        # No metadata block: its date would change the bytes, the rest says nothing.
        fig.savefig(
            buffer, format="svg", metadata=dict.fromkeys(("Creator", "Date", "Format", "Type"))
        )
    text = buffer.getvalue()
    # Keep the <svg> element only: it is inlined in HTML and read by svglib alike.
    return text[text.index("<svg") :].rstrip() + "\n"


def _figure(bottom: float = 0.12) -> Figure:
    # Fixed margins, not matplotlib's constrained layout: that measured every label of
    # every chart and was 40 % of a chart's time; the labels here are of known kinds.
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN))
    fig.subplots_adjust(left=0.085, right=0.99, top=0.84, bottom=bottom)
    return fig


def _tick_formatter(kind: danish.Kind) -> FuncFormatter:
    def fmt(value: float, _pos: int | None) -> str:
        if kind == "share":
            return f"{danish.number(100 * value, 0)} %"
        if kind == "seconds":
            return f"{danish.number(value, 0)} s"
        if kind == "score":
            return danish.number(value, 1)
        return danish.number(value, 0)

    return FuncFormatter(fmt)


def goal_chart(
    key: str, goal: dict[str, Any], daily: Sequence[dict[str, Any]], *, title: str
) -> Chart | None:
    """The daily value of one goal's figure over the period against the goal line (and
    the ambition line); None when no day has a value (nothing to draw)."""
    points = [
        (date.fromisoformat(row["date"]), float(row[key]))
        for row in daily
        if row.get(key) is not None
    ]
    if not points:
        return None
    kind = danish.unit_kind(goal.get("unit"))
    fig = _figure()
    ax = fig.add_subplot()
    x = [d.toordinal() for d, _ in points]
    values = [v for _, v in points]
    ax.plot(x, values, color=INK, linewidth=1.4, marker="o", markersize=2.2, label="Pr. dag")
    levels: list[float] = list(values)
    for name, colour, style, width in (
        ("target", GOAL, (0, (5, 3)), 1.2),
        ("ambition", AMBITION, ":", 1.0),
    ):
        level = goal.get(name)
        if level is None:
            continue
        shown = danish.target(kind, goal.get("direction"), level)
        label = f"{'Mål' if name == 'target' else 'Ambition'} {shown}"
        ax.axhline(level, color=colour, linewidth=width, linestyle=style, label=label)
        levels.append(float(level))
    low, high = min(levels), max(levels)
    pad = (high - low) * 0.12 or abs(high) * 0.05 or 1.0
    ax.set_ylim(low - pad if kind == "score" else max(0.0, low - pad), high + pad)
    ax.set_xlim(x[0] - 0.5, x[-1] + 0.5)
    ax.yaxis.set_major_formatter(_tick_formatter(kind))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_locator(MaxNLocator(10, integer=True))
    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda v, _p: danish.short_date(date.fromordinal(round(v))))
    )
    ax.grid(axis="y", color=GRID, linewidth=0.5)
    ax.set_title(title)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=3, borderaxespad=0.2)
    return Chart(key, title, _svg(fig, key))


def band_labels(edges: Sequence[float]) -> list[str]:
    """The wait bands of the distribution's edges, in Danish: '0-30 s', ..., '> 600 s'
    (bucket i holds waits in (edges[i-1], edges[i]], the last above the last edge)."""
    bounds = [0.0, *edges]
    labels = [
        f"{danish.number(lo, 0)}-{danish.number(hi, 0)} s" for lo, hi in itertools.pairwise(bounds)
    ]
    return [*labels, f"> {danish.number(bounds[-1], 0)} s"]


def distribution_chart(distribution: dict[str, Any], *, title: str) -> Chart | None:
    """Answered and abandoned calls per wait band, stacked."""
    answered = [int(n) for n in distribution.get("answered") or []]
    abandoned = [int(n) for n in distribution.get("abandoned") or []]
    if not any(answered) and not any(abandoned):
        return None
    labels = band_labels(distribution.get("edges_seconds") or [])
    fig = _figure(bottom=0.3 if len(labels) > 8 else 0.2)
    ax = fig.add_subplot()
    x = list(range(len(labels)))
    ax.bar(x, answered, color=INK, width=0.7, label="Besvarede")
    ax.bar(x, abandoned, bottom=answered, color=ABANDONED, width=0.7, label="Opgivne")
    if len(labels) > 8:  # many bands: slanted, smaller labels that do not overlap
        ax.set_xticks(x, labels, rotation=40, ha="right", rotation_mode="anchor", fontsize=7)
    else:
        ax.set_xticks(x, labels)
    ax.yaxis.set_major_formatter(_tick_formatter("count"))
    ax.yaxis.set_major_locator(MaxNLocator(5, integer=True))
    ax.grid(axis="y", color=GRID, linewidth=0.5)
    ax.set_axisbelow(True)
    ax.set_title(title)
    ax.set_xlabel("Ventetid")
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, borderaxespad=0.2)
    return Chart("wait_distribution", title, _svg(fig, "wait_distribution"))


def report_charts(
    goals: dict[str, dict[str, Any]],
    daily: Sequence[dict[str, Any]],
    distribution: dict[str, Any] | None,
) -> list[Chart]:
    """Every chart of a report: one per goal in force (metric -> goal, in order), then
    the wait distribution."""
    out: list[Chart] = []
    with _LOCK, matplotlib.rc_context(_RC):
        for key, goal in goals.items():
            title = f"{danish.GOAL_LABELS.get(key, goal.get('title') or key)} pr. dag"
            chart = goal_chart(key, goal, daily, title=title)
            if chart is not None:
                out.append(chart)
        if distribution:
            dist = distribution_chart(distribution, title="Fordeling af ventetider")
            if dist is not None:
                out.append(dist)
    return out
