"""Call-back and message tasks: the API's and the dialer's use cases on ``callbacks``.

Statuses: ``open`` -> ``assigned`` (a person has it) or ``dialling`` (the dialer has it)
-> ``done`` | ``failed`` | ``cancelled``. The number is only ever in ``number_sealed``
(AES-GCM, ``CallerPrivacy.seal``); lists show ``caller_display``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.acd.dialer import Candidate
from app.store.models import Callback
from app.store.repo import decode_cursor, encode_cursor

LIVE = ("open", "assigned", "dialling")
FINAL = ("done", "failed", "cancelled")
# outcome -> final status (POST /v1/callbacks/{id}/complete)
OUTCOMES: dict[str, str] = {
    "reached": "done",  # spoke with the citizen
    "forwarded": "done",  # a message sent on to the unit's shared mailbox
    "unreachable": "failed",  # tried enough
    "wrong_number": "failed",
    "duplicate": "cancelled",  # another task covers it
    "cancelled": "cancelled",  # no longer wanted (the citizen called again, ...)
}
Outcome = Literal["reached", "forwarded", "unreachable", "wrong_number", "duplicate", "cancelled"]


class TaskError(Exception):
    """The task is not in a state for this; the message says which it is in."""


@dataclass(frozen=True)
class TaskFilter:
    status: str | None = None
    queue: str | None = None
    kind: str | None = None
    assigned_to: str | None = None
    overdue: bool | None = None
    queues_or_assignee: tuple[tuple[str, ...], str] | None = None  # an agent's view


async def list_tasks(
    session: AsyncSession, flt: TaskFilter, now: datetime, limit: int, cursor: str | None
) -> tuple[Sequence[Callback], str | None]:
    """Oldest request first (the callers' order in line), keyset-paginated."""
    c = Callback
    stmt = select(c)
    if flt.status is not None:
        stmt = stmt.where(c.status == flt.status)
    if flt.queue is not None:
        stmt = stmt.where(c.queue == flt.queue)
    if flt.kind is not None:
        stmt = stmt.where(c.kind == flt.kind)
    if flt.assigned_to is not None:
        stmt = stmt.where(c.assigned_to == flt.assigned_to)
    if flt.overdue is not None:
        late = and_(c.status.in_(LIVE), c.due_at < now)
        stmt = stmt.where(late if flt.overdue else ~late)
    if flt.queues_or_assignee is not None:
        queues, agent = flt.queues_or_assignee
        stmt = stmt.where(or_(c.queue.in_(queues), c.assigned_to == agent))
    if cursor is not None:
        at, ident = decode_cursor(cursor)
        stmt = stmt.where(or_(c.requested_at > at, and_(c.requested_at == at, c.id > ident)))
    rows = (
        (await session.execute(stmt.order_by(c.requested_at, c.id).limit(limit + 1)))
        .scalars()
        .all()
    )
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].requested_at, rows[-1].id)
    return rows, None


async def create(
    session: AsyncSession,
    *,
    kind: str,
    pbx: str,
    queue: str,
    caller_hash: str,
    caller_display: str,
    number_sealed: str | None,
    now: datetime,
    due_at: datetime,
    note: str | None,
    created_by: str,
) -> Callback:
    row = Callback(
        kind=kind,
        pbx=pbx,
        linkedid=None,
        queue=queue,
        caller_hash=caller_hash,
        caller_display=caller_display,
        number_sealed=number_sealed,
        requested_at=now,
        due_at=due_at,
        status="open",
        attempts=0,
        note=note,
        created_by=created_by,
    )
    session.add(row)
    await session.flush()
    return row


async def get(session: AsyncSession, task_id: int, *, lock: bool = False) -> Callback | None:
    stmt = select(Callback).where(Callback.id == task_id)
    if lock and session.bind is not None and session.bind.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


def assign(row: Callback, agent_id: str) -> None:
    if row.status in FINAL:
        raise TaskError(f"task {row.id} is {row.status} already")
    if row.status == "dialling":
        raise TaskError(f"task {row.id} is being dialled by the service now")
    row.status = "assigned"
    row.assigned_to = agent_id


def complete(row: Callback, outcome: str, note: str | None, now: datetime) -> None:
    if row.status in FINAL:
        raise TaskError(f"task {row.id} is {row.status} already")
    if row.status == "dialling":
        raise TaskError(f"task {row.id} is being dialled by the service now")
    row.status = OUTCOMES[outcome]
    row.outcome = outcome
    row.completed_at = now
    if note is not None:
        row.note = note


def start_manual_attempt(row: Callback, agent_id: str, now: datetime) -> None:
    """An agent dials the task from its phone: it is the agent's, one attempt more."""
    if row.status in FINAL:
        raise TaskError(f"task {row.id} is {row.status} already")
    if row.status == "dialling":
        raise TaskError(f"task {row.id} is being dialled by the service now")
    if row.kind != "callback" or not row.number_sealed:
        raise TaskError(f"task {row.id} has no number to call (a message, or a withheld number)")
    row.status, row.assigned_to = "assigned", agent_id
    row.attempts += 1
    row.last_attempt_at = now


async def counts_by_queue(
    session: AsyncSession, now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """(not done yet, overdue) per queue."""
    c = Callback
    live = (
        await session.execute(
            select(c.queue, func.count()).where(c.status.in_(LIVE)).group_by(c.queue)
        )
    ).all()
    late = (
        await session.execute(
            select(c.queue, func.count())
            .where(c.status.in_(LIVE), c.due_at < now)
            .group_by(c.queue)
        )
    ).all()
    return {q: int(n) for q, n in live}, {q: int(n) for q, n in late}


# ---- the dialer ----------------------------------------------------------------------


@dataclass(frozen=True)
class DialTask:
    candidate: Candidate
    number_sealed: str


@dataclass(frozen=True, slots=True)
class DialScope:
    """Whose call-backs a PBX's dialer places (and reopens after a stop). A centre with
    several PBXs (ACD_PBXS) has one dialer per PBX: each returns the calls of its own PBX,
    and the centre's first PBX also those of no PBX or of one the centre no longer
    has, so no task is dialled by two PBXs and none by nobody. ``pbx`` None: one PBX,
    every task."""

    pbx: str | None = None
    others: tuple[str, ...] = ()
    primary: bool = True

    def where(self) -> ColumnElement[bool]:
        c = Callback
        if self.pbx is None:
            return true()
        if not self.primary:
            return c.pbx == self.pbx
        return or_(c.pbx == self.pbx, c.pbx.is_(None), c.pbx.not_in(self.others))


EVERY_TASK = DialScope()


async def dial_candidates(
    session: AsyncSession,
    queues: Iterable[str],
    now: datetime,
    max_attempts: int,
    retry: timedelta,
    limit: int = 200,
    scope: DialScope = EVERY_TASK,
) -> list[DialTask]:
    c = Callback
    queues = list(queues)
    if not queues:
        return []
    rows = (
        await session.execute(
            select(c.id, c.queue, c.caller_hash, c.requested_at, c.number_sealed)
            .where(
                scope.where(),
                c.kind == "callback",
                c.status == "open",
                c.number_sealed.is_not(None),
                c.attempts < max_attempts,
                c.queue.in_(queues),
                or_(c.last_attempt_at.is_(None), c.last_attempt_at <= now - retry),
            )
            .order_by(c.requested_at, c.id)
            .limit(limit)
        )
    ).all()
    return [
        DialTask(Candidate(int(i), q, h, at), sealed)
        for i, q, h, at, sealed in rows
        if sealed is not None
    ]


async def claim(session: AsyncSession, task_id: int, now: datetime) -> bool:
    """Take an open task for dialling (one attempt more); False if someone else has it."""
    result = await session.execute(
        update(Callback)
        .where(Callback.id == task_id, Callback.status == "open")
        .values(status="dialling", attempts=Callback.attempts + 1, last_attempt_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def dialled(
    session: AsyncSession,
    task_id: int,
    *,
    reached: bool,
    outcome: str,
    call_linkedid: str | None,
    now: datetime,
    max_attempts: int,
) -> int:
    """Record an attempt's end. Reached: the task is done and the number's other open
    call-back tasks of that queue are closed as duplicates (returns how many)."""
    row = await session.get(Callback, task_id)
    if row is None or row.status != "dialling":
        return 0
    row.call_linkedid = call_linkedid or row.call_linkedid
    if reached:
        row.status, row.outcome, row.completed_at = "done", "reached", now
        result = await session.execute(
            update(Callback)
            .where(
                Callback.id != task_id,
                Callback.kind == "callback",
                Callback.queue == row.queue,
                Callback.caller_hash == row.caller_hash,
                Callback.status == "open",
            )
            .values(status="cancelled", outcome="duplicate", completed_at=now)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
    if row.attempts >= max_attempts:
        # Given up: the note keeps the last attempt's result for the people after us.
        row.status, row.outcome, row.completed_at = "failed", "unreachable", now
        row.note = f"{row.note}\n" if row.note else ""
        row.note += f"dialler gave up after {row.attempts} attempts (last: {outcome})"
    else:
        row.status, row.outcome = "open", outcome
    return 0


async def left_dialling(session: AsyncSession, scope: DialScope = EVERY_TASK) -> list[int]:
    """The tasks of ``scope`` marked ``dialling``: by a dialer that stopped mid-call."""
    rows = await session.execute(
        select(Callback.id)
        .where(Callback.status == "dialling", scope.where())
        .order_by(Callback.id)
    )
    return [int(i) for i in rows.scalars()]


async def release_interrupted(
    session: AsyncSession, scope: DialScope = EVERY_TASK, ids: Sequence[int] | None = None
) -> int:
    """Tasks left ``dialling`` by a process that stopped mid-call: open again (those of
    ``scope``: never another PBX's, which its own dialer may be calling now; only
    ``ids`` if given)."""
    only = Callback.id.in_(list(ids)) if ids is not None else true()
    result = await session.execute(
        update(Callback)
        .where(Callback.status == "dialling", scope.where(), only)
        .values(status="open", outcome="interrupted")
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
