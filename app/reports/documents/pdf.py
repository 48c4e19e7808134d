"""The report as a PDF (reportlab's platypus): the goals table and the centre's figures on
page one, a chart per goal and the wait distribution after it, then the per-group table.
The content comes from ``layout.document`` (the same as the HTML); the charts are the
same matplotlib SVGs, turned into reportlab vector drawings by svglib.

Fonts: DejaVu Sans, the TrueType font matplotlib ships, embedded (subset) so that æ, ø, å
print and extract as themselves on any reader (the PDF base-14 fonts would not be
embedded, and their text extraction depends on the reader's encoding tables).

Deterministic bytes: reportlab's ``invariant`` mode fixes the document ID's seed and the
font subset names, and the creation date is the report period's last day (not the time
of rendering), so a re-run of the same period over the same data gives the same file.
"""

from __future__ import annotations

import io
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import matplotlib
from reportlab.graphics.shapes import STATE_DEFAULTS, Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)
from reportlab.platypus import Table as RlTable
from svglib import fonts as svg_fonts
from svglib.svglib import svg2rlg

from app.reports.documents.charts import Chart
from app.reports.documents.layout import ORGANISATION, Document, Table, document

MEDIA_TYPE = "application/pdf"
FONT, BOLD = "DejaVuSans", "DejaVuSans-Bold"
HEAD = colors.HexColor("#1f3b57")
LINE = colors.HexColor("#c8c8c8")
STRIPE = colors.HexColor("#f4f6f8")
STATUS_COLOURS = {
    "met": colors.HexColor("#1e6b35"),
    "at_risk": colors.HexColor("#8a5a00"),
    "missed": colors.HexColor("#b3261e"),
}
MARGIN = 14 * mm


@cache
def _fonts() -> None:
    """Register DejaVu Sans from matplotlib's own copy (a wheel, no system font needed)."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    pdfmetrics.registerFont(TTFont(FONT, str(folder / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(folder / "DejaVuSans-Bold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)
    # A drawing (the charts) starts in the graphics' default font, Helvetica, which would
    # be named unembedded on every chart page; the charts' text is paths, so nothing is
    # drawn in it, but a PDF should name only fonts it carries. (This process draws no
    # other reportlab graphics.)
    STATE_DEFAULTS["fontName"] = FONT
    # The charts' SVG names its font "DejaVu Sans": the same embedded font in the PDF.
    svg_fonts.register_font("DejaVu Sans", rlgFontName=FONT)
    for weight in ("bold", "700"):  # matplotlib writes a title's weight as 700
        svg_fonts.register_font("DejaVu Sans", weight=weight, rlgFontName=BOLD)


def _styles() -> dict[str, ParagraphStyle]:
    base = ParagraphStyle("base", fontName=FONT, fontSize=9.5, leading=12.5, alignment=TA_LEFT)
    return {
        "org": ParagraphStyle("org", base, fontSize=9, textColor=colors.HexColor("#555555")),
        "title": ParagraphStyle("title", base, fontName=BOLD, fontSize=18, leading=22,
                                textColor=HEAD, spaceBefore=2, spaceAfter=2),
        "period": ParagraphStyle("period", base, fontSize=13, leading=17),
        "span": ParagraphStyle("span", base, textColor=colors.HexColor("#555555"),
                               spaceAfter=8),
        "h2": ParagraphStyle("h2", base, fontName=BOLD, fontSize=12.5, leading=16,
                             textColor=HEAD, spaceBefore=10, spaceAfter=4),
        "caption": ParagraphStyle("caption", base, fontName=BOLD, spaceBefore=6, spaceAfter=3),
        "cell": ParagraphStyle("cell", base, fontSize=8.5, leading=10.5),
        "small": ParagraphStyle("small", base, fontSize=8.5, leading=11),
        "note": ParagraphStyle("note", base, fontSize=7.5, leading=9.5, spaceBefore=2,
                               textColor=colors.HexColor("#555555")),
    }  # fmt: skip


def _table(t: Table, width: float, styles: dict[str, ParagraphStyle]) -> list[Flowable]:
    """A table as reportlab flows it: the header row repeats on each page it spans; a
    goal's value and verdict are in the verdict's colour (and in words: the page may be
    printed black and white)."""
    cell = styles["cell"]
    right = ParagraphStyle("cell_r", cell, alignment=2)
    # Long Danish words in narrow headers break at their soft hyphens (danish.Figure.short).
    head = ParagraphStyle(
        "head", cell, fontName=BOLD, textColor=colors.white, embeddedHyphenation=1
    )
    head_r = ParagraphStyle("head_r", head, alignment=2)
    data: list[list[Paragraph]] = [
        [Paragraph(_esc(h), head_r if t.numeric[i] else head) for i, h in enumerate(t.header)]
    ]
    commands: list[tuple[Any, ...]] = [
        ("FONTNAME", (0, 0), (-1, -1), FONT),  # the table's own default is Helvetica
        ("BACKGROUND", (0, 0), (-1, 0), HEAD),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, LINE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.8),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.8),
    ]
    for r, row in enumerate(t.rows, start=1):
        if r % 2 == 0:
            commands.append(("BACKGROUND", (0, r), (-1, r), STRIPE))
        line = []
        for c, value in enumerate(row):
            style = right if t.numeric[c] else cell
            text = _esc(value.text)
            if value.status in STATUS_COLOURS:
                hexcolour = STATUS_COLOURS[value.status].hexval()[2:]
                text = f'<font color="#{hexcolour}"><b>{text}</b></font>'
            line.append(Paragraph(text, style))
        data.append(line)
    n = len(t.header)
    if t.numeric == (False, True, False, True):  # label, value, label, value
        widths = [width * 0.31, width * 0.19] * 2
    elif t.header[:2] == ("Mål", "Målsætning"):  # a goals table: long titles, long aims
        widths = [width * w for w in (0.28, 0.2, 0.11, 0.15, 0.13, 0.13)[:n]]
        widths[-1] += width - sum(widths)
    else:  # the first column names the row; the figures share the rest evenly
        first = width * (0.22 if n > 5 else 0.3)
        widths = [first] + [(width - first) / (n - 1)] * (n - 1)
    table = RlTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle(commands))
    out: list[Flowable] = [Paragraph(_esc(t.caption), styles["caption"]), table]
    if t.note:
        out.append(Paragraph(_esc(t.note), styles["note"]))
    return out


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _drawing(chart: Chart, width: float) -> Drawing:
    drawing = svg2rlg(io.BytesIO(chart.svg.encode("utf-8")))
    if drawing is None:  # svglib gives None for an SVG it cannot read: a bug of ours
        raise ValueError(f"chart {chart.key} could not be converted for the PDF")
    scale = width / drawing.width
    drawing.width, drawing.height = drawing.width * scale, drawing.height * scale
    drawing.scale(scale, scale)
    return drawing


def _story(doc: Document, width: float) -> list[Flowable]:
    s = _styles()
    story: list[Flowable] = [
        Paragraph(_esc(ORGANISATION), s["org"]),
        Paragraph(_esc(doc.title), s["title"]),
        Paragraph(_esc(doc.period), s["period"]),
        Paragraph(_esc(doc.span), s["span"]),
    ]
    for goals in doc.goals:
        story += _table(goals, width, s)
    story += _table(doc.figures, width, s)
    if doc.quality or doc.notes:
        lines: list[Flowable] = [Paragraph("Datakvalitet", s["h2"])]
        lines += [Paragraph(f"{_esc(k)}: {_esc(v)}", s["small"]) for k, v in doc.quality]
        lines += [Paragraph(_esc(note), s["small"]) for note in doc.notes]
        story.append(KeepTogether(lines))  # the heading never alone at a page's foot
    if doc.details:
        story += [PageBreak(), Paragraph("Serviceniveau og tilfredshed", s["h2"])]
        for table in doc.details:
            story += _table(table, width, s)
    if doc.charts:
        story += [PageBreak(), Paragraph("Udvikling i perioden", s["h2"])]
        for chart in doc.charts:
            drawing = _drawing(chart, width)
            story += [CondPageBreak(drawing.height + 6), drawing, Spacer(1, 6)]
    if doc.groups is not None:
        story += [PageBreak(), Paragraph(_esc(doc.groups.caption), s["h2"])]
        story.append(KeepTogether(_table(doc.groups, width, s)[1:]) if len(doc.groups.rows) < 30
                     else _table(doc.groups, width, s)[1])  # fmt: skip
    return story


def _pdf_date(day: date) -> str:
    return f"D:{day.year:04d}{day.month:02d}{day.day:02d}000000+00'00'"


def pdf_of(doc: Document) -> bytes:
    _fonts()
    buffer = io.BytesIO()
    footer = f"{doc.title} · {doc.period} · {ORGANISATION}"

    class NumberedCanvas(Canvas):
        """'Side n af m' needs the page count: pages are kept until the end, then drawn."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.setDateFormatter(lambda *_: _pdf_date(doc.end))
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()  # type: ignore[attr-defined]  # Canvas's own, untyped

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self.setFont(FONT, 7.5)
                self.setFillColor(colors.HexColor("#555555"))
                self.drawString(MARGIN, 8 * mm, footer)
                self.drawRightString(A4[0] - MARGIN, 8 * mm, f"Side {number} af {total}")
                super().showPage()
            super().save()

    template = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=16 * mm,
        title=f"{doc.title} – {doc.period}",
        author="Jobcenter København",
        subject=doc.span,
        creator="acd",
        producer="acd (ReportLab)",
        lang="da",
        invariant=1,
        initialFontName=FONT,  # else each page names Helvetica (not embedded) as it starts
    )
    template.build(_story(doc, template.width), canvasmaker=NumberedCanvas)
    return buffer.getvalue()


def render_pdf(report: dict[str, Any]) -> bytes:
    return pdf_of(document(report))
