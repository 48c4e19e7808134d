"""Key rotation: the stored caller hashes and sealed numbers moved from the previous key
(``ACD_CALLER_HASH_KEY_PREVIOUS``) to the current one (``ACD_CALLER_HASH_KEY``), in the
background, while calls go on.

A keyed hash cannot be turned into another key's hash without the number behind it, and
the service keeps no number. It finds them:
- a sealed number (a call-back task) is opened with either key: its hash is re-made and
  it is sealed again under the current key;
- any other number is found by computing the previous key's hash of every Danish
  number (+45 and eight digits, first digit 2-9: 80 million) and matching it against the
  stored hashes. This is what makes the keyed hash pseudonymisation, not anonymisation:
  whoever holds the key can do it, which is why the key is a secret and is rotated. The
  search runs in a separate process at low priority (about 1 µs a number: 1-2 minutes on
  one core), never on the service's event loop.
A number outside that space (a foreign caller) whose task holds no sealed number cannot be
found: its rows keep the previous key's hash, which no key leads to once the previous key
is removed (its linkage to later calls is lost, not its counting). The re-key then reports
them as ``unresolved``.

Look-ups work throughout: a citizen's request searches under both keys
(``CallerPrivacy.hashes``), sealed numbers open under either. Rows are re-keyed in
batches by id (short transactions, a pause between), calls, tasks and the event log's
JSON (the caller's hash in ``data`` and ``raw``); a call still being written may be
written again with the previous key's hash by its last events, so the job runs again
until a pass changes nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.components import PeriodicJob
from app.privacy import CallerPrivacy
from app.store.models import Call, Callback, CallEvent

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]
DANISH = tuple(f"+45{d}" for d in "23456789")  # + seven more digits
_HEX32 = re.compile(r"\b[0-9a-f]{32}\b")


# --------------------------------------------------------------------------------------
# The search (in another process)
# --------------------------------------------------------------------------------------


def search(
    hash_key: bytes, targets: Iterable[str], prefixes: Sequence[str], digits: int = 7
) -> dict[str, str]:
    """Old hash -> canonical number, for each of ``targets`` (32-hex hashes under the
    HMAC key ``hash_key``) that is the hash of a number ``prefix`` + ``digits`` digits.
    HMAC-SHA256 by hand (inner and outer states copied, not re-made): ~1 µs a number."""
    wanted = {bytes.fromhex(t) for t in targets}
    found: dict[str, str] = {}
    if not wanted:
        return found
    padded = hash_key.ljust(64, b"\0") if len(hash_key) <= 64 else hashlib.sha256(hash_key).digest()
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
    form = b"%0" + str(digits).encode() + b"d"
    for prefix in prefixes:
        pre = inner.copy()
        pre.update(prefix.encode("ascii"))
        inner_copy, outer_copy = pre.copy, outer.copy
        for n in range(10**digits):
            i = inner_copy()
            i.update(form % n)
            o = outer_copy()
            o.update(i.digest())
            d = o.digest()[:16]
            if d in wanted:
                found[d.hex()] = prefix + (form % n).decode()
                wanted.discard(d)
                if not wanted:
                    return found
    return found


def _search_low(
    hash_key: bytes, targets: list[str], prefixes: Sequence[str], digits: int
) -> dict[str, str]:
    with contextlib.suppress(OSError):
        os.nice(10)  # the calls come first
    return search(hash_key, targets, prefixes, digits)


async def search_elsewhere(
    hash_key: bytes, targets: list[str], prefixes: Sequence[str], digits: int
) -> dict[str, str]:
    """``search`` in a separate process (it is CPU work for a minute or two)."""
    if not targets:
        return {}
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return await asyncio.get_running_loop().run_in_executor(
            pool, _search_low, hash_key, targets, tuple(prefixes), digits
        )


# --------------------------------------------------------------------------------------
# The re-key
# --------------------------------------------------------------------------------------


@dataclass
class Rekey:
    """What the re-key knows between its passes."""

    numbers: dict[str, str] = field(default_factory=dict)  # old hash -> canonical number
    hopeless: set[str] = field(default_factory=set)  # hashes searched and not found
    current: set[str] = field(default_factory=set)  # hashes known to be the current key's

    def new_of(self, privacy: CallerPrivacy) -> dict[str, str]:
        return {old: privacy.hash(number) for old, number in self.numbers.items()}


@dataclass
class RekeyResult:
    calls: int = 0
    callbacks: int = 0
    sealed: int = 0
    events: int = 0
    found: int = 0  # numbers found by the search this pass
    unresolved: int = 0  # stored hashes of neither key that no number was found for

    @property
    def changed(self) -> int:
        return self.calls + self.callbacks + self.sealed + self.events

    def as_dict(self) -> dict[str, int]:
        return {
            "calls": self.calls,
            "callbacks": self.callbacks,
            "sealed": self.sealed,
            "events": self.events,
            "found": self.found,
            "unresolved": self.unresolved,
        }


async def _walk(
    sessions: Sessions,
    model: Any,
    columns: Sequence[Any],
    fix: Callable[[Any], dict[str, Any] | None],
    batch: int,
    pause: float,
) -> int:
    """Every row of ``model`` by id in batches; ``fix`` a row -> its changed values."""
    after, changed = 0, 0
    while True:
        async with sessions.begin() as session:
            rows = (
                await session.execute(
                    select(model.id, *columns)
                    .where(model.id > after)
                    .order_by(model.id)
                    .limit(batch)
                )
            ).all()
            if not rows:
                break
            updates = []
            for row in rows:
                values = fix(row)
                if values:
                    updates.append({"_id": row.id, **values})
            if updates:
                table = model.__table__
                keys = [k for k in updates[0] if k != "_id"]
                stmt = (
                    update(table)
                    .where(table.c.id == bindparam("_id"))
                    .values({k: bindparam(f"v_{k}") for k in keys})
                )
                conn = await session.connection()
                await conn.execute(
                    stmt,
                    [{"_id": u["_id"], **{f"v_{k}": u[k] for k in keys}} for u in updates],
                )
            changed += len(updates)
        after = rows[-1].id
        if len(rows) < batch:
            break
        await asyncio.sleep(pause)
    return changed


async def _stored_hashes(sessions: Sessions) -> set[str]:
    async with sessions() as session:
        calls = (await session.execute(select(Call.caller_hash).distinct())).scalars()
        hashes = {h for h in calls if h}
        tasks = (await session.execute(select(Callback.caller_hash).distinct())).scalars()
        hashes |= {h for h in tasks if h}
    return hashes


async def run_rekey(
    sessions: Sessions,
    privacy: CallerPrivacy,
    state: Rekey,
    *,
    prefixes: Sequence[str] = DANISH,
    digits: int = 7,
    batch: int = 2000,
    pause: float = 0.02,
) -> RekeyResult:
    """One pass: learn the numbers of the stored previous-key hashes (sealed numbers,
    then the search), then re-key every row. Safe to run again; a pass that changes
    nothing means the previous key may be removed (once ``unresolved`` is acceptable)."""
    out = RekeyResult()
    previous = privacy.previous
    if previous is None:
        return out

    # 1. Sealed numbers: the number itself, and a seal under the current key.
    def reseal(row: Any) -> dict[str, Any] | None:
        if row.number_sealed is None or privacy.sealed_by_current(row.number_sealed):
            return None
        number = privacy.unseal(row.number_sealed)
        state.numbers[previous.hash(number)] = number
        state.current.add(privacy.hash(number))
        return {"number_sealed": privacy.seal(number)}

    out.sealed = await _walk(sessions, Callback, [Callback.number_sealed], reseal, batch, pause)

    # 2. The search for the rest.
    stored = await _stored_hashes(sessions)
    state.current |= set(state.new_of(privacy).values())
    targets = sorted(stored - state.current - set(state.numbers) - state.hopeless)
    if targets:
        found = await search_elsewhere(previous.hash_key, targets, prefixes, digits)
        state.numbers.update(found)
        state.hopeless |= set(targets) - set(found)
        state.current |= {privacy.hash(n) for n in found.values()}
        out.found = len(found)
    out.unresolved = len(state.hopeless & stored)
    new_of = state.new_of(privacy)

    # 3. The rows.
    def call_fix(row: Any) -> dict[str, Any] | None:
        new = new_of.get(row.caller_hash)
        return {"caller_hash": new} if new else None

    out.calls = await _walk(sessions, Call, [Call.caller_hash], call_fix, batch, pause)
    out.callbacks = await _walk(sessions, Callback, [Callback.caller_hash], call_fix, batch, pause)

    def event_fix(row: Any) -> dict[str, Any] | None:
        values: dict[str, Any] = {}
        for name in ("data", "raw"):
            doc = getattr(row, name)
            if doc:
                new_doc = _mapped(doc, new_of)
                if new_doc is not doc:
                    values[name] = new_doc
        if values and "data" not in values:
            values["data"] = row.data
        if values and "raw" not in values:
            values["raw"] = row.raw
        return values or None

    out.events = await _walk(
        sessions, CallEvent, [CallEvent.data, CallEvent.raw], event_fix, batch, pause
    )
    return out


def _mapped(doc: Any, new_of: dict[str, str]) -> Any:
    """``doc`` with every mapped hash replaced (the same object when nothing changed)."""
    if isinstance(doc, dict):
        changed = False
        out: dict[str, Any] = {}
        for k, v in doc.items():
            nv = _mapped(v, new_of)
            changed = changed or nv is not v
            out[k] = nv
        return out if changed else doc
    if isinstance(doc, list):
        items = [_mapped(v, new_of) for v in doc]
        return items if any(a is not b for a, b in zip(items, doc, strict=True)) else doc
    if isinstance(doc, str) and len(doc) >= 32:
        if doc in new_of:
            return new_of[doc]
        if _HEX32.search(doc):
            replaced = _HEX32.sub(lambda m: new_of.get(m.group(0), m.group(0)), doc)
            return replaced if replaced != doc else doc
    return doc


class RekeyJob(PeriodicJob):
    """Component: while a previous key is set, re-keys in the background every
    ``interval`` until a pass changes nothing; ``/ready`` shows how far it got."""

    name = "rekey"
    required = False

    def __init__(
        self,
        sessions: Sessions,
        privacy: CallerPrivacy,
        clock: Callable[[], datetime],
        *,
        interval: float = 600.0,
        first_delay: float = 60.0,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.privacy = privacy
        self.clock = clock
        self.interval = interval
        self.first_delay = first_delay
        self.state = Rekey()
        self.last: RekeyResult | None = None
        self.done = False

    async def run_once(self) -> RekeyResult:
        if self.done:
            return RekeyResult()
        result = await run_rekey(self.sessions, self.privacy, self.state)
        self.last, self.last_run, self.last_error = result, self.clock(), None
        log.info("re-key: %s", result.as_dict())
        if result.changed == 0:
            self.done = True
            log.warning(
                "re-key: every stored hash and sealed number is under the current key "
                "(%d unresolved); ACD_CALLER_HASH_KEY_PREVIOUS may be removed",
                result.unresolved,
            )
        return result

    def progress(self) -> dict[str, Any]:
        out: dict[str, Any] = {"done": self.done}
        if self.last is not None:
            out["last_pass"] = self.last.as_dict()
        return out

    async def _loop(self) -> None:
        await asyncio.sleep(self.first_delay)
        await super()._loop()
