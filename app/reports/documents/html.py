"""The report as one printable HTML file (Jinja2 template ``templates/report.html.j2``):
CSS and charts inline, so it opens offline and asks no server for anything; print CSS
puts the goals on page one and each later section on a page of its own."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

import app.reports.documents.danish as danish
from app.reports.documents.layout import ORGANISATION, Document, document

TEMPLATES = Path(__file__).parent / "templates"
MEDIA_TYPE = "text/html; charset=utf-8"


@cache
def _template() -> Template:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,  # titles come from configuration files: escape them
        undefined=StrictUndefined,  # a misspelt name fails the render, not the reader
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2")


def html_of(doc: Document) -> str:
    return _template().render(
        doc=doc,
        organisation=ORGANISATION,
        by_label=danish.BY_LABELS.get(doc.by, doc.by).lower(),
    )


def render_html(report: dict[str, Any]) -> bytes:
    return html_of(document(report)).encode("utf-8")
