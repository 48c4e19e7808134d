"""One report, many formats: ``render(report, fmt) -> (bytes, media type)``.

Every output goes through this one registry: ``GET /v1/reports?format=``, ``acd report
--format`` and the scheduled production. JSON and CSV live here; the documents a manager
reads (``html``, ``pdf``, ``xlsx``) register themselves with ``register`` from their own
module (app/reports/documents), imported by ``load_renderers``.
"""

from __future__ import annotations

import csv
import importlib
import io
from collections.abc import Callable
from typing import Any, Literal

from app.reports.model import Figures, Report

Format = Literal["json", "csv", "xlsx", "html", "pdf"]
FORMATS: tuple[Format, ...] = ("json", "csv", "xlsx", "html", "pdf")
Renderer = Callable[[Report], bytes]

_RENDERERS: dict[str, tuple[Renderer, str]] = {}
# Modules that register more formats when imported (absent ones are skipped).
PLUGINS = ("app.reports.documents",)


class FormatUnavailable(LookupError):
    """The format is known but nothing renders it in this installation."""


def register(fmt: Format, media_type: str, renderer: Renderer) -> None:
    _RENDERERS[fmt] = (renderer, media_type)


def load_renderers() -> None:
    for name in PLUGINS:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise


def available() -> tuple[str, ...]:
    load_renderers()
    return tuple(f for f in FORMATS if f in _RENDERERS)


def render(report: Report, fmt: str) -> tuple[bytes, str]:
    load_renderers()
    entry = _RENDERERS.get(fmt)
    if entry is None:
        if fmt in FORMATS:
            raise FormatUnavailable(f"format {fmt!r} is not available in this installation")
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    renderer, media_type = entry
    return renderer(report), media_type


def extension(fmt: str) -> str:
    return fmt


# --------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------


def render_json(report: Report) -> bytes:
    return report.to_json()


# --------------------------------------------------------------------------------------
# CSV: one row per group (the centre last), every scalar figure a column
# --------------------------------------------------------------------------------------

# Columns: the scalar figures, in the model's order; the nested ones (the service-level
# table, the survey) flattened to their most asked-for values.
SCALAR_FIGURES: tuple[str, ...] = tuple(
    name
    for name, info in Figures.model_fields.items()
    if info.annotation in (int, float, float | None, int | None)
)


def _flat(fig: Figures) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(fig, name) for name in SCALAR_FIGURES}
    for sl in fig.service_levels:
        t = f"{sl.threshold_seconds:g}"
        row[f"sl_{t}s_of_answered"] = sl.of_answered
        row[f"sl_{t}s_of_offered"] = sl.of_offered
        row[f"sl_{t}s_sl2"] = sl.sl2
    for split in ("all", "settled", "transferred"):
        group = getattr(fig.survey, split)
        for q in ("friendliness", "wait", "overall"):
            stats = getattr(group, q)
            row[f"survey_{split}_{q}_n"] = stats.n
            row[f"survey_{split}_{q}_mean"] = stats.mean
            row[f"survey_{split}_{q}_ci95_low"] = stats.ci95_low
            row[f"survey_{split}_{q}_ci95_high"] = stats.ci95_high
    return row


def _cell(value: Any) -> Any:
    # Empty, not "None", for a figure with nothing to measure; "." decimals, as analysts'
    # tools read them.
    return "" if value is None else value


def render_csv(report: Report) -> bytes:
    """Rows: each group of the report (``by``), then ``centre``; columns: ``key``,
    ``title``, then every figure (nested ones flattened, e.g. ``sl_180s_of_answered``)."""
    rows: list[tuple[str, str, dict[str, Any]]] = [
        (g.key, g.title, _flat(g)) for g in report.groups
    ]
    rows.append(("centre", "Hele centret", _flat(report.centre)))
    columns: list[str] = []
    for _, _, row in rows:
        for name in row:
            if name not in columns:
                columns.append(name)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["from", "to", "by", "key", "title", *columns])
    for key, title, row in rows:
        writer.writerow(
            [
                report.from_.isoformat(),
                report.to.isoformat(),
                report.by,
                key,
                title,
                *(_cell(row.get(c)) for c in columns),
            ]
        )
    # UTF-8 with a byte-order mark: spreadsheet programs then read æ, ø, å right.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


register("json", "application/json", render_json)
register("csv", "text/csv; charset=utf-8", render_csv)
