"""The KPI definitions of docs/kpis.md, computed by hand on a small day, and the rules
that make live, stored and recomputed figures agree (each visit once, in any order)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from app.acd.kpi import CENTRE, DayBook, KpiConfig, call_facts, day_bounds, figures, visit_key
from app.acd.records import VisitRecord

TZ = ZoneInfo("Europe/Copenhagen")
T = datetime(2014, 11, 4, 9, 0, tzinfo=UTC)


def visit(
    n: int,
    outcome: str | None,
    wait: float | None,
    talk: float | None = None,
    queue: str = "dagpenge",
    at: datetime = T,
    estimate: float | None = None,
) -> VisitRecord:
    """A decided visit as the writer stores it (the figures read the record itself)."""
    return VisitRecord(
        pbx="pbx1",
        linkedid=f"c{n}",
        seq=1,
        queue=queue,
        entered_at=at,
        position=1,
        estimated_wait_seconds=estimate,
        left_at=None,
        answered_at=None,
        ended_at=None,
        wait_seconds=wait,
        ring_seconds=None,
        talk_seconds=talk,
        agent=None,
        outcome=outcome,
        complete_reason=None,
        data_gap=False,
    )


DAY = [
    visit(1, "answered", 10.0, 100.0, estimate=20.0),
    visit(2, "answered", 200.0, 50.0, estimate=140.0),
    visit(3, "answered", 180.0),  # exactly T: within the service level; still talking
    visit(4, "abandoned", 3.0),  # short abandon
    visit(5, "abandoned", 5.0),  # exactly the threshold: not short ("under 5 s")
    visit(6, "abandoned", 200.0),  # after T
    visit(7, "timeout", 1800.0),
    visit(8, "transferred", 30.0),
    visit(9, "empty", 12.0),
]


def test_a_hand_computed_day() -> None:
    book = DayBook(TZ)
    book.feed(DAY)
    f = book.figures(T.date(), "dagpenge")
    assert (f.offered, f.answered, f.abandoned, f.short_abandoned) == (9, 3, 3, 1)
    assert (f.timeout, f.transferred, f.empty) == (1, 1, 1)
    assert f.answer_rate == round(3 / 8, 4)  # answered / (offered - short)
    assert f.answer_rate_raw == round(3 / 9, 4)
    assert f.abandon_rate == round(2 / 8, 4)  # (abandoned - short) / (offered - short)
    assert f.avg_wait_seconds == round(2440 / 9, 1)  # every offered visit
    assert f.asa_seconds == 130.0  # (10 + 200 + 180) / 3
    assert (f.answered_within_sl, f.abandoned_after_sl) == (2, 1)
    assert f.service_level == round(2 / 3, 4)
    assert f.service_level_abandons == round(2 / 4, 4)
    # SL over everything offered, and app_queue's SL2 (abandons within T count as served).
    assert f.abandoned_within_sl == 2  # 3 s and 5 s
    assert f.service_level_offered == round(2 / 9, 4)
    assert f.service_level_sl2 == round((2 + 2) / (3 + 3), 4)
    assert (f.talked, f.avg_talk_seconds) == (2, 75.0)
    assert f.max_wait_seconds == 1800.0
    # Expected wait at routing vs actual wait, answered visits that had one.
    assert (f.ewt_samples, f.ewt_mean_error_seconds, f.ewt_mean_abs_error_seconds) == (
        2,
        25.0,  # ((10 - 20) + (200 - 140)) / 2
        35.0,
    )


def test_thresholds_are_configurable() -> None:
    book = DayBook(TZ, KpiConfig(short_abandon_seconds=10, service_level_seconds=20))
    book.feed(DAY)
    f = book.figures(T.date(), "dagpenge")
    assert f.short_abandoned == 2  # 3 s and 5 s
    assert (f.answered_within_sl, f.abandoned_after_sl) == (1, 1)
    assert f.answer_rate == round(3 / 7, 4)


def test_no_calls_means_no_rates_not_zero() -> None:
    f = DayBook(TZ).figures(T.date(), "dagpenge")
    assert f.offered == 0
    assert f.answer_rate is None and f.avg_wait_seconds is None and f.service_level is None
    only_short = DayBook(TZ)
    only_short.feed([visit(1, "abandoned", 1.0)])
    g = only_short.figures(T.date(), "dagpenge")
    assert (g.offered, g.answer_rate, g.answer_rate_raw) == (1, None, 0.0)


def test_waiting_visits_and_unknown_outcomes_do_not_count() -> None:
    book = DayBook(TZ)
    assert not book.decided(visit(1, None, None))
    assert not book.decided(visit(2, "full", 0.0))
    assert book.figures(T.date(), "dagpenge").offered == 0


def test_each_visit_counts_once_for_its_decision_and_once_for_its_talk() -> None:
    book = DayBook(TZ)
    answered = visit(1, "answered", 10.0)
    assert book.decided(answered) and not book.decided(answered)
    # Its talk ends later (the live path) and the stored row says both (a reload).
    ended = visit(1, "answered", 10.0, talk=60.0)
    assert book.talked(ended)
    book.feed([ended, ended])
    f = book.figures(T.date(), "dagpenge")
    assert (f.offered, f.answered, f.talked, f.avg_talk_seconds) == (1, 1, 1, 60.0)
    # The same linkedid and seq in another queue is another visit (a resync may renumber).
    assert book.decided(visit(1, "answered", 5.0, queue="kontanthjaelp"))


def test_the_day_is_the_local_day_of_the_queue_entry() -> None:
    book = DayBook(TZ)
    # 23:59:59 and 00:00:00 Copenhagen time (UTC+1 in November).
    late = datetime(2014, 11, 4, 22, 59, 59, tzinfo=UTC)
    book.feed(
        [
            visit(1, "answered", 120.0, at=late),
            visit(2, "answered", 1.0, at=late + timedelta(seconds=1)),
        ]
    )
    assert book.figures(late.date(), "dagpenge").offered == 1
    assert book.figures(late.date() + timedelta(days=1), "dagpenge").offered == 1
    start, end = day_bounds(datetime(2014, 10, 26).date(), TZ)  # DST ends: 25 hours
    assert end - start == timedelta(hours=25)
    book.prune(late.date() + timedelta(days=5))
    assert book.figures(late.date(), "dagpenge").offered == 0


def test_the_centre_counts_calls_not_visits() -> None:
    """kpi.call_facts: a call counts once in the centre, with the wait until an agent first
    answered it, whatever number of queues it visited."""

    def leg(
        seq: int, queue: str, outcome: str | None, wait: float | None, talk: float | None = None
    ) -> VisitRecord:
        return VisitRecord(
            pbx="pbx1", linkedid="c1", seq=seq, queue=queue,
            entered_at=T + timedelta(seconds=100 * seq), position=1,
            estimated_wait_seconds=30.0 if seq == 1 else None, left_at=None, answered_at=None,
            ended_at=None, wait_seconds=wait, ring_seconds=2.0, talk_seconds=talk, agent=None,
            outcome=outcome, complete_reason=None, data_gap=False,
        )  # fmt: skip

    # Answered, then put through to another queue and answered there: the first wait.
    transferred = [
        leg(1, "dagpenge", "answered", 40.0, 100.0),
        leg(2, "kontanthjaelp", "answered", 25.0, 60.0),
    ]
    live = call_facts(transferred, ended=False)
    assert live is not None and (live.queue, live.seq, live.outcome) == (CENTRE, 0, "answered")
    assert (live.wait_seconds, live.talk_seconds, live.estimated_wait_seconds) == (40.0, None, 30.0)
    ended = call_facts(transferred, ended=True)
    assert ended is not None and ended.talk_seconds == 160.0  # both talks, once ended
    # Moved on while waiting, then answered: the waits add up.
    moved = [leg(1, "a_kasse", "transferred", 40.1), leg(2, "dagpenge", "answered", 20.2, 5.0)]
    facts = call_facts(moved, ended=True)
    assert facts is not None and (facts.outcome, facts.wait_seconds) == ("answered", 60.3)
    # Unanswered: known once the call ended; the last visit's outcome.
    timeout = [leg(1, "a_kasse", "transferred", 10.0), leg(2, "dagpenge", "timeout", 1800.0)]
    assert call_facts(timeout, ended=False) is None
    gone = call_facts(timeout, ended=True)
    assert gone is not None and (gone.outcome, gone.wait_seconds) == ("timeout", 1810.0)
    cut = call_facts([leg(1, "a_kasse", "transferred", 10.0)], ended=True)
    assert cut is not None and cut.outcome == "abandoned"
    assert call_facts([], ended=True) is None

    book = DayBook(TZ)
    book.feed([*transferred, ended])
    book.feed([ended])  # counted once, as any visit
    centre = book.figures(T.date(), CENTRE)
    assert (centre.offered, centre.answered, centre.talked, centre.asa_seconds) == (1, 1, 1, 40.0)
    assert book.figures(T.date(), "dagpenge").offered == 1
    assert book.queues(T.date()) == ["dagpenge", "kontanthjaelp"]  # not the centre


outcomes = st.sampled_from(["answered", "abandoned", "timeout", "empty", "transferred"])
visits = st.lists(
    st.builds(
        visit,
        st.integers(0, 40),
        outcomes,
        st.integers(0, 4_000_000).map(lambda ms: ms / 1000),
        st.one_of(st.none(), st.integers(0, 2_000_000).map(lambda ms: ms / 1000)),
        st.sampled_from(["dagpenge", "kontanthjaelp"]),
        estimate=st.one_of(st.none(), st.integers(0, 600)),
    ),
    max_size=40,
    unique_by=visit_key,  # a visit's identity; its facts do not change once decided
)


@settings(max_examples=200)
@given(visits, st.randoms(use_true_random=False), st.integers(0, 40))
def test_any_order_and_any_overlap_give_the_same_figures(
    day: list[VisitRecord], rnd: object, cut: int
) -> None:
    one = DayBook(TZ)
    one.feed(day)
    shuffled = list(day)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    # The live path saw the first part, a reload from the database sees all of it again.
    two = DayBook(TZ)
    for v in shuffled[:cut]:
        two.decided(v)
        two.talked(v)
    two.feed(reversed(shuffled))
    for queue in ("dagpenge", "kontanthjaelp", CENTRE):
        assert one.figures(T.date(), queue) == two.figures(T.date(), queue)
        assert one.tally(T.date(), queue) == two.tally(T.date(), queue)


def test_figures_of_a_tally_are_a_pure_function() -> None:
    book = DayBook(TZ)
    book.feed(DAY)
    tally = book.tally(T.date(), "dagpenge")
    assert figures(tally) == book.figures(T.date(), "dagpenge")
