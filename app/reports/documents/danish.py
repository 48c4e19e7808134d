"""The words and number forms a manager reads in a report, in Danish: one place for the
labels, the goal verdicts and the decimal comma, shared by the HTML, PDF and XLSX
documents (so the three say the same thing the same way).

Pure: no I/O, no clock. Numbers are formatted by hand rather than through ``locale``
because the process locale is global, usually ``C`` in a container, and not ours to set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from app.acd.calendar import MONTH_NAMES

Kind = Literal["count", "share", "seconds", "score", "number"]


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure of a report as the documents show it."""

    key: str  # the JSON name (as in /v1/queues "today")
    label: str  # Danish, as the manager reads it
    kind: Kind
    short: str = ""  # a column header in a table of many figures, when the label is long

    @property
    def header(self) -> str:
        return self.short or self.label


# The figures the documents show, in the order a manager reads them (names as in the
# report's JSON, docs/kpis.md). The JSON holds more (an analyst finds every one in the
# XLSX); a printed page shows only what is named here, so no English key reaches it.
FIGURES: tuple[Figure, ...] = (
    Figure("calls", "Opkald til linjen", "count"),
    Figure("closed", "Uden for åbningstid", "count"),
    Figure("forwarded", "Sendt direkte videre (JKA 9-10)", "count"),
    Figure("ivr_hangup", "Lagt på i menuen", "count"),
    Figure("offered", "Tilbudt i kø", "count", "Tilbudt"),
    Figure("answered", "Besvarede", "count", "Besvaret"),
    Figure("abandoned", "Opgivne i kø", "count", "Opgivet"),
    Figure("short_abandoned", "Heraf korte opgivelser", "count"),
    Figure("timeout", "Maks. ventetid nået", "count"),
    Figure("answer_rate", "Tilgængelighed", "share", "Tilgænge\u00adlighed"),
    Figure("answer_rate_raw", "Besvarelsesprocent (rå)", "share"),
    Figure("avg_wait_seconds", "Gns. ventetid", "seconds", "Gns. vente\u00adtid"),
    Figure("asa_seconds", "Gns. svartid (ASA)", "seconds"),
    Figure("max_wait_seconds", "Længste ventetid", "seconds"),
    Figure("service_level", "Besvaret inden for 3 min", "share", "Inden for 3 min"),
    Figure("avg_talk_seconds", "Gns. samtaletid", "seconds"),
    Figure("avg_handle_seconds", "Gns. behandlingstid", "seconds"),
    Figure("transferred_to_queue", "Viderestillet til anden kø", "count"),
    Figure("transferred_external", "Viderestillet til andre enheder", "count"),
    Figure("registration_share", "Andel registrerede samtaler", "share"),
    Figure("first_contact_resolution", "Straksafklaring", "share", "Straks\u00adafklaring"),
    Figure("first_contact_resolution_repeat", "Straksafklaring (genopkald)", "share"),
    Figure("survey_responses", "Besvarede undersøgelser", "count"),
    Figure("survey_response_rate", "Svarprocent, undersøgelse", "share"),
    Figure("satisfaction", "Tilfredshed (1-9)", "score", "Tilfreds\u00adhed"),
    Figure("tasks_requested", "Beskeder og ønsker om opringning", "count"),
    Figure("tasks_in_time_share", "Besvaret inden for 2 arbejdsdage", "share"),
    Figure("tasks_overdue", "Overskredne opgaver", "count"),
    Figure("data_gap_calls", "Opkald berørt af huller i data", "count"),
)
FIGURE_BY_KEY = {f.key: f for f in FIGURES}
# The rest of the report's figures: not on the printed pages, but named in Danish where a
# manager or an analyst meets them (the data-quality notes, the XLSX's columns).
OTHER_LABELS = {
    "failed": "Kunne ikke stilles igennem",
    "empty": "Forladt kø uden agenter",
    "transferred": "Flyttet til anden kø under ventetid",
    "answered_within_sl": "Besvaret inden for 3 min (antal)",
    "abandoned_within_sl": "Opgivet inden for 3 min (antal)",
    "abandoned_after_sl": "Opgivet efter 3 min (antal)",
    "abandon_rate": "Opgivelsesprocent",
    "service_level_offered": "Besvaret inden for 3 min af tilbudte",
    "service_level_sl2": "Serviceniveau SL2",
    "service_level_abandons": "Besvaret inden for 3 min af besvarede og sent opgivne",
    "talked": "Samtaler",
    "ewt_samples": "Ventetidsskøn målt",
    "ewt_mean_error_seconds": "Ventetidsskøn, gns. fejl",
    "ewt_mean_abs_error_seconds": "Ventetidsskøn, gns. absolut fejl",
    "transfers_received": "Modtaget ved viderestilling",
    "registered": "Registrerede samtaler",
    "registered_resolved": "Registreret afklaret",
    "registered_transferred": "Registreret viderestillet",
    "repeat_base": "Besvarede fra kendte opkaldere",
    "repeat_callers": "Heraf ringet igen",
    "survey_invited": "Inviteret til undersøgelse",
    "survey_completed": "Gennemførte undersøgelser",
    "callbacks_requested": "Ønsker om opringning",
    "messages_requested": "Beskeder",
    "tasks_returned": "Opgaver besvaret",
    "tasks_returned_in_time": "Opgaver besvaret inden for 2 arbejdsdage",
    "tasks_failed": "Opgaver opgivet",
    "tasks_cancelled": "Opgaver annulleret",
}


def label(key: str) -> str:
    """A figure's Danish name (its JSON name where it has none)."""
    known = FIGURE_BY_KEY.get(key)
    return known.label if known is not None else OTHER_LABELS.get(key, key)


# Short names of the goals' figures, for chart titles (the goals file's own titles, which
# the goals table shows, may be long).
GOAL_LABELS = {
    "answer_rate": "Tilgængelighed",
    "avg_wait_seconds": "Gns. ventetid",
    "first_contact_resolution": "Straksafklaring",
    "satisfaction": "Tilfredshed",
    "service_level": "Besvaret inden for 3 min",
    "tasks_in_time_share": "Besvaret inden for 2 arbejdsdage",
}
STATUS_LABELS: dict[str | None, str] = {
    "met": "Opfyldt",
    "at_risk": "I fare",
    "missed": "Ikke opfyldt",
    "no_data": "Ingen data",
    None: "Ingen data",
}
SURVEY_QUESTIONS = {
    "friendliness": "Imødekommenhed",
    "wait": "Ventetid",
    "overall": "Tilfredshed",
}
SURVEY_SPLITS = {"all": "Alle", "settled": "Straksafklaret", "transferred": "Viderestillet"}
DIRECTION_SIGNS = {"at_least": "≥", "above": ">", "at_most": "≤", "below": "<"}

BY_LABELS = {
    "centre": "Centret",
    "department": "Afdeling",
    "queue": "Kø",
    "agent": "Medarbejder",
    "day": "Dag",
    "week": "Uge",
    "month": "Måned",
    "quarter": "Kvartal",
    "weekday": "Ugedag",
    "halfhour": "Halvtime",
    "pbx": "Telefonanlæg",
}
NO_VALUE = "–"


def number(value: float, decimals: int = 0) -> str:
    """1234567.891 -> '1.234.567,9' (Danish: thousands with '.', decimals with ',')."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def count(value: Any) -> str:
    return NO_VALUE if _missing(value) else number(value, 0)


def share(value: Any, decimals: int = 1) -> str:
    """0.9234 -> '92,3 %' (Danish puts a space before the per cent sign)."""
    return NO_VALUE if _missing(value) else f"{number(100 * value, decimals)} %"


def seconds(value: Any) -> str:
    """134.4 -> '134 s'; at a minute or more the minutes beside it: '134 s (2:14 min)'."""
    if _missing(value):
        return NO_VALUE
    whole = round(value)
    if whole < 60:
        return f"{number(value, 0)} s"
    return f"{number(whole, 0)} s ({whole // 60}:{whole % 60:02d} min)"


def score(value: Any) -> str:
    return NO_VALUE if _missing(value) else number(value, 1)


def figure(kind: Kind, value: Any, *, compact: bool = False) -> str:
    """``compact``: a wait without its minutes (a narrow table column)."""
    if kind == "seconds" and compact and not _missing(value):
        return f"{number(value, 0)} s"
    if kind == "count":
        return count(value)
    if kind == "share":
        return share(value)
    if kind == "seconds":
        return seconds(value)
    if kind == "score":
        return score(value)
    return NO_VALUE if _missing(value) else number(value, 2)


def unit_kind(unit: str | None) -> Kind:
    """A goal's unit (``share``, ``seconds``, ``score``) as a kind of figure."""
    return unit if unit in ("share", "seconds", "score") else "number"  # type: ignore[return-value]


def target(kind: Kind, direction: str | None, value: Any) -> str:
    """A goal as the agreement says it: '≥ 92,0 %', '≤ 150 s', '> 6,5'."""
    shown = figure(kind, value, compact=True)
    sign = DIRECTION_SIGNS.get(direction or "", "")
    return f"{sign} {shown}".strip()


def change(kind: Kind, delta: Any) -> str:
    """A change against another period, signed: '+1,2 pp.', '−14 s', '+0,3'."""
    if _missing(delta):
        return NO_VALUE
    sign = "+" if delta > 0 else ("−" if delta < 0 else "±")
    size = abs(delta)
    if kind == "share":
        return f"{sign}{number(100 * size, 1)} pp."
    if kind == "seconds":
        return f"{sign}{number(size, 0)} s"
    if kind == "count":
        return f"{sign}{number(size, 0)}"
    return f"{sign}{number(size, 1)}"


def long_date(day: date) -> str:
    """'1. oktober 2014'."""
    return f"{day.day}. {MONTH_NAMES[day.month - 1]} {day.year}"


def short_date(day: date) -> str:
    """'01.10' (axis ticks, table rows)."""
    return f"{day.day:02d}.{day.month:02d}"
