"""The versioned live picture: numbered updates that rebuild each snapshot exactly,
catching up by number, and slow stream clients dropped instead of waited for."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.live.store import LiveStore, TooManyClients, apply_update, diff

entry = st.dictionaries(
    st.sampled_from(["waiting", "state", "wait"]),
    st.one_of(st.integers(0, 5), st.sampled_from(["a", "b"]), st.none()),
    max_size=3,
)
section = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), entry, max_size=4)
board = st.fixed_dictionaries(
    {
        "as_of": st.sampled_from(["t1", "t2", "t3"]),
        "queues": section,
        "agents": section,
        "calls": section,
        "centre": st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 3)),
    }
)


def frames(data: bytes) -> list[tuple[str, int, dict[str, Any]]]:
    """(event, id, data) of SSE frames."""
    out = []
    for block in data.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            out.append((fields["event"], int(fields["id"]), json.loads(fields["data"])))
    return out


@settings(max_examples=150)
@given(st.lists(board, min_size=1, max_size=12))
def test_updates_rebuild_every_snapshot_exactly(boards: list[dict[str, Any]]) -> None:
    owner = LiveStore(first_version=100)
    reader = LiveStore()
    for b in boards:
        update = owner.publish(b, published_at=1.0)
        if owner.version == 100 and update is None and reader.snapshot is None:
            reader.replace(json.loads(json.dumps(owner.snapshot)))
        elif update is not None:
            assert update["version"] == reader.version + 1
            assert reader.apply(json.loads(json.dumps(update)))
        assert owner.snapshot == {**b, "version": owner.version}
        assert reader.snapshot == owner.snapshot
    assert owner.version == 100 + sum(1 for a, b in itertools.pairwise(boards) if diff(a, b))


def test_an_unchanged_board_makes_no_version_and_removed_entries_are_null() -> None:
    store = LiveStore(first_version=7)
    b1 = {"as_of": "t1", "queues": {"q": {"waiting": 1}}, "agents": {}, "calls": {"c1": {}}}
    assert store.publish(b1, 0.0) is None and store.version == 7
    assert store.publish(dict(b1), 0.0) is None and store.version == 7
    b2 = {"as_of": "t2", "queues": {"q": {"waiting": 0}}, "agents": {}, "calls": {}}
    update = store.publish(b2, 5.0)
    assert update == {
        "version": 8,
        "as_of": "t2",
        "queues": {"q": {"waiting": 0}},
        "calls": {"c1": None},
        "published_at": 5.0,
    }
    assert apply_update({**b1, "version": 7}, update) == store.snapshot


def test_readers_refuse_a_gap_and_ignore_what_they_have() -> None:
    owner, reader = LiveStore(), LiveStore()
    updates = []
    owner.publish({"as_of": "t0", "queues": {}}, 0)
    reader.replace(dict(owner.snapshot or {}))
    for i in range(1, 4):
        updates.append(owner.publish({"as_of": f"t{i}", "queues": {}}, 0))
    assert not LiveStore().apply(updates[0])  # nothing to apply it to
    assert reader.apply(updates[0])
    assert not reader.apply(updates[2])  # 2 missing: fetch the snapshot
    assert reader.apply(updates[0])  # seen: fine, nothing changes
    assert reader.apply(updates[1]) and reader.apply(updates[2])
    assert reader.snapshot == owner.snapshot


async def test_a_subscriber_catches_up_by_number_or_gets_a_snapshot() -> None:
    store = LiveStore(first_version=10, history=3)
    store.publish({"as_of": "t0"}, 0)
    for i in range(1, 6):
        store.publish({"as_of": f"t{i}"}, 0)
    assert store.version == 15
    _, first = store.subscribe(None)
    assert [f[:2] for f in frames(b"".join(first))] == [("snapshot", 15)]
    _, first = store.subscribe(13)  # 14 and 15 are in the ring
    assert [f[:2] for f in frames(b"".join(first))] == [("update", 14), ("update", 15)]
    _, first = store.subscribe(12)  # 13, 14, 15 are the ring's three
    assert [f[1] for f in frames(b"".join(first))] == [13, 14, 15]
    for too_old_or_unknown in (11, 3, 99):
        _, first = store.subscribe(too_old_or_unknown)
        assert [f[:2] for f in frames(b"".join(first))] == [("snapshot", 15)]
    sub, first = store.subscribe(15)
    assert first == []
    store.publish({"as_of": "t6"}, 0)
    assert frames(sub.queue.get_nowait())[0][:2] == ("update", 16)


async def test_a_slow_subscriber_is_dropped_and_the_others_go_on() -> None:
    dropped = []
    store = LiveStore(client_queue=3, on_drop=lambda: dropped.append(1))
    store.publish({"as_of": "t0"}, 0)
    slow, _ = store.subscribe(None)
    fast, _ = store.subscribe(None)
    for i in range(1, 6):
        store.publish({"as_of": f"t{i}"}, 0)
        while not fast.queue.empty():
            fast.queue.get_nowait()
    assert slow.dropped and not fast.dropped
    assert dropped == [1] and store.clients == 1
    assert slow.queue.qsize() == 3  # bounded: nothing queued beyond the limit


async def test_the_number_of_stream_clients_is_bounded() -> None:
    store = LiveStore(max_clients=2)
    a, _ = store.subscribe(None)
    store.subscribe(None)
    with pytest.raises(TooManyClients):
        store.subscribe(None)
    store.unsubscribe(a)
    store.subscribe(None)


def test_documents_are_encoded_once_per_version() -> None:
    store = LiveStore()
    assert store.cached("x", lambda s: s) is None
    store.publish({"as_of": "t0"}, 0)
    calls = []

    def build(snap: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        return {"v": snap["version"]}

    assert store.cached("x", build) == store.cached("x", build) == b'{"v":1}'
    store.publish({"as_of": "t1"}, 0)
    assert store.cached("x", build) == b'{"v":2}'
    assert len(calls) == 2
    store.clear()
    assert store.cached("x", build) is None and store.version == 0


def test_the_stream_frames_are_well_formed() -> None:
    store = LiveStore(first_version=5)
    store.publish({"as_of": "ø"}, 0)
    sub, first = store.subscribe(None)
    (event, version, data) = frames(b"".join(first))[0]
    assert (event, version, data) == ("snapshot", 5, {"as_of": "ø", "version": 5})
    assert asyncio.Queue is type(sub.queue)
