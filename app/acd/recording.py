"""The state machine's calls, visits and surveys as the writer's records
(``app/acd/records.py``): one row per call, per queue visit and per survey, rebuilt whole
each time the call changes (the writer upserts them by their keys).

Pure functions of the model (``app/acd/model.py``); ``CallCentre.drain`` calls them for
every call that changed.
"""

from __future__ import annotations

from app.acd.model import Call, Visit
from app.acd.records import CallRecord, SurveyRecord, VisitRecord


def call_record(call: Call) -> CallRecord:
    first = call.visits[0] if call.visits else None
    answered = call.answered_visit()
    talk = [v.talk_seconds for v in call.visits if v.talk_seconds is not None]
    if answered is not None:
        wait = answered.wait_seconds if answered is first else None
        if wait is None and first is not None:
            wait = first.wait_seconds
    else:
        wait = first.wait_seconds if first is not None else None
    return CallRecord(
        pbx=call.pbx,
        linkedid=call.linkedid,
        caller_hash=call.caller_hash,
        caller_display=call.caller_display,
        dialled=call.dialled,
        keys=call.keys[:64],
        queue=first.queue if first is not None else None,
        started_at=call.started_at,
        queue_entered_at=first.entered_at if first is not None else None,
        answered_at=answered.answered_at if answered is not None else None,
        ended_at=call.ended_at,
        wait_seconds=wait,
        ring_seconds=answered.ring_seconds if answered is not None else None,
        talk_seconds=round(sum(talk), 3) if talk else None,
        agent=answered.agent if answered is not None else None,
        outcome=call.outcome if call.ended_at is not None else None,
        transferred_to=call.transferred_to or call.forwarded_to,
        hangup_cause=call.hangup_cause,
        survey_flagged=call.survey_flagged,
        data_gap=call.data_gap,
        hangup_by=call.hangup_by,
    )


def visit_record(call: Call, v: Visit) -> VisitRecord:
    return VisitRecord(
        pbx=call.pbx,
        linkedid=call.linkedid,
        seq=v.seq,
        queue=v.queue,
        entered_at=v.entered_at,
        position=v.position,
        estimated_wait_seconds=v.estimated_wait,
        left_at=v.left_at,
        answered_at=v.answered_at,
        ended_at=v.talk_end_at,
        wait_seconds=None if v.waiting else v.wait_seconds,
        ring_seconds=v.ring_seconds,
        talk_seconds=v.talk_seconds,
        agent=v.agent,
        outcome=v.outcome,
        complete_reason=v.complete_reason,
        data_gap=v.data_gap,
    )


def survey_record(call: Call) -> SurveyRecord:
    answered = call.answered_visit()
    last = next((v for v in reversed(call.visits) if v.answered_at is not None), answered)
    assert call.survey_started is not None
    return SurveyRecord(
        pbx=call.pbx,
        linkedid=call.linkedid,
        agent=last.agent if last is not None else None,
        queue=last.queue if last is not None else None,
        started_at=call.survey_started,
        friendliness=call.survey.get("friendliness"),
        wait=call.survey.get("wait"),
        overall=call.survey.get("overall"),
        completed=call.survey_done,
    )


# ---- internals: agents ----------------------------------------------------------
