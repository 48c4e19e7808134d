"""What a report document says, decided once for the HTML and the PDF: the title, the
goals tables (page one), the centre's figures, the service-level and survey tables, the
per-group table and the data-quality notes, as rows of Danish text with each goal cell's
verdict beside it. The HTML template and the PDF builder only lay these out, so the two
documents cannot drift apart.

Pure: takes the report's JSON (``app.reports.model.Report`` dumped by alias), returns
plain data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import app.reports.documents.danish as danish
from app.reports.documents.charts import Chart, report_charts

ORGANISATION = "Jobcenter København · 82 56 56 82"
TITLE = "Opfølgning på servicemål"

# The per-group table's columns, in order; a column shows when any group has the figure.
GROUP_COLUMNS = (
    "offered",
    "answered",
    "answer_rate",
    "avg_wait_seconds",
    "service_level",
    "first_contact_resolution",
    "satisfaction",
)
DATA_QUALITY_LABELS = {
    "gaps": "Huller i opkaldsdata fra telefonanlægget",
    "gap_seconds": "Samlet varighed af huller (s)",
    "calls": "Opkald i perioden",
    "calls_touched": "Opkald berørt af huller",
    "visits_touched": "Køophold berørt af huller",
    "figures_affected_count": "Nøgletal der kan være påvirket",
    "days_without_data": "Dage uden data",
}


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    status: str | None = None  # met / at_risk / missed / no_data: a goal's value or verdict


@dataclass(frozen=True, slots=True)
class Table:
    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: tuple[bool, ...]  # right-aligned columns
    note: str = ""


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    period: str  # 'Uge 45 2014', '4. kvartal 2014' (the report's own title)
    span: str  # '3. november 2014 – 9. november 2014'
    start: date
    end: date
    by: str
    goals: tuple[Table, ...]  # page one: the agreement(s) in force, then for comparison
    figures: Table
    details: tuple[Table, ...]  # service levels, the survey
    groups: Table | None
    quality: tuple[tuple[str, str], ...]
    notes: tuple[str, ...] = ()
    charts: tuple[Chart, ...] = field(default=())


def agreements(goals: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The agreements of a goals block, those in force first, comparisons after (each in
    the report's order)."""
    items = list(goals.items())
    yield from ((k, a) for k, a in items if not a.get("comparison"))
    yield from ((k, a) for k, a in items if a.get("comparison"))


def primary_goals(goals: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Metric -> goal, from the agreements in force (the first that sets a metric wins):
    what a cell's colour and a chart's goal line are measured against."""
    out: dict[str, dict[str, Any]] = {}
    for _, agreement in agreements(goals):
        if agreement.get("comparison"):
            continue
        for metric, goal in (agreement.get("goals") or {}).items():
            out.setdefault(metric, goal)
    return out


def _status(goal: dict[str, Any] | None) -> str | None:
    return None if goal is None else goal.get("status")


def goals_table(agreement: dict[str, Any]) -> Table:
    comparison = bool(agreement.get("comparison"))
    rows = []
    for metric, goal in (agreement.get("goals") or {}).items():
        kind = danish.unit_kind(goal.get("unit"))
        aim = danish.target(kind, goal.get("direction"), goal.get("target"))
        if goal.get("ambition") is not None:
            ambition = danish.target(kind, goal.get("direction"), goal["ambition"])
            aim = f"{aim} (ambition {ambition})"
        status = goal.get("status")
        row = [
            Cell(str(goal.get("title") or danish.GOAL_LABELS.get(metric, metric))),
            Cell(aim),
            Cell(danish.figure(kind, goal.get("value"), compact=True), status),
            Cell(danish.STATUS_LABELS.get(status, danish.NO_VALUE), status),
        ]
        if not comparison:
            row += [
                Cell(danish.change(kind, (goal.get("previous") or {}).get("change"))),
                Cell(danish.change(kind, (goal.get("last_year") or {}).get("change"))),
            ]
        rows.append(tuple(row))
    header: tuple[str, ...] = ("Mål", "Målsætning", "Resultat", "Status")
    numeric: tuple[bool, ...] = (False, True, True, False)
    if not comparison:
        header += ("Ift. forrige periode", "Ift. samme periode sidste år")
        numeric += (True, True)
    title = str(agreement.get("title") or "Servicemål")
    if not comparison:
        caption = f"Servicemål: {title}"
    elif "sammenligning" in title.lower():  # the goals file says so already
        caption = title
    else:
        caption = f"Til sammenligning: {title}"
    return Table(caption, header, tuple(rows), numeric)


def figures_table(figures: dict[str, Any]) -> Table:
    """The centre's figures, two to a row (label, value, label, value): the list is long and
    page one must hold it beside the goals."""
    goals = primary_goals(figures.get("goals") or {})
    cells = [
        (Cell(f.label), Cell(danish.figure(f.kind, figures[f.key]), _status(goals.get(f.key))))
        for f in danish.FIGURES
        if f.key in figures
    ]
    half = (len(cells) + 1) // 2
    left, right = cells[:half], cells[half:]
    rows = tuple(
        (*left[i], *(right[i] if i < len(right) else (Cell(""), Cell("")))) for i in range(half)
    )
    return Table(
        "Nøgletal for hele centret",
        ("Nøgletal", "Perioden", "Nøgletal", "Perioden"),
        rows,
        (False, True, False, True),
    )


def service_level_table(figures: dict[str, Any]) -> Table | None:
    levels = figures.get("service_levels") or []
    if not levels:
        return None
    rows = tuple(
        (
            Cell(f"Inden for {danish.number(sl['threshold_seconds'], 0)} s"),
            Cell(danish.share(sl.get("of_answered"))),
            Cell(danish.share(sl.get("of_offered"))),
            Cell(danish.share(sl.get("sl2"))),
        )
        for sl in levels
    )
    return Table(
        "Serviceniveau",
        ("Ventetid", "Af besvarede", "Af tilbudte", "Besvaret og opgivet (SL2)"),
        rows,
        (False, True, True, True),
        note="SL2: besvarede og opgivne inden for tiden i forhold til alle besvarede og opgivne.",
    )


def _question(stats: dict[str, Any]) -> str:
    if not stats or not stats.get("n"):
        return danish.NO_VALUE
    text = danish.score(stats.get("mean"))
    low, high = stats.get("ci95_low"), stats.get("ci95_high")
    if low is not None and high is not None:
        text += f" ({danish.score(low)}–{danish.score(high)})"
    return f"{text}, n = {danish.count(stats['n'])}"


def survey_table(figures: dict[str, Any]) -> Table | None:
    survey = figures.get("survey")
    if not survey:
        return None
    rows = tuple(
        (
            Cell(label),
            *(
                Cell(_question((survey.get(split) or {}).get(q) or {}))
                for split in danish.SURVEY_SPLITS
            ),
        )
        for q, label in danish.SURVEY_QUESTIONS.items()
    )
    return Table(
        "Tilfredshedsundersøgelsen (1-9)",
        ("Spørgsmål", *danish.SURVEY_SPLITS.values()),
        rows,
        (False, True, True, True),
        note="Gennemsnit med 95 %-konfidensinterval og antal svar. Straksafklaret og "
        "viderestillet efter medarbejderens registrering af samtalen.",
    )


def groups_table(by: str, groups: Sequence[dict[str, Any]]) -> Table | None:
    if not groups:
        return None
    columns = [danish.FIGURE_BY_KEY[k] for k in GROUP_COLUMNS if any(k in g for g in groups)]
    rows = []
    for g in groups:
        goals = primary_goals(g.get("goals") or {})
        cells = [Cell(str(g.get("title") or g.get("key")))]
        for f in columns:
            status = _status(goals.get(f.key))
            cells.append(Cell(danish.figure(f.kind, g.get(f.key), compact=True), status))
        rows.append(tuple(cells))
    what = danish.BY_LABELS.get(by, by)
    return Table(
        f"Pr. {what.lower()}",
        (what, *(f.header for f in columns)),
        tuple(rows),
        (False, *(True for _ in columns)),
    )


def quality_lines(quality: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for key, label in DATA_QUALITY_LABELS.items():
        value = quality.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append((label, danish.count(value)))
    if quality.get("share_touched") is not None:
        out.append(("Andel opkald berørt af huller", danish.share(quality["share_touched"], 2)))
    affected = [danish.label(k) for k in quality.get("figures_affected") or []]
    if affected:
        out.append(("Påvirkede nøgletal", ", ".join(affected)))
    return tuple(out)


def document(report: dict[str, Any], *, charts: bool = True) -> Document:
    start, end = date.fromisoformat(report["from"]), date.fromisoformat(report["to"])
    centre = report.get("centre") or {}
    by = str(report.get("by") or "centre")
    details = (service_level_table(centre), survey_table(centre))
    quality = report.get("data_quality") or {}
    # An agreement with nothing measured in the period (a scope without calls, e.g.
    # Erhvervshuset's line in a department report) is named, not tabled: page one is for
    # the goals that were measured.
    shown: list[dict[str, Any]] = []
    unmeasured: list[dict[str, Any]] = []
    for _, agreement in agreements(centre.get("goals") or {}):
        goals = (agreement.get("goals") or {}).values()
        measured = any(g.get("value") is not None for g in goals)
        (shown if measured else unmeasured).append(agreement)
    if not shown:  # nothing measured at all: the tables say "Ingen data" for each goal
        shown, unmeasured = unmeasured, []
    notes = [f"Ingen opkald at måle for: {a.get('title')}." for a in unmeasured]
    return Document(
        title=TITLE,
        period=str(report.get("title") or f"{danish.long_date(start)} – {danish.long_date(end)}"),
        span=f"{danish.long_date(start)} – {danish.long_date(end)}",
        start=start,
        end=end,
        by=by,
        goals=tuple(goals_table(a) for a in shown),
        figures=figures_table(centre),
        details=tuple(t for t in details if t is not None),
        groups=groups_table(by, report.get("groups") or []) if by != "centre" else None,
        quality=quality_lines(quality),
        notes=(*notes, *(str(n) for n in quality.get("notes") or [])),
        charts=tuple(
            report_charts(
                primary_goals(centre.get("goals") or {}),
                report.get("daily") or [],
                report.get("wait_distribution"),
            )
        )
        if charts
        else (),
    )
