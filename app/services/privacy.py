"""Personal data over time, the use cases: the purge of what is past its retention, and a
citizen's request to see (export) or erase their data. Used by the purge job in the
service, by ``acd privacy`` and by the admin API (``/v1/privacy``); every run is audited
with counts only (who asked and why for a citizen's request), never a number or a hash.

The purge never removes detail rows the reports still need: calls, queue visits, survey
answers, tasks and events are purged only before the first day whose report tallies are
not final (``app.reports.rollup.final_before``), and the days about to be purged are
counted (made final) first where the report context is there. The per-day tallies stay,
so a quarterly or yearly report still works after the calls behind it are gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import jsoncodec
from app.acd.kpi import day_bounds, local_day
from app.components import PeriodicJob
from app.messages import MessageFiles
from app.privacy import CallerPrivacy, canonical_number, mask_number
from app.reports.rollup import Context, ensure_days, final_before
from app.retention import DEFAULTS, RetentionConfig
from app.services.errors import Invalid
from app.store import privacy as store
from app.store.models import AuditLog, Callback

log = logging.getLogger(__name__)

Sessions = store.Sessions
COUNT_AHEAD_DAYS = 14  # days a purge run counts (makes final) before purging their detail


# --------------------------------------------------------------------------------------
# The audit
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requester:
    """Who asked (an API user, or the operator at ``acd privacy``), and why."""

    actor: str
    role: str
    reason: str = ""
    via: str = "CLI"  # CLI | JOB (the API's requests are audited by its middleware)


async def audit(
    sessions: Sessions, who: Requester, action: str, detail: dict[str, Any], now: datetime
) -> None:
    """One ``audit_log`` row (counts and the reason; never a number or a hash)."""
    async with sessions.begin() as session:
        session.add(
            AuditLog(
                at=now,
                actor=who.actor[:64],
                role=who.role[:16],
                action=action,
                method=who.via,
                path=f"acd {action.replace('.', ' ')}",
                status_code=200,
                target=None,
                detail={"reason": who.reason, **detail} if who.reason else detail,
            )
        )


# --------------------------------------------------------------------------------------
# Purge
# --------------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    counts: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False
    # Up to when report detail was purged (the first day not final), or why not at all.
    report_detail_before: date | None = None
    held: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"dry_run": self.dry_run, "counts": self.counts}
        out["report_detail_before"] = (
            self.report_detail_before.isoformat() if self.report_detail_before else None
        )
        if self.held:
            out["held"] = self.held
        out["seconds"] = round(self.seconds, 3)
        return out


def cutoffs(r: RetentionConfig, now: datetime, report: datetime | None) -> store.Cutoffs:
    def ago(days: int) -> datetime:
        return now - timedelta(days=days)

    return store.Cutoffs(
        raw_frames=ago(r.raw_frames),
        events=ago(r.events),
        calls=ago(r.calls),
        surveys=ago(r.surveys),
        callbacks=ago(r.callbacks),
        sealed_numbers=ago(r.sealed_numbers),
        voice_messages=ago(r.voice_messages),
        agent_states=ago(r.agent_states),
        audit_log=ago(r.audit_log),
        dead_letters=ago(r.dead_letters),
        stored_reports=ago(r.stored_reports),
        report=report,
    )


async def _count_ahead(sessions: Sessions, ctx: Context, r: RetentionConfig, now: datetime) -> None:
    """Count the oldest days whose detail is past its period and whose tallies are not
    final yet (a day counted long after its repeat window is final), a few per run."""
    tz = ctx.tz
    async with sessions() as session:
        oldest = await store.oldest_call(session)
    if oldest is None:
        return
    shortest = min(r.events, r.calls, r.surveys, r.callbacks)
    last = local_day(now - timedelta(days=shortest), tz)
    first = local_day(oldest, tz)
    days = [first + timedelta(days=i) for i in range((last - first).days)][:COUNT_AHEAD_DAYS]
    if days:
        async with sessions.begin() as session:
            await ensure_days(session, days, ctx, now)


async def purge(
    sessions: Sessions,
    *,
    retention: RetentionConfig,
    now: datetime,
    tz: ZoneInfo,
    files: MessageFiles,
    spill_dir: Path,
    ctx: Context | None,
    dry_run: bool = False,
    batching: store.Batching | None = None,
) -> PurgeResult:
    """Delete what is past its period (module doc); counts per kind."""
    started = asyncio.get_running_loop().time()
    batching = batching or store.Batching()
    out = PurgeResult(dry_run=dry_run)
    if ctx is not None and not dry_run:
        await _count_ahead(sessions, ctx, retention, now)
    async with sessions() as session:
        first_open = await final_before(session)
        oldest = await store.oldest_call(session)
        if first_open is not None and oldest is not None:
            # A day before it that was never counted is not covered by the tallies.
            gap = await store.first_uncounted(session, local_day(oldest, tz), first_open, tz)
            first_open = min(first_open, gap) if gap is not None else first_open
    report_cut: datetime | None = None
    if first_open is None:
        out.held = "no report tallies are stored: calls, visits, answers and tasks are kept"
    else:
        out.report_detail_before = first_open
        report_cut = day_bounds(first_open, tz)[0]
    cut = cutoffs(retention, now, report_cut)

    async def delete_files(session: AsyncSession, ids: list[int]) -> int:
        rows = await session.execute(select(Callback.recording).where(Callback.id.in_(ids)))
        return sum(files.delete(rec) for rec in rows.scalars() if rec)

    for step in store.purge_steps(cut, delete_files):
        if dry_run:
            out.counts[step.name] = await store.count(sessions, step)
            continue
        done, extra = await store.run_step(sessions, step, batching)
        out.counts[step.name] = done
        if step.name == "calls":
            out.counts["queue_visits"] = extra
        elif step.before is not None:
            out.counts[f"{step.name}_files"] = out.counts.get(f"{step.name}_files", 0) + extra
    out.counts["spill_files"] = _old_dead_files(
        spill_dir, now - timedelta(days=retention.spill_files), dry_run
    )
    out.seconds = asyncio.get_running_loop().time() - started
    return out


def _old_dead_files(folder: Path, before: datetime, dry_run: bool) -> int:
    """Left-over dead-letter files (``*.dead.jsonl``) older than ``before``. Spill files
    themselves are never deleted here: their records are not in the database yet."""
    if not folder.is_dir():
        return 0
    gone = 0
    for path in folder.glob("*.dead.jsonl"):
        try:
            if datetime.fromtimestamp(path.stat().st_mtime, UTC) < before:
                if not dry_run:
                    path.unlink()
                gone += 1
        except FileNotFoundError:
            continue
    return gone


# --------------------------------------------------------------------------------------
# A citizen's request
# --------------------------------------------------------------------------------------


def caller_hashes(privacy: CallerPrivacy, number: str) -> tuple[str, ...]:
    if not canonical_number(number):
        raise Invalid("the caller's number holds no phone number")
    return privacy.hashes(number)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


async def export(
    sessions: Sessions, privacy: CallerPrivacy, number: str, files: MessageFiles
) -> dict[str, Any]:
    """Everything stored about the caller of ``number``, as JSON-able data."""
    hashes = caller_hashes(privacy, number)
    async with sessions() as session:
        found = await store.find(session, hashes)
    return {
        "caller": mask_number(number),
        "calls": [
            {
                "id": c.id,
                "started_at": _iso(c.started_at),
                "ended_at": _iso(c.ended_at),
                "caller": c.caller_display,
                "dialled": c.dialled,
                "keys": c.keys,
                "queue": c.queue,
                "outcome": c.outcome,
                "agent": c.agent,
                "wait_seconds": c.wait_seconds,
                "talk_seconds": c.talk_seconds,
                "transferred_to": c.transferred_to,
            }
            for c in found.calls
        ],
        "queue_visits": [
            {
                "queue": v.queue,
                "entered_at": _iso(v.entered_at),
                "outcome": v.outcome,
                "agent": v.agent,
                "wait_seconds": v.wait_seconds,
                "talk_seconds": v.talk_seconds,
            }
            for v in found.visits
        ],
        "survey_answers": [
            {
                "started_at": _iso(s.started_at),
                "queue": s.queue,
                "agent": s.agent,
                "friendliness": s.friendliness,
                "wait": s.wait,
                "overall": s.overall,
            }
            for s in found.surveys
        ],
        "registrations": [
            {
                "call_id": r.call_id,
                "agent": r.agent_id,
                "reason": r.reason,
                "resolved": r.resolved,
                "transferred_to": r.transferred_to,
                "note": r.note,
            }
            for r in found.registrations
        ],
        "callbacks": [
            {
                "id": t.id,
                "kind": t.kind,
                "queue": t.queue,
                "caller": t.caller_display,
                "requested_at": _iso(t.requested_at),
                "status": t.status,
                "outcome": t.outcome,
                "completed_at": _iso(t.completed_at),
                "note": t.note,
                "number_kept_sealed": t.number_sealed is not None,
            }
            for t in found.callbacks
        ],
        "messages": [
            {"callback_id": t.id, "file": p.name, "bytes": p.stat().st_size}
            for t in found.callbacks
            for p in files.files_of(t.recording)
        ],
        "events": found.events,
        "refused_records": len(found.dead_letters),
    }


def is_empty(exported: dict[str, Any]) -> bool:
    return not any(
        v for k, v in exported.items() if k not in ("caller",) and isinstance(v, list | int)
    )


async def erase(
    sessions: Sessions,
    privacy: CallerPrivacy,
    number: str,
    *,
    now: datetime,
    files: MessageFiles,
    spill_dir: Path,
) -> dict[str, int]:
    """Remove or irreversibly anonymise all of the caller's data (app/store/privacy.py
    ``erase``), their voice messages' files and their records in the spill files;
    counts per table."""
    hashes = caller_hashes(privacy, number)
    async with sessions.begin() as session:
        done = await store.erase(session, hashes, now)
    counts = dict(done.counts)
    counts["message_files"] = sum(files.delete(rec) for rec in done.recordings)
    counts["spill_records"] = scrub_spill_files(
        spill_dir, hashes, done.displays, done.pseudonym, done.renamed
    )
    return counts


# --------------------------------------------------------------------------------------
# The spill files
# --------------------------------------------------------------------------------------


def scrub_spill_files(
    folder: Path,
    hashes: tuple[str, ...],
    displays: set[str],
    pseudonym: str,
    renamed: dict[tuple[str, str], str],
) -> int:
    """Take the caller out of the records waiting in the spill and dead-letter files
    (``*.jsonl``) beside the event log. Each record is rewritten where it stands, padded
    with spaces to its old length: the writer may be appending to the file or reading it
    back from its saved offset at the same time, and both stay valid."""
    if not folder.is_dir() or not hashes:
        return 0
    changed = 0
    for path in sorted(folder.glob("*.jsonl")):
        changed += _scrub_file(path, hashes, displays, pseudonym, renamed)
    return changed


def _scrub_file(
    path: Path,
    hashes: tuple[str, ...],
    displays: set[str],
    pseudonym: str,
    renamed: dict[tuple[str, str], str],
) -> int:
    needles = [h.encode() for h in hashes]
    lines: list[tuple[int, bytes]] = []
    with path.open("rb") as fh:
        offset = 0
        for line in fh:
            if line.endswith(b"\n"):
                lines.append((offset, line))
            offset += len(line)
    # The caller's calls in the file: those of a record carrying their hash.
    theirs = set(renamed)
    docs: dict[int, Any] = {}
    for i, (_, line) in enumerate(lines):
        if any(n in line for n in needles):
            doc = jsoncodec.loads(line)
            docs[i] = doc
            key = _key_of(doc)
            if key is not None:
                theirs.add(key)
            displays = displays | _displays_of(doc)
    renamed = dict(renamed)
    for key in theirs - set(renamed):  # calls not in the database yet
        renamed[key] = store.new_call_id()
    renames = {old: new for (_, old), new in renamed.items()}
    changed = 0
    with path.open("r+b") as fh:
        for i, (at, line) in enumerate(lines):
            doc = docs.get(i)
            if doc is None:
                if not theirs or b"linkedid" not in line:
                    continue
                parsed = jsoncodec.loads(line)
                if _key_of(parsed) not in theirs:
                    continue
                doc = parsed
            new = _fit(_scrubbed(doc, hashes, displays, pseudonym, renames), len(line))
            if new is None:  # cannot be fitted: the record goes (its line left blank)
                new = b" " * (len(line) - 1) + b"\n"
            fh.seek(at)
            fh.write(new)
            changed += 1
    return changed


def _key_of(doc: Any) -> tuple[str, str] | None:
    rec = doc.get("record", doc) if isinstance(doc, dict) else None
    if isinstance(rec, dict) and isinstance(rec.get("pbx"), str) and rec.get("linkedid"):
        return (rec["pbx"], str(rec["linkedid"]))
    return None


def _displays_of(doc: Any) -> set[str]:
    rec = doc.get("record", doc) if isinstance(doc, dict) else None
    if isinstance(rec, dict) and isinstance(rec.get("caller_display"), str):
        return {rec["caller_display"]}
    return set()


_ANSWERS = ("friendliness", "wait", "overall")


def _scrubbed(
    doc: Any,
    hashes: tuple[str, ...],
    displays: set[str],
    pseudonym: str,
    renames: dict[str, str],
) -> Any:
    out = store.scrub_value(doc, hashes, displays - {"", store.ERASED}, pseudonym, renames)
    rec = out.get("record", out) if isinstance(out, dict) else None
    if isinstance(rec, dict):
        if "raw" in rec:
            rec["raw"] = None
        if all(k in rec for k in _ANSWERS):
            # The answers go; what is left is an empty survey of no one (and it must fit
            # in the line's length: nulls are longer than digits).
            for k in (*_ANSWERS, "agent", "queue"):
                rec[k] = None
            rec["completed"] = False
        if "note" in rec and "caller_hash" in rec:
            rec["note"] = None
    return out


def _fit(doc: Any, length: int) -> bytes | None:
    body = jsoncodec.dumps_bytes(doc)
    if len(body) + 1 > length:
        return None
    return body + b" " * (length - 1 - len(body)) + b"\n"


# --------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------


class PurgeJob(PeriodicJob):
    """Component: the purge, every ``ACD_PURGE_INTERVAL_MINUTES``, logged and audited
    with its counts."""

    name = "purge"
    required = False

    def __init__(
        self,
        sessions: Sessions,
        *,
        retention: Callable[[], RetentionConfig | None],
        ctx: Callable[[], Context | None],
        clock: Callable[[], datetime],
        tz: ZoneInfo,
        files: MessageFiles,
        spill_dir: Path,
        interval: float,
        first_delay: float = 300.0,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.retention = retention
        self.ctx = ctx
        self.clock = clock
        self.tz = tz
        self.files = files
        self.spill_dir = spill_dir
        self.interval = interval
        self.first_delay = first_delay  # not in the start-up rush
        self.last: PurgeResult | None = None

    async def run_once(self) -> PurgeResult:
        now = self.clock()
        result = await purge(
            self.sessions,
            retention=self.retention() or DEFAULTS,
            now=now,
            tz=self.tz,
            files=self.files,
            spill_dir=self.spill_dir,
            ctx=self.ctx(),
        )
        removed = {k: v for k, v in result.counts.items() if v}
        if removed:
            log.info("purge: removed %s in %.1f s", removed, result.seconds)
            await audit(
                self.sessions,
                Requester("purge", "system", via="JOB"),
                "privacy.purge",
                result.as_dict(),
                now,
            )
        self.last, self.last_run, self.last_error = result, now, None
        return result

    def progress(self) -> dict[str, Any]:
        if self.last is None:
            return {}
        return {"removed": {k: v for k, v in self.last.counts.items() if v}}

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay)
        await super()._loop()
