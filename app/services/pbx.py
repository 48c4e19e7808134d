"""An action on the PBX, as a use case sees it: run, counted, and its outcome a value or
a domain error.

- every step confirmed by its event: the ``StepsResult``;
- a step not confirmed in time (no event, or no response): ``PbxUnconfirmed`` with what
  was confirmed;
- the PBX refused: ``PbxRefused`` (about the state, e.g. ``Already there``, or not), the
  PBX's message in the detail;
- no PBX configured, the AMI link down, too many actions pending: ``PbxUnavailable`` /
  ``TooManyPending`` (nothing was sent); the action made no sense in the agent's state:
  ``Conflict``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from app.acd.agents import WrongState
from app.ami import agent_actions as actions
from app.ami.confirm import StepsResult, TooManyPending
from app.metrics import Metrics
from app.services.errors import Conflict, PbxRefused, PbxUnconfirmed

T = TypeVar("T")
Note = Callable[..., None]  # adds details to the request's audit row


def no_note(**detail: Any) -> None:
    return None


@dataclass(frozen=True)
class PbxGate:
    pbx: actions.Pbx
    metrics: Metrics

    async def attempt(self, action: str, what: str, run: Awaitable[T]) -> T:
        """Await the action; a wrong state is a ``Conflict`` naming ``what``."""
        try:
            return await run
        except WrongState as exc:
            raise Conflict(f"{what}: {exc}") from exc
        except (actions.PbxUnavailable, TooManyPending):
            self.metrics.agent_actions.labels(action, "unavailable").inc()
            raise

    def confirmed(self, action: str, result: StepsResult, note: Note = no_note) -> StepsResult:
        """The result if every step was confirmed, else the domain error saying what not."""
        note(confirmed=result.confirmed)
        if result.ok:
            self.metrics.agent_actions.labels(action, "confirmed").inc()
            return result
        unconfirmed = result.unconfirmed + result.unanswered
        detail: dict[str, object] = {
            "confirmed": result.confirmed,
            "refused": dict(result.refused),
            "unconfirmed": unconfirmed,
        }
        if unconfirmed:
            self.metrics.agent_actions.labels(action, "timeout").inc()
            detail["message"] = (
                f"the PBX did not confirm {action} for {', '.join(unconfirmed)} within "
                f"{self.pbx.timeout:g} s; only what it confirmed has changed"
            )
            note(unconfirmed=unconfirmed)
            raise PbxUnconfirmed(detail)
        self.metrics.agent_actions.labels(action, "refused").inc()
        refusals = "; ".join(f"{label}: {message}" for label, message in result.refused)
        detail["message"] = f"the PBX refused {action} ({refusals})"
        about_state = all(actions.is_state_reply(message) for _, message in result.refused)
        raise PbxRefused(detail, about_state)

    async def run(
        self, action: str, what: str, run: Awaitable[StepsResult], note: Note = no_note
    ) -> StepsResult:
        return self.confirmed(action, await self.attempt(action, what, run), note)
