"""What each call-centre figure means, in one place: the descriptions the API's schemas
give the figures that carry the same name and the same meaning wherever they appear (the
live ``today`` of ``/v1/queues``, a past day's figures, every group of a report).

docs/kpis.md is the long form (formulas, rounding, goals); this is its one-line form for
an integrator reading the OpenAPI document. S is ``ACD_SHORT_ABANDON_SECONDS`` (short
abandons), T ``ACD_SERVICE_LEVEL_SECONDS`` (the service-level threshold). A queue counts
visits, the centre and the other groups calls. A rate is a share 0-1, ``null`` when its
denominator is 0; times are seconds.
"""

from __future__ import annotations

from typing import Any

FIGURES: dict[str, str] = {
    # calls to the line
    "calls": "Calls to the line (the centre), or that reached the group's queues.",
    "closed": "Calls outside opening hours or on a holiday.",
    "forwarded": "Calls sent straight on to an external unit by the menu (e.g. "
    "Sygedagpenge 09-10 to JKA).",
    "ivr_hangup": "Calls hung up in the menu, before a queue.",
    "failed": "Calls that could not be put through (no queue to join, network causes).",
    # queue figures
    "offered": "Offered: answered + abandoned + timeout + empty + transferred.",
    "answered": "Answered by an agent.",
    "abandoned": "Hung up while waiting (short abandons included).",
    "short_abandoned": "Abandoned with a wait under S seconds (a misdial, a change of "
    "mind); not counted against the answer rate.",
    "timeout": "Left the queue when its maximum wait passed (then offered a message).",
    "empty": "Left the queue because it had no agents left.",
    "transferred": "Moved on to another queue while waiting.",
    "answered_within_sl": "Answered with a wait of at most T seconds.",
    "abandoned_within_sl": "Abandoned with a wait of at most T seconds (short abandons included).",
    "abandoned_after_sl": "Abandoned with a wait over T seconds.",
    "answer_rate": "Availability (tilgængelighed): answered / (offered - short_abandoned).",
    "answer_rate_raw": "answered / offered.",
    "abandon_rate": "(abandoned - short_abandoned) / (offered - short_abandoned).",
    "avg_wait_seconds": "Average wait (ventetid) of every offered visit, answered or not.",
    "asa_seconds": "Average speed of answer: the mean wait of the answered.",
    "max_wait_seconds": "The longest wait of a visit that has ended its wait.",
    "service_level": "Service level: answered_within_sl / answered.",
    "service_level_offered": "answered_within_sl / offered.",
    "service_level_sl2": "Asterisk app_queue's SL2: (answered_within_sl + "
    "abandoned_within_sl) / (answered + abandoned).",
    "service_level_abandons": "answered_within_sl / (answered + abandoned_after_sl).",
    "service_levels": "The service-level table: one row per threshold (20, 60, 120, 180 s "
    "and T), every variant from the same counts.",
    "talked": "Answered visits whose talk has ended.",
    "avg_talk_seconds": "Mean talk time of the talked visits.",
    "avg_handle_seconds": "Mean handling time: talk plus the queue's wrap-up, per talked visit.",
    "ewt_samples": "Answered visits that had an expected wait when the menu routed them.",
    "ewt_mean_error_seconds": "Mean (actual wait - expected wait); above 0: callers "
    "waited longer than they were told.",
    "ewt_mean_abs_error_seconds": "Mean |actual wait - expected wait|.",
    # transfers
    "transferred_to_queue": "Answered, then put through to another queue by the agent.",
    "transferred_external": "Answered, then put through to an external unit.",
    "transfers_received": "A department: calls transferred or forwarded to its units.",
    # first-contact resolution
    "registered": "Answered calls (a queue, an agent: visits) the agent registered "
    "(henvendelsesregistrering).",
    "registration_share": "registered / answered.",
    "registered_resolved": "Registered as settled at first contact.",
    "registered_transferred": "Registered as transferred (to a queue or a unit).",
    "first_contact_resolution": "First-contact resolution (straksafklaring) from the "
    "registrations: registered_resolved / registered.",
    "repeat_base": "Answered calls of a known caller (keyed hash of the number).",
    "repeat_callers": "Of repeat_base, the callers who called again within "
    "ACD_REPEAT_CALL_WORKING_DAYS working days.",
    "first_contact_resolution_repeat": "First-contact resolution from repeat calls: "
    "1 - repeat_callers / repeat_base.",
    # satisfaction
    "survey_invited": "Answered calls flagged for the survey (every 5th).",
    "survey_responses": "Surveys with at least one answer.",
    "survey_completed": "Surveys with all three questions answered.",
    "survey_response_rate": "survey_responses / survey_invited.",
    "satisfaction": "Mean of the 'overall' answers (tilfredshed), 1-9.",
    "survey": "The survey's answers per question (friendliness, wait, overall): for all "
    "calls, those settled at first contact and those transferred.",
    # call-backs and messages
    "callbacks_requested": "Call-back tasks requested in the period.",
    "messages_requested": "Message tasks requested in the period.",
    "tasks_requested": "Call-back and message tasks requested in the period.",
    "tasks_returned": "Tasks done (called back, forwarded).",
    "tasks_returned_in_time": "Tasks done by their due time (2 working days).",
    "tasks_in_time_share": "tasks_returned_in_time / tasks_requested.",
    "tasks_failed": "Tasks given up (the citizen could not be reached).",
    "tasks_cancelled": "Tasks cancelled.",
    "tasks_overdue": "Tasks still open past their due time at `as_of`.",
    # data quality
    "data_gap_calls": "Calls (a queue: visits) touched by a gap in the PBX's event "
    "stream: their figures may be incomplete.",
}


def describe_figures(schema: dict[str, Any], *_: Any) -> None:
    """``json_schema_extra`` for a model of figures: each figure without a description of
    its own gets the one above."""
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop and name in FIGURES:
            prop["description"] = FIGURES[name]
