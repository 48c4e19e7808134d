"""The HTML report in a real browser (Debian's headless Chromium): it renders without a
console error and without fetching anything, the goals table is there with its verdicts,
and printed (Chromium's own print to PDF, as a manager's "Print" would) the goals are on
page one and the departments on a later page."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdf
import pytest

from app.reports.documents import danish
from app.reports.documents.html import render_html
from tests.browser_support import headless_chromium, requested_urls
from tests.report_docs_support import quarter_report


@pytest.fixture
def browser() -> Iterator[Any]:
    with headless_chromium(log_network=True) as driver:
        yield driver


@pytest.mark.slow
def test_the_html_report_in_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.print_page_options import PrintOptions

    report = quarter_report()
    page = tmp_path / "rapport.html"
    page.write_bytes(render_html(report))
    requested_urls(browser)  # what the browser loaded of its own before the page
    browser.get(page.as_uri())

    assert browser.title == "Opfølgning på servicemål · 4. kvartal 2014"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []  # console errors and failed loads are SEVERE entries
    # inline CSS and SVG: the page itself is the one request
    assert requested_urls(browser) == [page.as_uri()]
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert fetched == []

    goals = report["centre"]["goals"]["aftale_2013"]["goals"]
    rows = browser.find_elements(By.CSS_SELECTOR, "table#goals tbody tr")
    assert len(rows) == len(goals)
    for row, goal in zip(rows, goals.values(), strict=True):
        cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        assert cells[0] == goal["title"]
        assert cells[3] == danish.STATUS_LABELS[goal["status"]]
        colour = row.find_elements(By.TAG_NAME, "td")[3].value_of_css_property("color")
        assert colour != "rgba(26, 26, 26, 1)", colour  # a verdict is coloured, not body ink
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    assert len(charts) == len(goals) + 1
    assert all(c.size["width"] > 500 and c.size["height"] > 150 for c in charts)
    groups = [
        r.text
        for r in browser.find_elements(
            By.CSS_SELECTOR, "table#groups tbody th, table#groups tbody td:first-child"
        )
    ]
    assert groups == [g["title"] for g in report["groups"]]

    printed = base64.b64decode(browser.print_page(PrintOptions()))
    pages = [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(printed)).pages]
    one = re.sub(r"\s+", " ", pages[0])
    assert "Servicemål: Serviceaftale 2013" in one and "Nøgletal for hele centret" in one
    later = re.sub(r"\s+", " ", " ".join(pages[1:]))
    assert "Pr. afdeling" in later and "Pr. afdeling" not in pages[0]
    assert "Jobcenter Nørrebro og Bispebjerg" in later
