"""The report as an XLSX workbook for analysts (XlsxWriter): numbers as numbers (shares as
fractions with a per cent format, waits in seconds, dates as dates), one sheet per part of
the report, a header row each, so that it reads straight into a spreadsheet or pandas.

Sheets: Mål (the goals), Centret (every figure of the centre), one per cut (the groups),
Dagligt (the days), Ventetider (the wait bands), Datakvalitet, Felter (each column's JSON
name and meaning, so an analyst can match the workbook to the API).

Deterministic bytes: XlsxWriter writes every zip member with a fixed 1980 timestamp when
it works in memory, and the document's creation time is set to the report period's last
day instead of the time of rendering.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time
from typing import Any

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

import app.reports.documents.danish as danish
from app.reports.documents.charts import band_labels
from app.reports.documents.layout import DATA_QUALITY_LABELS, ORGANISATION, TITLE, agreements

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_EXCEL_SHEET_NAME = 31  # Excel's limit on a sheet name


def flat_figures(
    figures: dict[str, Any], prefix: str = "", *, nested: bool = True
) -> Iterator[tuple[str, Any]]:
    """The numeric leaves of a group's figures as (dotted JSON path, value), goals and
    names left out (they have their own columns): ``survey.all.overall.mean``; the
    service-level table by threshold (``service_levels.180.of_answered``), the survey's
    answer counts by answer (``...overall.counts.9``). ``nested=False``: the top-level
    scalars only (the wide sheets)."""
    for key, value in figures.items():
        if not prefix and key in ("goals", "key", "title", "date"):
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            if nested:
                yield from flat_figures(value, f"{path}.")
        elif isinstance(value, list):
            if not nested:
                continue
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    name = f"{item['threshold_seconds']:g}" if "threshold_seconds" in item else i
                    yield from flat_figures(
                        {k: v for k, v in item.items() if k != "threshold_seconds"},
                        f"{path}.{name}.",
                    )
                elif _numeric(item):
                    yield f"{path}.{i + 1 if key == 'counts' else i}", item
        elif value is None or _numeric(value):
            yield path, value


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_SHARE_LEAVES = ("rate", "share", "resolution", "repeat", "of_answered", "of_offered", "sl2",
                 "service_level", "of_answered_and_late_abandons", "service_level_offered",
                 "service_level_sl2", "service_level_abandons")  # fmt: skip


def _kind(path: str) -> danish.Kind:
    known = danish.FIGURE_BY_KEY.get(path)
    if known is not None:
        return known.kind
    leaf = path.rsplit(".", 1)[-1]
    if leaf.endswith("_seconds"):
        return "seconds"
    if leaf.endswith(_SHARE_LEAVES):
        return "share"
    if leaf in ("mean", "ci95_low", "ci95_high", "satisfaction"):
        return "score"
    return "count"


def _label(path: str) -> str:
    return danish.label(path)


def _columns(rows: Iterable[dict[str, Any]], *, nested: bool = True) -> list[str]:
    """Every figure path any row has: the documents' order first, then the rest as met."""
    seen: dict[str, None] = {}
    for row in rows:
        for path, _ in flat_figures(row, nested=nested):
            seen.setdefault(path, None)
    known = [f.key for f in danish.FIGURES if f.key in seen]
    return known + [p for p in seen if p not in danish.FIGURE_BY_KEY]


class _Book:
    def __init__(self, book: xlsxwriter.Workbook) -> None:
        self.book = book
        self.head = book.add_format(
            {
                "bold": True,
                "bg_color": "#1F3B57",
                "font_color": "#FFFFFF",
                "text_wrap": True,
                "valign": "top",
            }
        )
        self.title = book.add_format({"bold": True, "font_size": 14, "font_color": "#1F3B57"})
        self.formats: dict[str, Format] = {
            "count": book.add_format({"num_format": "#,##0"}),
            "share": book.add_format({"num_format": "0.0%"}),
            "seconds": book.add_format({"num_format": "0.0"}),
            "score": book.add_format({"num_format": "0.00"}),
            "number": book.add_format({"num_format": "General"}),
            "date": book.add_format({"num_format": "yyyy-mm-dd"}),
        }  # fmt: skip
        self.status = {
            "met": book.add_format({"font_color": "#1E6B35", "bold": True}),
            "at_risk": book.add_format({"font_color": "#8A5A00", "bold": True}),
            "missed": book.add_format({"font_color": "#B3261E", "bold": True}),
        }

    def sheet(self, name: str, header: list[str], widths: Sequence[float]) -> Worksheet:
        ws = self.book.add_worksheet(name[:_EXCEL_SHEET_NAME])
        ws.write_row(0, 0, header, self.head)
        for i, w in enumerate(widths):
            ws.set_column(i, i, w)
        ws.freeze_panes(1, 0)
        return ws

    def number(self, ws: Worksheet, row: int, col: int, value: Any, kind: danish.Kind) -> None:
        if value is None:
            ws.write_blank(row, col, None)
        else:
            ws.write_number(row, col, float(value), self.formats[kind])


def _goals(b: _Book, goals: dict[str, Any]) -> None:
    header = ["Aftale", "Mål", "Retning", "Målsætning", "Advarsel", "Ambition", "Resultat",
              "Status", "Forrige periode", "Ændring", "Samme periode sidste år", "Ændring",
              "Nøgle"]  # fmt: skip
    ws = b.sheet("Mål", header, [30, 36, 8, 12, 12, 12, 12, 14, 14, 12, 14, 12, 26])
    r = 0
    for _, agreement in agreements(goals):
        for metric, goal in (agreement.get("goals") or {}).items():
            r += 1
            kind = danish.unit_kind(goal.get("unit"))
            status = goal.get("status")
            previous, last_year = goal.get("previous") or {}, goal.get("last_year") or {}
            ws.write_string(r, 0, str(agreement.get("title") or ""))
            ws.write_string(r, 1, str(goal.get("title") or metric))
            ws.write_string(r, 2, danish.DIRECTION_SIGNS.get(goal.get("direction") or "", ""))
            for c, value in enumerate(
                (goal.get("target"), goal.get("warning"), goal.get("ambition"), goal.get("value")),
                start=3,
            ):
                b.number(ws, r, c, value, kind)
            ws.write_string(r, 7, danish.STATUS_LABELS.get(status, danish.NO_VALUE),
                            b.status.get(status or ""))  # fmt: skip
            b.number(ws, r, 8, previous.get("value"), kind)
            b.number(ws, r, 9, previous.get("change"), kind)
            b.number(ws, r, 10, last_year.get("value"), kind)
            b.number(ws, r, 11, last_year.get("change"), kind)
            ws.write_string(r, 12, metric)


def _figures(b: _Book, centre: dict[str, Any]) -> list[str]:
    ws = b.sheet("Centret", ["Nøgletal", "Værdi", "Nøgle"], [36, 14, 36])
    paths = _columns([centre])
    values = dict(flat_figures(centre))
    for r, path in enumerate(paths, start=1):
        ws.write_string(r, 0, _label(path))
        b.number(ws, r, 1, values.get(path), _kind(path))
        ws.write_string(r, 2, path)
    return paths


def _groups(b: _Book, by: str, groups: list[dict[str, Any]]) -> list[str]:
    what = danish.BY_LABELS.get(by, by)
    paths = _columns(groups, nested=False)
    header = [what, "Nøgle"] + [_label(p) for p in paths]
    ws = b.sheet(f"Pr. {what.lower()}", header, [24, 16] + [13] * len(paths))
    ws.set_row(0, 45)
    for r, g in enumerate(groups, start=1):
        ws.write_string(r, 0, str(g.get("title") or g.get("key")))
        ws.write_string(r, 1, str(g.get("key")))
        values = dict(flat_figures(g, nested=False))
        for c, path in enumerate(paths, start=2):
            b.number(ws, r, c, values.get(path), _kind(path))
    ws.autofilter(0, 0, len(groups), len(header) - 1)
    return paths


def _daily(b: _Book, daily: list[dict[str, Any]]) -> list[str]:
    paths = _columns(daily, nested=False)
    ws = b.sheet("Dagligt", ["Dato"] + [_label(p) for p in paths], [12] + [13] * len(paths))
    ws.set_row(0, 45)
    for r, d in enumerate(daily, start=1):
        day = date.fromisoformat(d["date"])
        ws.write_datetime(r, 0, datetime.combine(day, time(0)), b.formats["date"])
        values = dict(flat_figures(d, nested=False))
        for c, path in enumerate(paths, start=1):
            b.number(ws, r, c, values.get(path), _kind(path))
    return paths


def _distribution(b: _Book, distribution: dict[str, Any]) -> None:
    header = ["Ventetid", "Fra (s)", "Til (s)", "Besvarede", "Opgivne"]
    ws = b.sheet("Ventetider", header, [14, 10, 10, 12, 12])
    edges = list(distribution.get("edges_seconds") or [])
    answered = distribution.get("answered") or []
    abandoned = distribution.get("abandoned") or []
    for i, label in enumerate(band_labels(edges)):
        r = i + 1
        ws.write_string(r, 0, label)
        b.number(ws, r, 1, 0 if i == 0 else edges[i - 1], "count")
        b.number(ws, r, 2, edges[i] if i < len(edges) else None, "count")
        b.number(ws, r, 3, answered[i] if i < len(answered) else None, "count")
        b.number(ws, r, 4, abandoned[i] if i < len(abandoned) else None, "count")


def _quality(b: _Book, quality: dict[str, Any]) -> None:
    """What the data gaps may have hidden. Not how this rendering read its days
    (``days_from_rollup``, ``days_recomputed``): that changes between two runs over the
    same data, and the same data must give the same bytes."""
    ws = b.sheet("Datakvalitet", ["Emne", "Værdi", "Nøgle"], [44, 60, 28])
    r = 0
    for path in (*DATA_QUALITY_LABELS, "share_touched"):
        if path not in quality:
            continue
        r += 1
        ws.write_string(r, 0, DATA_QUALITY_LABELS.get(path, "Andel opkald berørt af huller"))
        b.number(ws, r, 1, quality[path], "share" if path == "share_touched" else "count")
        ws.write_string(r, 2, path)
    for key in ("figures_affected", "notes"):
        for text in quality.get(key) or []:
            r += 1
            ws.write_string(r, 0, "Påvirket nøgletal" if key == "figures_affected" else "Note")
            ws.write_string(r, 1, str(text))
            ws.write_string(r, 2, key)


def _fields(b: _Book, paths: Iterable[str]) -> None:
    ws = b.sheet("Felter", ["Kolonne", "Nøgle (JSON)", "Enhed"], [36, 36, 24])
    units = {"count": "antal", "share": "andel (0-1)", "seconds": "sekunder",
             "score": "skala 1-9", "number": "tal"}  # fmt: skip
    for r, path in enumerate(dict.fromkeys(paths), start=1):
        ws.write_string(r, 0, _label(path))
        ws.write_string(r, 1, path)
        ws.write_string(r, 2, units[_kind(path)])


def render_xlsx(report: dict[str, Any]) -> bytes:
    start, end = date.fromisoformat(report["from"]), date.fromisoformat(report["to"])
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    period = str(report.get("title") or f"{start.isoformat()} – {end.isoformat()}")
    book.set_properties(
        {
            "title": f"{TITLE} – {period}",
            "subject": f"{danish.long_date(start)} – {danish.long_date(end)}",
            "author": ORGANISATION,
            "company": "Jobcenter København",
            "comments": "Lavet af acd",
            # The period's last day, not the time of rendering: the same bytes each run.
            "created": datetime.combine(end, time(0)),
        }
    )
    b = _Book(book)
    centre = report.get("centre") or {}
    _goals(b, centre.get("goals") or {})
    paths = _figures(b, centre)
    by = str(report.get("by") or "centre")
    if by != "centre" and report.get("groups"):
        paths += _groups(b, by, report["groups"])
    if report.get("daily"):
        paths += _daily(b, report["daily"])
    if report.get("wait_distribution"):
        _distribution(b, report["wait_distribution"])
    _quality(b, report.get("data_quality") or {})
    _fields(b, paths)
    book.close()
    return buffer.getvalue()
