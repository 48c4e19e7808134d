"""``/v1/work``: what agents choose from (pause reasons, registration reasons per queue,
transfer destinations with their best contact hours) and the scorecard goals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Security
from pydantic import BaseModel, Field

from app.acd.access import Principal
from app.acd.work import Choice, Goals
from app.api.auth import access
from app.api.common import ERRORS
from app.api.deps import Config, Work

router = APIRouter(prefix="/v1/work", tags=["agents"])


class DestinationOut(BaseModel):
    name: str = Field(description="The unit's name, as `destination` in a transfer.")
    title: str = Field(description="The unit's title (Danish).")
    number: str = Field(description="The unit's public number.")
    hours: dict[str, list[str]] = Field(
        description="The unit's best hours per weekday (`mon`: [`08:00-15:00`]).",
    )
    backup: bool = Field(description="The unit has a back-up line (bagvagt) outside its hours.")


class WorkOut(BaseModel):
    pause_reasons: list[Choice] = Field(description="The pause reasons agents may give.")
    dispositions: dict[str, list[Choice]] = Field(
        description="Per queue, the registration reasons agents may give.",
    )
    destinations: list[DestinationOut] = Field(
        description="The named units calls may be transferred to.",
    )
    goals: Goals = Field(description="The goals an agent's scorecard is measured against.")


@router.get(
    "",
    response_model=WorkOut,
    summary="Pause reasons, registration reasons, units",
    responses=ERRORS,
)
async def get_work(
    who: Annotated[Principal, Security(access("calls:read", "work.read"))],
    work: Work,
    config: Config,
) -> WorkOut:
    """What agents choose from: pause reasons, registration reasons per queue, the units calls
    can be transferred to (with their hours), and the scorecard's goals (work.yaml)."""
    queues = config.queue_names or tuple(work.dispositions.queues)
    return WorkOut(
        pause_reasons=list(work.pause_reasons),
        dispositions={q: list(work.dispositions.for_queue(q)) for q in queues},
        destinations=[
            DestinationOut(
                name=d.name,
                title=d.title,
                number=d.number,
                hours={day: list(v) for day, v in d.hours.items()},
                backup=d.backup_number is not None,
            )
            for d in work.destinations
        ],
        goals=work.goals,
    )
