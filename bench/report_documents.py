"""How long the documents of a report take to render: a quarter by department (92 days,
the departments of goals.yaml), as the quarterly report is made when the quarter ends,
and a week for comparison.

    python bench/report_documents.py [--repeat 3]

The report is the report code's own sample week (tests/fixtures/reports), repeated over
the quarter's days (tests/report_docs_support.py): the documents' cost depends on the
number of days, groups and goals, not on the calls behind them (the report is summed
first; bench/reports.py times that). Prints the best CPU time of ``--repeat`` runs per
format, and what the charts cost of it. CPU only, no database, no network.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.reports.documents.charts import report_charts
from app.reports.documents.html import render_html
from app.reports.documents.layout import document, primary_goals
from app.reports.documents.pdf import pdf_of, render_pdf
from app.reports.documents.xlsx import render_xlsx
from app.reports.model import Report
from app.reports.render import render_csv
from tests.report_docs_support import quarter_report, week_report


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best CPU time of ``repeat`` runs (process time: on a shared box the wall time
    mostly says how busy the neighbours were)."""
    times, out = [], None
    for _ in range(repeat):
        start = time.process_time()
        out = fn()
        times.append(time.process_time() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    render_pdf(week_report())  # fonts registered, modules warm
    for name, report in (("quarter", quarter_report()), ("week", week_report())):
        model = Report.model_validate(report)
        goals = primary_goals(report["centre"]["goals"])
        rows = {
            "pdf": lambda r=report: render_pdf(r),
            "html": lambda r=report: render_html(r),
            "xlsx": lambda r=report: render_xlsx(r),
            "csv": lambda m=model: render_csv(m),
            "charts": lambda r=report, g=goals: report_charts(
                g, r["daily"], r["wait_distribution"]
            ),
        }
        figures: dict[str, float] = {}
        sizes: dict[str, int] = {}
        for fmt, fn in rows.items():
            seconds, out = best(fn, args.repeat)
            figures[fmt] = seconds
            if isinstance(out, bytes):
                sizes[fmt] = len(out)
        doc = document(report)
        figures["pdf_layout"], _ = best(lambda d=doc: pdf_of(d), args.repeat)
        n_charts = len(doc.charts)
        print(
            f"{name}: {len(report['daily'])} days, {len(report['groups'])} groups, "
            f"{n_charts} charts"
        )
        for fmt in ("pdf", "html", "xlsx", "csv"):
            print(f"  {fmt:5s} {figures[fmt] * 1000:7.0f} ms  {sizes[fmt] / 1024:6.0f} KiB")
        print(
            f"  of which charts {figures['charts'] * 1000:.0f} ms "
            f"({figures['charts'] / n_charts * 1000:.0f} ms a chart, drawn for the PDF and "
            f"the HTML each); PDF without drawing them {figures['pdf_layout'] * 1000:.0f} ms"
        )
        total = figures["pdf"] + figures["html"] + figures["xlsx"] + figures["csv"]
        print(
            f"  all four documents {total:.2f} s; pdf/xlsx {figures['pdf'] / figures['xlsx']:.0f}x"
        )
    print(
        f"(CPU seconds, best of {args.repeat}; load average {statistics.fmean(_load()):.1f}: "
        "a shared box)"
    )


def _load() -> list[float]:
    import os

    return list(os.getloadavg())


if __name__ == "__main__":
    main()
