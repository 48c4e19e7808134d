"""The documents a manager and an analyst read: HTML, PDF and XLSX of a report, registered
with the render registry (``app.reports.render``) when it loads its plugins.

Each renderer works on the report's JSON (the model dumped by alias, as the API serves
it), so the documents show exactly what ``format=json`` says.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.reports.documents.html import MEDIA_TYPE as HTML
from app.reports.documents.html import render_html
from app.reports.documents.pdf import MEDIA_TYPE as PDF
from app.reports.documents.pdf import render_pdf
from app.reports.documents.xlsx import MEDIA_TYPE as XLSX
from app.reports.documents.xlsx import render_xlsx
from app.reports.model import Report
from app.reports.render import register


def _on_json(render: Callable[[dict[str, Any]], bytes]) -> Callable[[Report], bytes]:
    def renderer(report: Report) -> bytes:
        return render(report.model_dump(mode="json", by_alias=True))

    renderer.__name__ = render.__name__
    return renderer


register("html", HTML, _on_json(render_html))
register("pdf", PDF, _on_json(render_pdf))
register("xlsx", XLSX, _on_json(render_xlsx))
