"""The documents a manager and an analyst read (app/reports/documents): each format opened
and read back with a library that did not write it (pypdf for the PDF, openpyxl for the
XLSX), Danish throughout, and the same bytes for the same report."""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

import openpyxl
import pypdf
import pytest

from app.reports.documents import danish
from app.reports.documents.charts import band_labels, report_charts
from app.reports.documents.html import render_html
from app.reports.documents.layout import document, primary_goals
from app.reports.documents.pdf import render_pdf
from app.reports.documents.xlsx import render_xlsx
from app.reports.model import Report
from app.reports.render import render
from tests.report_docs_support import checked, quarter_report, week_report


@pytest.fixture(scope="module")
def quarter() -> dict[str, Any]:
    return quarter_report()


@pytest.fixture(scope="module")
def quarter_pdf(quarter: dict[str, Any]) -> bytes:
    return render_pdf(quarter)


def _text(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# ---- Danish forms --------------------------------------------------------------------


def test_numbers_take_the_danish_forms() -> None:
    assert danish.number(1234567.891, 1) == "1.234.567,9"
    assert danish.share(0.9234) == "92,3 %"
    assert danish.share(None) == "–"
    assert danish.seconds(42.4) == "42 s"
    assert danish.seconds(134.4) == "134 s (2:14 min)"
    assert danish.figure("seconds", 134.4, compact=True) == "134 s"
    assert danish.score(6.55) == "6,5" or danish.score(6.55) == "6,6"  # binary float
    assert danish.target("share", "at_least", 0.92) == "≥ 92,0 %"
    assert danish.target("seconds", "at_most", 150) == "≤ 150 s"
    assert danish.target("score", "above", 6.5) == "> 6,5"
    assert danish.change("share", 0.012) == "+1,2 pp."
    assert danish.change("seconds", -14.2) == "−14 s"
    assert danish.change("score", 0.0) == "±0,0"
    assert danish.change("share", None) == "–"


def test_wait_bands_are_named_from_the_edges() -> None:
    assert band_labels([30, 60, 600]) == ["0-30 s", "30-60 s", "60-600 s", "> 600 s"]


# ---- PDF -----------------------------------------------------------------------------


def test_the_pdf_has_the_goals_table_on_page_one(
    quarter: dict[str, Any], quarter_pdf: bytes
) -> None:
    pages = _text(quarter_pdf)
    one = _flat(pages[0])
    assert "Opfølgning på servicemål" in one  # æøå extract as themselves
    assert "4. kvartal 2014" in one
    assert "1. oktober 2014 – 31. december 2014" in one
    assert "Servicemål: Serviceaftale 2013" in one
    goals = quarter["centre"]["goals"]["aftale_2013"]["goals"]
    for goal in goals.values():
        assert goal["title"].split(" ")[0] in one, goal["title"]
    assert "≤ 150 s" in one and "≥ 92,0 % (ambition ≥ 95,0 %)" in one and "> 6,5" in one
    wait = goals["avg_wait_seconds"]
    assert f"{danish.number(wait['value'], 0)} s" in one
    verdicts = {danish.STATUS_LABELS[g["status"]] for g in goals.values()}
    assert all(v in one for v in verdicts), verdicts
    answer_rate = danish.share(quarter["centre"]["answer_rate"])
    assert answer_rate in one and "," in answer_rate  # the decimal comma
    assert "Kommunens kontaktcenter, mål 2009 (til sammenligning)" in one
    assert "Servicemål: Erhvervshuset, særskilt aftale" in one
    quality = _flat(" ".join(pages[:2]))
    assert "Datakvalitet" in quality and "Opkald berørt af huller: 1" in quality
    assert "Påvirkede nøgletal: Opgivelsesprocent, Opgivne i kø" in quality  # Danish names
    # The per-department table, with every department's name
    rest = _flat(" ".join(pages[1:]))
    for group in quarter["groups"]:
        assert group["title"] in rest, group["title"]
    assert "Tilfredshedsundersøgelsen" in rest and "Straksafklaret" in rest
    assert re.search(r"Side 1 af \d", one)
    # The charts' words are text in the embedded font, Danish letters included
    assert "Tilgængelighed pr. dag" in rest and "Fordeling af ventetider" in rest
    assert "Mål ≥ 92,0 %" in rest and "Ambition ≥ 95,0 %" in rest


def test_the_pdf_embeds_its_fonts_and_dates_itself_from_the_period(quarter_pdf: bytes) -> None:
    reader = pypdf.PdfReader(io.BytesIO(quarter_pdf))
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"].startswith("D:20141231")
    assert reader.metadata["/Title"] == "Opfølgning på servicemål – 4. kvartal 2014"
    fonts = [f for page in reader.pages for f in page["/Resources"]["/Font"].values()]
    embedded = []
    for ref in fonts:
        font = ref.get_object()
        descendant = (
            font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
        )
        descriptor = descendant["/FontDescriptor"].get_object()
        embedded.append(("/FontFile2" in descriptor, str(descendant["/BaseFont"])))
    assert embedded and all(ok for ok, _ in embedded), embedded
    assert all("DejaVuSans" in name for _, name in embedded), embedded


def test_the_pdf_draws_a_chart_per_goal_as_vectors(quarter: dict[str, Any]) -> None:
    goals = primary_goals(quarter["centre"]["goals"])
    charts = report_charts(goals, quarter["daily"], quarter["wait_distribution"])
    assert [c.key for c in charts] == [*goals, "wait_distribution"]
    for chart in charts:
        assert chart.svg.startswith("<svg") and "<image" not in chart.svg  # no raster


def test_the_same_report_gives_the_same_bytes(quarter: dict[str, Any], quarter_pdf: bytes) -> None:
    assert render_pdf(quarter) == quarter_pdf
    assert render_xlsx(quarter) == render_xlsx(quarter)
    week = week_report()
    assert render_html(week) == render_html(week)


def test_other_data_gives_other_bytes() -> None:
    """The determinism test above would pass for a renderer that ignored its input."""
    week = week_report()
    changed = week_report()
    changed["centre"]["offered"] += 1
    assert render_pdf(changed) != render_pdf(week)
    assert render_xlsx(changed) != render_xlsx(week)
    assert render_html(changed) != render_html(week)


# ---- XLSX ----------------------------------------------------------------------------


def test_the_xlsx_reads_back_with_numbers_as_numbers(quarter: dict[str, Any]) -> None:
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(quarter)))
    assert book.sheetnames == [
        "Mål", "Centret", "Pr. afdeling", "Dagligt", "Ventetider", "Datakvalitet", "Felter",
    ]  # fmt: skip
    assert book.properties.created == datetime(2014, 12, 31)
    assert book.properties.title == "Opfølgning på servicemål – 4. kvartal 2014"

    goals = list(book["Mål"].iter_rows(min_row=2, values_only=True))
    # every agreement's goals, the unmeasured one too (an analyst wants the rows)
    expected = [
        (a["title"], metric, goal)
        for a in quarter["centre"]["goals"].values()
        for metric, goal in a["goals"].items()
    ]
    assert len(goals) == len(expected)
    for row, (agreement, metric, goal) in zip(goals, expected, strict=True):
        assert row[0] == agreement and row[12] == metric
        assert row[3] == goal["target"] and row[6] == pytest.approx(goal["value"])
        assert row[9] == pytest.approx(goal["previous"]["change"])
        assert row[7] == danish.STATUS_LABELS[goal["status"]]
    assert book["Mål"]["B2"].value == "Gennemsnitlig ventetid"
    assert book["Mål"]["G2"].number_format == "0.0"  # seconds
    assert book["Mål"]["G3"].number_format == "0.0%"  # a share

    centre = {r[2]: r[1] for r in book["Centret"].iter_rows(min_row=2, values_only=True)}
    assert centre["offered"] == quarter["centre"]["offered"]
    assert centre["answer_rate"] == pytest.approx(quarter["centre"]["answer_rate"])
    levels = {f"{sl['threshold_seconds']:g}": sl for sl in quarter["centre"]["service_levels"]}
    assert centre["service_levels.180.of_answered"] == pytest.approx(levels["180"]["of_answered"])
    assert centre["survey.settled.overall.mean"] == pytest.approx(
        quarter["centre"]["survey"]["settled"]["overall"]["mean"]
    )

    sheet = book["Pr. afdeling"]
    header = [c.value for c in sheet[1]]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == [g["title"] for g in quarter["groups"]]
    col = header.index("Tilgængelighed")
    assert [r[col] for r in rows] == pytest.approx([g["answer_rate"] for g in quarter["groups"]])

    days = list(book["Dagligt"].iter_rows(min_row=2, values_only=True))
    assert len(days) == 92 and days[0][0] == datetime(2014, 10, 1)
    bands = list(book["Ventetider"].iter_rows(min_row=2, values_only=True))
    assert [b[3] for b in bands] == quarter["wait_distribution"]["answered"]
    last = quarter["wait_distribution"]["edges_seconds"][-1]
    assert bands[-1][0] == f"> {danish.number(last)} s" and bands[-1][2] is None


# ---- HTML ----------------------------------------------------------------------------


def test_the_html_asks_no_server_for_anything(quarter: dict[str, Any]) -> None:
    html = render_html(quarter).decode("utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<html lang="da">' in html
    assert "@media print" in html and "@page" in html
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert not re.search(r"url\((?!#)|@import", html)  # url(#id): a clip path in the page
    # the only URLs are XML namespace names, which nothing fetches
    urls = set(re.findall(r"https?://[^\s\"')]+", html))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert html.count("<svg") == len(primary_goals(quarter["centre"]["goals"])) + 1


def test_titles_from_configuration_are_escaped() -> None:
    report = week_report()
    report["groups"][0]["title"] = "<b>Kontant & hjælp</b>"
    html = render_html(report).decode("utf-8")
    assert "&lt;b&gt;Kontant &amp; hjælp&lt;/b&gt;" in html
    assert "Kontant & hjælp" in _flat(" ".join(_text(render_pdf(report))[1:]))


# ---- an empty period -----------------------------------------------------------------


def test_a_period_without_calls_still_renders_every_format() -> None:
    report = week_report()
    for goal in (g for a in report["centre"]["goals"].values() for g in a["goals"].values()):
        goal.update(value=None, status="no_data")
        goal["previous"] = goal["last_year"] = {"value": None, "change": None}
    for day in report["daily"]:
        for name in ("answer_rate", "avg_wait_seconds", "first_contact_resolution",
                     "satisfaction", "service_level"):  # fmt: skip
            day[name] = None
    n = len(report["wait_distribution"]["answered"])
    report["wait_distribution"].update(answered=[0] * n, abandoned=[0] * n)
    report = checked(report)
    doc = document(report)
    assert doc.charts == ()  # nothing to draw: no empty chart
    assert len(doc.goals) == 3  # nothing measured anywhere: every agreement says so
    one = _flat(_text(render_pdf(report))[0])
    assert "Ingen data" in one
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))
    assert book["Mål"]["H2"].value == "Ingen data"
    assert "Ingen data" in render_html(report).decode("utf-8")


def test_an_agreement_with_nothing_measured_is_named_not_tabled() -> None:
    report = week_report()
    for goal in report["centre"]["goals"]["erhvervshuset"]["goals"].values():
        goal.update(value=None, status="no_data")
    doc = document(checked(report), charts=False)
    assert [t.caption for t in doc.goals] == [
        "Servicemål: Serviceaftale 2013",
        "Kommunens kontaktcenter, mål 2009 (til sammenligning)",
    ]
    assert "Ingen opkald at måle for: Erhvervshuset, særskilt aftale." in doc.notes


# ---- through the render registry, on the model ---------------------------------------


def test_the_registry_renders_each_document_from_the_model() -> None:
    model = Report.model_validate(week_report())
    pdf, media = render(model, "pdf")
    assert media == "application/pdf" and pdf.startswith(b"%PDF-")
    assert "Servicemål: Serviceaftale 2013" in _flat(_text(pdf)[0])
    xlsx, media = render(model, "xlsx")
    assert media == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert openpyxl.load_workbook(io.BytesIO(xlsx))["Centret"]["B2"].value == model.centre.calls
    html, media = render(model, "html")
    assert media == "text/html; charset=utf-8" and "Uge 45 2014" in html.decode("utf-8")
