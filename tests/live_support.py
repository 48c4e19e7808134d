"""Domain events for live-state tests, the way the AMI normaliser makes them: agents log
in and pause, callers join queues, agents ring, answer and hang up, callers abandon.

``Feed`` numbers its events and keeps a clock; ``apply`` hands each to a sink (a
``CallCentre.apply``, a ``Pipeline.on_event`` or a running service's ``Runtime.emit``).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from app.acd import events as ev
from app.privacy import Caller

if TYPE_CHECKING:
    from app.acd.kpi import DayBook

T0 = datetime(2014, 11, 4, 8, 0, tzinfo=UTC)  # 09:00 in Copenhagen


@dataclass
class Feed:
    sink: Callable[[ev.DomainEvent], object]
    now: datetime = T0
    pbx: str = "pbx1"
    _n: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def at(self, seconds: float) -> Feed:
        self.now = self.now + timedelta(seconds=seconds)
        return self

    def _base(self, linkedid: str = "", uniqueid: str = "") -> dict[str, object]:
        return {
            "at": self.now,
            "pbx": self.pbx,
            "key": f"t{next(self._n)}",
            "linkedid": linkedid,
            "uniqueid": uniqueid or linkedid,
        }

    def _send(self, event: ev.DomainEvent) -> None:
        self.sink(event)

    # ---- agents ----------------------------------------------------------------------

    def login(self, queue: str, agent: str, name: str = "", penalty: int = 0) -> None:
        self._send(
            ev.MemberAdded(
                **self._base(),  # type: ignore[arg-type]
                queue=queue,
                interface=f"PJSIP/{agent}",
                member_name=name or agent,
                status=1,
                penalty=penalty,
                membership="dynamic",
            )
        )

    def logout(self, queue: str, agent: str) -> None:
        self._send(
            ev.MemberRemoved(
                **self._base(),  # type: ignore[arg-type]
                queue=queue,
                interface=f"PJSIP/{agent}",
                member_name=agent,
            )
        )

    def pause(self, queue: str, agent: str, reason: str = "", paused: bool = True) -> None:
        self._send(
            ev.MemberPaused(
                **self._base(),  # type: ignore[arg-type]
                queue=queue,
                interface=f"PJSIP/{agent}",
                member_name=agent,
                status=1,
                paused=paused,
                paused_reason=reason,
            )
        )

    def device(self, agent: str, state: str) -> None:
        """The agent's phone changes device state (NOT_INUSE, UNAVAILABLE, ...)."""
        self._send(
            ev.DeviceStateChanged(
                **self._base(),  # type: ignore[arg-type]
                device=f"PJSIP/{agent}",
                state=state,
            )
        )

    # ---- callers ---------------------------------------------------------------------

    def arrive(self, call: str, number: str = "+45 ••••••56") -> None:
        self._send(
            ev.ChannelCreated(
                **self._base(call),  # type: ignore[arg-type]
                channel=f"PJSIP/trunk-{call}",
                caller=Caller(hash=f"h{call}", display=number),
                context="from-trunk",
                exten="82565682",
                state=4,
            )
        )

    def join(self, call: str, queue: str, position: int = 1) -> None:
        self._send(
            ev.QueueCallerJoined(
                **self._base(call),  # type: ignore[arg-type]
                channel=f"PJSIP/trunk-{call}",
                queue=queue,
                position=position,
                count=position,
                caller=Caller(hash=f"h{call}", display="+45 ••••••56"),
            )
        )

    def ring(self, call: str, queue: str, agent: str) -> None:
        self._send(
            ev.AgentCalled(
                **self._base(call),  # type: ignore[arg-type]
                channel=f"PJSIP/trunk-{call}",
                queue=queue,
                interface=f"PJSIP/{agent}",
                member_name=agent,
                agent_channel=f"PJSIP/{agent}-{call}",
                agent_uniqueid=f"{call}.a",
            )
        )

    def answer(self, call: str, queue: str, agent: str) -> None:
        self._send(
            ev.QueueCallerLeft(
                **self._base(call),  # type: ignore[arg-type]
                channel=f"PJSIP/trunk-{call}",
                queue=queue,
                position=1,
                count=0,
            )
        )
        self._send(
            ev.AgentConnected(
                **self._base(call),  # type: ignore[arg-type]
                channel=f"PJSIP/trunk-{call}",
                queue=queue,
                interface=f"PJSIP/{agent}",
                member_name=agent,
                agent_channel=f"PJSIP/{agent}-{call}",
                agent_uniqueid=f"{call}.a",
                hold_time=0,
                ring_time=0,
            )
        )

    def complete(self, call: str, queue: str, agent: str) -> None:
        self._send(
            ev.AgentCompleted(
                **self._base(call),  # type: ignore[arg-type]
                channel=f"PJSIP/trunk-{call}",
                queue=queue,
                interface=f"PJSIP/{agent}",
                member_name=agent,
                agent_channel=f"PJSIP/{agent}-{call}",
                agent_uniqueid=f"{call}.a",
                hold_time=0,
                talk_time=0,
                reason="caller",
            )
        )

    def abandon(self, call: str, queue: str) -> None:
        self._send(
            ev.QueueCallerAbandoned(
                **self._base(call),  # type: ignore[arg-type]
                channel=f"PJSIP/trunk-{call}",
                queue=queue,
                position=1,
                original_position=1,
                hold_time=0,
            )
        )

    def hangup(self, call: str) -> None:
        self._send(
            ev.ChannelHungUp(
                **self._base(call),  # type: ignore[arg-type]
                channel=f"PJSIP/trunk-{call}",
                cause=16,
                cause_txt="Normal Clearing",
            )
        )


# --------------------------------------------------------------------------------------
# A service on a real port (streams need one: httpx's ASGI transport buffers responses)
# --------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Run ``app`` (lifespan included) under uvicorn on a free port; yields its base URL."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        await task
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        # As ``acd serve`` does on SIGTERM: end the live streams, then stop.
        app.state.rt.live.close_streams()
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@dataclass
class SseClient:
    """Follows /v1/stream like a browser's EventSource: keeps the picture, and the last
    event id for a reconnect."""

    state: dict[str, Any] | None = None
    last_id: int | None = None
    events: list[tuple[str, int]] = field(default_factory=list)

    def take(self, event: str, ident: int, data: dict[str, Any]) -> None:
        from app.live.store import apply_update

        self.events.append((event, ident))
        if event == "snapshot":
            self.state = data
        else:
            assert self.state is not None and ident == self.state["version"] + 1, (
                ident,
                self.state and self.state["version"],
            )
            self.state = apply_update(self.state, data)
        self.last_id = ident

    async def follow(
        self,
        client: Any,
        url: str,
        until: Callable[[SseClient], bool],
        within: float = 10.0,
    ) -> None:
        """Read events until ``until(self)`` holds (then disconnect)."""
        headers = {} if self.last_id is None else {"Last-Event-ID": str(self.last_id)}

        async def run() -> None:
            async with client.stream("GET", url + "/v1/stream", headers=headers) as response:
                assert response.status_code == 200, response.status_code
                assert response.headers["content-type"].startswith("text/event-stream")
                fields: dict[str, str] = {}
                async for line in response.aiter_lines():
                    if line == "":
                        if "event" in fields:
                            self.take(
                                fields["event"], int(fields["id"]), json.loads(fields["data"])
                            )
                            if until(self):
                                return
                        fields = {}
                    elif not line.startswith(":") and ": " in line:
                        key, value = line.split(": ", 1)
                        fields[key] = value

        await asyncio.wait_for(run(), within)


def pbx_morning(
    pbx: str, prefix: str, busy: bool, combined: DayBook | None = None, start: datetime = T0
) -> tuple[dict[str, Any], datetime]:
    """A morning on one PBX from ``start``: its board (version 1) and the time it ends;
    its decided visits also go into ``combined`` (one book fed every call of a centre)."""
    from app.acd.board import QueueInfo, build_board
    from app.acd.ewt import HandleTimes
    from app.acd.kpi import DayBook, KpiConfig
    from app.acd.replay import take
    from app.acd.state import CallCentre

    catalogue = [
        QueueInfo("dagpenge", "Dagpenge", 30),
        QueueInfo("kontanthjaelp", "Kontanthjælp", 15),
    ]
    centre = CallCentre(pbx)
    book = DayBook(ZoneInfo("Europe/Copenhagen"), KpiConfig())
    handle = HandleTimes()
    feed = Feed(lambda e: centre.apply(e), now=start, pbx=pbx)  # type: ignore[arg-type, func-returns-value]
    feed.login("dagpenge", "agent1", "Mette")
    feed.login("kontanthjaelp", "agent2", "Søren")
    feed.pause("kontanthjaelp", "agent2", "Frokost")
    for i, (queue, wait, answered) in enumerate(
        [("dagpenge", 20, True), ("dagpenge", 3, False), ("kontanthjaelp", 200, False)]
        + ([("dagpenge", 95, True), ("dagpenge", 240, True)] if busy else [])
    ):
        call = f"{prefix}{i}"
        feed.at(30).arrive(call)
        feed.join(call, queue)
        if answered:
            feed.at(wait - 1).ring(call, queue, "agent1")
            feed.at(1).answer(call, queue, "agent1")
            feed.at(60 + 7 * i).complete(call, queue, "agent1")
            feed.hangup(call)
        else:
            feed.at(wait).abandon(call, queue)
            feed.hangup(call)
    # One caller still waits, one is in the menu.
    feed.at(5).arrive(f"{prefix}w")
    feed.join(f"{prefix}w", "dagpenge")
    feed.at(12).arrive(f"{prefix}m")
    drained = centre.drain()
    take(book, drained, handle)
    if combined is not None:
        take(combined, copy.deepcopy(drained), HandleTimes())
    board = build_board(centre, book, handle, feed.now, catalogue, config=KpiConfig())
    return {**board, "version": 1}, feed.now
