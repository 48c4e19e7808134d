"""Today's follow-up figures per queue for Prometheus: call registrations (first-contact
resolution) and survey answers (satisfaction), as counts and sums so that Grafana can add
queues up and divide (docs/api.md defines both figures: resolved / registered, and the
mean of the 1-9 answers). Plain functions taking their session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import Call, Disposition, SurveyResponse

QUESTIONS = ("friendliness", "wait", "overall")


@dataclass
class FollowUp:
    # queue -> (registrations, of which settled at first contact)
    registrations: dict[str, tuple[int, int]] = field(default_factory=dict)
    # (queue, question) -> (answers, sum of the 1-9 scores)
    surveys: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)


async def follow_up(session: AsyncSession, start: datetime, end: datetime) -> FollowUp:
    """Registrations of the calls and survey answers of the calls that started in
    [start, end) (a day), by queue (``none``: a call that reached no queue)."""
    out = FollowUp()
    d = Disposition
    rows = await session.execute(
        select(d.queue, func.count(), func.sum(case((d.resolved, 1), else_=0)))
        .join(Call, Call.id == d.call_id)
        .where(Call.started_at >= start, Call.started_at < end)
        .group_by(d.queue)
    )
    for queue, n, resolved in rows:
        out.registrations[queue or "none"] = (int(n), int(resolved or 0))
    s = SurveyResponse
    columns = [getattr(s, q) for q in QUESTIONS]
    rows = await session.execute(
        select(s.queue, *(func.count(c) for c in columns), *(func.sum(c) for c in columns))
        .where(s.started_at >= start, s.started_at < end)
        .group_by(s.queue)
    )
    for queue, *figures in rows:
        for i, question in enumerate(QUESTIONS):
            answers, total = figures[i], figures[i + len(QUESTIONS)]
            out.surveys[(queue or "none", question)] = (int(answers), int(total or 0))
    return out
