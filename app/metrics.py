"""Prometheus metrics, created once per service (one registry per app instance).

Label values are bounded: queues and menus come from configuration, events from the
normaliser's table, states and outcomes from fixed vocabularies; never caller data.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from app.acd.records import BOUNDED

# Waits and talk times: buckets include the service goals (20 s, 60 s, 150 s avg, 180 s SL).
WAIT_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 150.0, 180.0, 240.0, 300.0, 600.0)
EWT_ERROR_BUCKETS = (-300.0, -120.0, -60.0, -30.0, -10.0, 0.0, 10.0, 30.0, 60.0, 120.0, 300.0)
TALK_BUCKETS = (20.0, 60.0, 120.0, 150.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1800.0)


class Metrics:
    """Every metric the service exports, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry

        # --- AMI link ---------------------------------------------------------------
        self.ami_connected = Gauge(
            "acd_ami_connected", "1 while the AMI link is up and logged in", registry=r
        )
        self.ami_last_event_timestamp = Gauge(
            "acd_ami_last_event_timestamp_seconds", "Unix time of the last AMI event", registry=r
        )
        self.ami_events = Counter(
            "acd_ami_events", "AMI events received, by event name", ["event"], registry=r
        )
        self.ami_malformed = Counter(
            "acd_ami_malformed_frames",
            "AMI frames that could not be parsed, or not taken (skipped, counted here)",
            registry=r,
        )
        self.ami_reconnects = Counter(
            "acd_ami_reconnects", "AMI (re)connection attempts", ["result"], registry=r
        )
        # High availability (app/ha): one owner per PBX, elected by a lease.
        self.owner = Gauge(
            "acd_owner",
            "1 while this process holds the PBX's lease (owns its AMI link, state, writer "
            "and dialer), 0 on a standby",
            ["pbx"],
            registry=r,
        )
        self.handovers = Counter(
            "acd_handovers",
            "Leases this process took over, by cause (first, expired, released)",
            ["pbx", "cause"],
            registry=r,
        )
        self.lease_lost = Counter(
            "acd_lease_lost",
            "Times this process lost a lease it held (then it stops owning the PBX)",
            ["pbx", "cause"],
            registry=r,
        )
        self.fenced_records = Counter(
            "acd_fenced_records",
            "Records a deposed owner tried to write, refused by the lease's fence",
            registry=r,
        )
        self.relayed_events = Counter(
            "acd_relayed_events",
            "Menu events relayed between replicas through Redis (sent, received, lost)",
            ["direction"],
            registry=r,
        )
        self.event_lag = Histogram(
            "acd_event_lag_seconds",
            "Delay from an event's own time to its processing",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0),
            registry=r,
        )

        # --- event log --------------------------------------------------------------
        self.store_queue_depth = Gauge(
            "acd_store_queue_depth", "Events waiting for the database writer", registry=r
        )
        self.store_written = Counter(
            "acd_store_events_written", "Events durably written", registry=r
        )
        self.store_spilled = Counter(
            "acd_store_events_spilled", "Events spilled to the local file", registry=r
        )
        self.store_lost = Counter(
            "acd_store_events_lost",
            "Records lost because the spill file could not be written (disk full)",
            registry=r,
        )
        self.store_errors = Counter("acd_store_errors", "Failed database flushes", registry=r)
        self.store_dead_letters = Counter(
            "acd_store_dead_letters",
            "Records the database refused, set aside in dead_letters (or its file) while "
            "the rest of the log went on, by the table they were for",
            ["table"],
            registry=r,
        )
        r.register(BoundedValues())

        # --- calls ------------------------------------------------------------------
        self.calls = Counter(
            "acd_calls",
            "Decided queue visits by queue and outcome (answered, abandoned, timeout, empty, "
            "transferred); calls that reached no queue under queue=none with the call outcome",
            ["queue", "outcome"],
            registry=r,
        )
        self.wait_seconds = Histogram(
            "acd_wait_seconds",
            "Queue wait of every decided visit, until answered or until it left the queue",
            ["queue"],
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.talk_seconds = Histogram(
            "acd_talk_seconds",
            "Talk time of answered calls",
            ["queue"],
            buckets=TALK_BUCKETS,
            registry=r,
        )

        # --- expected wait and the live picture ------------------------------------
        self.ewt_error = Histogram(
            "acd_ewt_error_seconds",
            "Answered visits: actual wait minus the expected wait the menu had at routing",
            ["queue"],
            buckets=EWT_ERROR_BUCKETS,
            registry=r,
        )
        self.ewt_abs_error = Histogram(
            "acd_ewt_abs_error_seconds",
            "Answered visits: |actual wait - expected wait at routing|",
            ["queue"],
            buckets=(5.0, 10.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0),
            registry=r,
        )
        self.live_mirror_up = Gauge(
            "acd_live_mirror_up",
            "1 when the last write of the live mirror to Redis worked",
            registry=r,
        )
        self.live_mirror_errors = Counter(
            "acd_live_mirror_errors", "Failed writes of the live mirror to Redis", registry=r
        )
        self.stream_dropped = Counter(
            "acd_stream_clients_dropped",
            "Stream (SSE) clients dropped for falling too far behind",
            registry=r,
        )

        # --- IVR --------------------------------------------------------------------
        self.ivr_keys = Counter(
            "acd_ivr_keys", "Keys pressed in the menu", ["menu", "key"], registry=r
        )
        self.agi_sessions = Counter(
            "acd_agi_sessions", "FastAGI sessions, by how they ended", ["result"], registry=r
        )
        self.agi_active = Gauge(
            "acd_agi_sessions_active", "FastAGI sessions in progress", registry=r
        )
        self.ivr_invalid = Counter(
            "acd_ivr_invalid_keys", "Keys that are not a choice of the menu", ["menu"], registry=r
        )
        self.ivr_timeouts = Counter(
            "acd_ivr_timeouts", "Menu prompts answered by no key", ["menu"], registry=r
        )
        self.ivr_outcomes = Counter(
            "acd_ivr_outcomes",
            "How menu sessions ended (routed, forwarded, closed, callback, message, hangup, ...)",
            ["outcome"],
            registry=r,
        )
        self.ivr_hangups = Counter(
            "acd_ivr_hangups",
            "Callers who hung up inside the menu, by menu node",
            ["menu"],
            registry=r,
        )
        self.ivr_time_to_queue = Histogram(
            "acd_ivr_time_to_queue_seconds",
            "From the start of the menu session to the queue decision",
            ["queue"],
            buckets=(2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 300.0),
            registry=r,
        )
        self.ivr_callback_offers = Counter(
            "acd_ivr_callback_offers",
            "Call-back offers on long waits, by queue and answer",
            ["queue", "answer"],
            registry=r,
        )
        self.survey_answers = Counter(
            "acd_survey_answers",
            "Survey answers, by question and score",
            ["question", "score"],
            registry=r,
        )
        self.agi_step_seconds = Histogram(
            "acd_agi_step_seconds",
            "From an AGI reply received to the next command sent (engine + bookkeeping)",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
            registry=r,
        )
        self.ivr_flow_reloads = Counter(
            "acd_ivr_flow_reloads",
            "Flow reloads, by result (ok, rejected)",
            ["result"],
            registry=r,
        )

        # --- API, agents and call-backs ---------------------------------------------
        self.audit_errors = Counter(
            "acd_audit_write_errors", "Audit log rows that could not be written", registry=r
        )
        self.auth_outage = Counter(
            "acd_auth_database_unreachable",
            "Requests whose credentials could not be checked against the database, by what "
            "was done: remembered (a recent confirmation let a read through), refused (503)",
            ["result"],
            registry=r,
        )
        self.agent_actions = Counter(
            "acd_agent_actions",
            "Agent actions through the API (login, logout, pause, unpause, transfer), by result",
            ["action", "result"],
            registry=r,
        )
        self.callbacks_overdue = Gauge(
            "acd_callbacks_overdue",
            "Call-back and message tasks past their due time and not done, by queue",
            ["queue"],
            registry=r,
        )
        self.callbacks_open = Gauge(
            "acd_callbacks_open",
            "Call-back and message tasks not done yet, by queue",
            ["queue"],
            registry=r,
        )
        # Today's follow-up by queue (app/store/followup.py), refreshed with the call-back
        # gauges: first-contact resolution = resolved / registrations, satisfaction = score
        # sum / answers; counts and sums so that queues add up.
        self.today_registrations = Gauge(
            "acd_today_registrations",
            "Registrations of today's calls, by queue and whether settled at first contact",
            ["queue", "resolved"],
            registry=r,
        )
        self.today_survey_answers = Gauge(
            "acd_today_survey_answers",
            "Survey answers about today's calls, by queue and question",
            ["queue", "question"],
            registry=r,
        )
        self.today_survey_score = Gauge(
            "acd_today_survey_score_sum",
            "Sum of the 1-9 scores of today's survey answers, by queue and question",
            ["queue", "question"],
            registry=r,
        )
        self.dialer_originations = Counter(
            "acd_dialer_originations",
            "Call-backs the dialer placed, by result (answered, no_answer, busy, failed, error)",
            ["result"],
            registry=r,
        )
        self.dialer_in_flight = Gauge(
            "acd_dialer_in_flight", "Call-backs ringing the citizen now", registry=r
        )


class BoundedValues(Collector):
    """``acd_values_bounded_total``: values from the PBX (or the menu) that did not fit
    their column as they came, fitted on the way in (``app.acd.records.fit``: cut with a
    marker and a hash, a NUL replaced, a number out of range made NULL), by field. The
    count is the process's own (``records.BOUNDED``), read when scraped."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "acd_values_bounded",
            "Values fitted to their column on the way in (cut and hashed, a NUL replaced, "
            "a number out of range nulled), by table.column or source.header",
            labels=["field"],
        )
        for name, count in sorted(BOUNDED.items()):
            family.add_metric([name], count)
        yield family
