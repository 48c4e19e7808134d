"""Prometheus gauges of the live picture, read from the ``LiveStore`` at scrape time.

The same snapshot the REST API and the stream serve, so a scrape agrees with
``GET /v1/queues`` of the same ``acd_live_version``. Queue labels come from the
catalogue only (``_all`` is the whole centre), never from what the PBX or a caller sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.acd.kpi import CENTRE
from app.acd.presence import MEMBER_STATES
from app.live.store import LiveStore

AGENT_STATES = ("logged_in", *MEMBER_STATES)

# Today's figures exported as gauges: field of the "today" dict -> (metric suffix, help).
# A queue counts visits, the centre (queue="_all") calls: docs/kpis.md.
TODAY_FIGURES: dict[str, str] = {
    "offered": "Queue visits (centre: calls) decided today: answered, abandoned, timeout, ...",
    "answered": "Visits answered today",
    "abandoned": "Visits abandoned today (short abandons included)",
    "short_abandoned": "Visits abandoned today within the short-abandon threshold",
    "timeout": "Visits that reached the queue's max wait today",
    "empty": "Visits that left because no agent was left, today",
    "transferred": "Visits moved to another queue while waiting, today",
    "answered_within_sl": "Visits answered within the service-level time today",
    "abandoned_within_sl": "Visits abandoned within the service-level time today",
    "abandoned_after_sl": "Visits abandoned after the service-level time today",
    "answer_rate": "Answered / (offered - short abandons), today",
    "answer_rate_raw": "Answered / offered, today",
    "abandon_rate": "(Abandoned - short) / (offered - short), today",
    "avg_wait_seconds": "Average wait of the visits decided today",
    "asa_seconds": "Average speed of answer (wait of answered visits), today",
    "service_level": "Answered within the service-level time / answered, today",
    "service_level_abandons": "Answered within T / (answered + abandoned after T), today",
    "service_level_offered": "Answered within the service-level time / offered, today",
    "service_level_sl2": "(Answered + abandoned within T) / (answered + abandoned), today (SL2)",
    "avg_talk_seconds": "Average talk time of today's visits whose talk ended",
    "max_wait_seconds": "Longest wait of a visit decided today",
    "talked": "Visits whose talk ended, today",
    "ewt_samples": "Answered visits with an expected wait given at routing, today",
    "ewt_mean_error_seconds": "Mean (actual wait - expected wait at routing), today",
    "ewt_mean_abs_error_seconds": "Mean |actual wait - expected wait at routing|, today",
}


# The intraday projection (app/acd/intraday.py) as gauges: field -> (metric, help).
PROJECTION: dict[str, tuple[str, str]] = {
    "forecast_calls": (
        "acd_forecast_calls_today",
        "Calls the morning forecast expected for the whole of today",
    ),
    "expected_calls": (
        "acd_expected_calls_today",
        "Calls expected today now: so far plus the re-forecast rest of the day",
    ),
    "answer_rate": (
        "acd_projected_answer_rate",
        "Today's answer rate projected to the end of the day (staffed as planned)",
    ),
    "avg_wait_seconds": (
        "acd_projected_avg_wait_seconds",
        "Today's average wait projected to the end of the day (staffed as planned)",
    ),
    "service_level": (
        "acd_projected_service_level",
        "Today's service level projected to the end of the day (staffed as planned)",
    ),
}
GOALS_AT_RISK = ("answer_rate", "avg_wait", "service_level")


class LiveCollector(Collector):
    def __init__(self, store: LiveStore, queues: Callable[[], Sequence[str]]) -> None:
        self.store = store
        self.queues = queues

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families(None))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families(self.store.snapshot))

    def _families(self, snap: dict[str, Any] | None) -> Iterable[GaugeMetricFamily]:
        version = GaugeMetricFamily(
            "acd_live_version", "Version of the live snapshot these gauges come from"
        )
        waiting = GaugeMetricFamily("acd_calls_waiting", "Callers waiting now", labels=["queue"])
        longest = GaugeMetricFamily(
            "acd_longest_wait_seconds",
            "Wait so far of the longest-waiting caller",
            labels=["queue"],
        )
        ewt = GaugeMetricFamily(
            "acd_estimated_wait_seconds", "Expected wait for a caller joining now", labels=["queue"]
        )
        agents = GaugeMetricFamily(
            "acd_agents",
            "Queue members by state (logged_in = all members)",
            labels=["queue", "state"],
        )
        today = {
            name: GaugeMetricFamily(f"acd_today_{name}", text, labels=["queue"])
            for name, text in TODAY_FIGURES.items()
        }
        projected = {
            name: GaugeMetricFamily(metric, text, labels=["queue"])
            for name, (metric, text) in PROJECTION.items()
        }
        at_risk = GaugeMetricFamily(
            "acd_goal_at_risk",
            "1 when today's projection misses the goal (answer_rate, avg_wait, service_level)",
            labels=["queue", "goal"],
        )
        if snap is not None:
            version.add_metric([], float(snap["version"]))
            queues: dict[str, Any] = snap.get("queues", {})
            for name in self.queues():
                q = queues.get(name)
                if q is None:
                    continue
                waiting.add_metric([name], q["waiting"])
                longest.add_metric([name], q["longest_wait_seconds"])
                if q["estimated_wait_seconds"] is not None:
                    ewt.add_metric([name], q["estimated_wait_seconds"])
                for state in AGENT_STATES:
                    agents.add_metric([name, state], q["agents"].get(state, 0))
                self._today(today, name, q["today"])
                self._projection(projected, at_risk, name, q.get("projection"))
            self._today(today, CENTRE, snap["centre"]["today"])
            self._projection(projected, at_risk, CENTRE, snap["centre"].get("projection"))
        yield version
        yield waiting
        yield longest
        yield ewt
        yield agents
        yield from today.values()
        yield from projected.values()
        yield at_risk

    @staticmethod
    def _projection(
        families: dict[str, GaugeMetricFamily],
        at_risk: GaugeMetricFamily,
        queue: str,
        projection: Any,
    ) -> None:
        if not projection:
            return
        LiveCollector._today(families, queue, projection)
        for goal in GOALS_AT_RISK:
            at_risk.add_metric([queue, goal], 1.0 if goal in projection["at_risk"] else 0.0)

    @staticmethod
    def _today(families: dict[str, GaugeMetricFamily], queue: str, figures: Any) -> None:
        for name, family in families.items():
            value = figures.get(name)
            if value is not None:
                family.add_metric([queue], float(value))


# Per PBX (ACD_PBXS): a few of the figures above for each PBX's own picture; the ones
# without a pbx label are the whole centre's.
PBX_TODAY: dict[str, str] = {
    "offered": "Calls decided today on this PBX",
    "answered": "Calls answered today on this PBX",
    "answer_rate": "Answered / (offered - short abandons), today, on this PBX",
    "avg_wait_seconds": "Average wait of the calls decided today on this PBX",
    "service_level": "Answered within the service-level time / answered, today, on this PBX",
}


class PbxCollector(Collector):
    """Each PBX's own picture as gauges labelled ``pbx``: whether it is there at all
    (``acd_pbx_live``: 0 when no owner publishes it), who waits, the agents by state and
    today's main figures of its calls, and who waits per queue."""

    def __init__(
        self, stores: Mapping[str, LiveStore], queues: Callable[[], Sequence[str]]
    ) -> None:
        self.stores = stores
        self.queues = queues

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families({}))

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families({p: s.snapshot for p, s in self.stores.items()}))

    def _families(self, snaps: Mapping[str, dict[str, Any] | None]) -> Iterable[GaugeMetricFamily]:
        live = GaugeMetricFamily(
            "acd_pbx_live",
            "1 while the PBX's live picture is there (an owner publishes it)",
            labels=["pbx"],
        )
        waiting = GaugeMetricFamily(
            "acd_pbx_calls_waiting", "Callers waiting now on the PBX", labels=["pbx"]
        )
        longest = GaugeMetricFamily(
            "acd_pbx_longest_wait_seconds",
            "Wait so far of the PBX's longest-waiting caller",
            labels=["pbx"],
        )
        agents = GaugeMetricFamily(
            "acd_pbx_agents", "The PBX's agents by state (each agent once)", labels=["pbx", "state"]
        )
        queue_waiting = GaugeMetricFamily(
            "acd_pbx_queue_calls_waiting",
            "Callers waiting now per queue on the PBX",
            labels=["pbx", "queue"],
        )
        today = {
            name: GaugeMetricFamily(f"acd_pbx_today_{name}", text, labels=["pbx"])
            for name, text in PBX_TODAY.items()
        }
        names = self.queues() if snaps else ()
        for pbx, snap in snaps.items():
            live.add_metric([pbx], 0.0 if snap is None else 1.0)
            if snap is None:
                continue
            centre = snap["centre"]
            waiting.add_metric([pbx], centre["waiting"])
            longest.add_metric([pbx], centre["longest_wait_seconds"])
            for state, n in centre["agents"].items():
                agents.add_metric([pbx, state], n)
            for name, family in today.items():
                value = centre["today"].get(name)
                if value is not None:
                    family.add_metric([pbx], float(value))
            queues: dict[str, Any] = snap.get("queues", {})
            for name in names:
                q = queues.get(name)
                if q is not None:
                    queue_waiting.add_metric([pbx, name], q["waiting"])
        yield live
        yield waiting
        yield longest
        yield agents
        yield queue_waiting
        yield from today.values()
