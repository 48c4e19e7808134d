"""From a PBX action's outcome to HTTP: what every router that drives Asterisk shares.

- all steps confirmed by their events: the caller gets its answer (200);
- a step not confirmed in time (no event, or no response): 504, with what was confirmed;
- the PBX refused: 409 when its reply is about state (``Already there``, ``Member not
  dynamic``, ...), else 502; the PBX's message is in the detail;
- no PBX configured, or the AMI link down: 503 (nothing was sent).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from fastapi import HTTPException, Request

from app.acd.agents import WrongState
from app.ami import agent_actions as actions
from app.ami.confirm import StepsResult, TooManyPending
from app.api.auth import audit_note
from app.api.common import conflict, unavailable

if TYPE_CHECKING:
    from app.main import Runtime

T = TypeVar("T")


def pbx(rt: Runtime) -> actions.Pbx:
    return actions.Pbx(rt.ami, rt.confirmations, rt.centre, rt.settings.ami_confirm_timeout)


async def attempt(rt: Runtime, action: str, what: str, run: Awaitable[T]) -> T:
    """Await a use case; its ``WrongState``/``PbxUnavailable`` become 409/503."""
    try:
        return await run
    except WrongState as exc:
        raise conflict(f"{what}: {exc}") from exc
    except (actions.PbxUnavailable, TooManyPending) as exc:
        rt.metrics.agent_actions.labels(action, "unavailable").inc()
        raise unavailable(str(exc)) from exc


def check(rt: Runtime, request: Request, action: str, result: StepsResult) -> None:
    """Raise the HTTP error for a result that is not fully confirmed."""
    audit_note(request, confirmed=result.confirmed)
    if result.ok:
        rt.metrics.agent_actions.labels(action, "confirmed").inc()
        return
    unconfirmed = result.unconfirmed + result.unanswered
    detail: dict[str, object] = {
        "confirmed": result.confirmed,
        "refused": dict(result.refused),
        "unconfirmed": unconfirmed,
    }
    if unconfirmed:
        rt.metrics.agent_actions.labels(action, "timeout").inc()
        detail["message"] = (
            f"the PBX did not confirm {action} for {', '.join(unconfirmed)} within "
            f"{rt.settings.ami_confirm_timeout:g} s; only what it confirmed has changed"
        )
        audit_note(request, unconfirmed=unconfirmed)
        raise HTTPException(504, detail)
    rt.metrics.agent_actions.labels(action, "refused").inc()
    refusals = "; ".join(f"{label}: {message}" for label, message in result.refused)
    detail["message"] = f"the PBX refused {action} ({refusals})"
    if all(actions.is_state_reply(message) for _, message in result.refused):
        raise HTTPException(409, detail)
    raise HTTPException(502, detail)
