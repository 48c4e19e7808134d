"""A trivial FastAGI service that speaks the dialplan contract: a stand-in for the real
IVR (app/agi + app/ivr) in simulator tests and benchmarks. Not the product.

Per call (script ``ivr``): GET FULL VARIABLE ${CHANNEL(linkedid)}, ANSWER, a welcome,
then the menu tree of a key mapping (``acd/menu-main``, sub-menus ``acd/menu-<digit>``),
a wrong key or a time-out replays the menu (three tries, then ``ACD_ROUTE=hangup``); on a
queue: ``ACD_ROUTE=queue``, ``ACD_QUEUE``, ``ACD_SURVEY`` (every ``survey_every``-th
call). Script ``survey``: three ``acd/survey-*`` questions, then a thank-you.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class _Node:
    children: dict[str, _Node | str] = field(default_factory=dict)


def build_menu(mapping: Mapping[str, str | Sequence[str]]) -> _Node:
    root = _Node()
    for queue, keys in mapping.items():
        path = list(keys)
        node = root
        for key in path[:-1]:
            nxt = node.children.get(key)
            if not isinstance(nxt, _Node):
                nxt = _Node()
                node.children[key] = nxt
            node = nxt
        if path:
            node.children[path[-1]] = queue
    return root


class StubIvr:
    """Asyncio FastAGI server (see module doc); counts what it did."""

    def __init__(
        self,
        keys: Mapping[str, str | Sequence[str]],
        host: str = "127.0.0.1",
        port: int = 0,
        survey_every: int = 5,
    ) -> None:
        self.menu = build_menu(keys)
        self.host = host
        self.port = port
        self.survey_every = survey_every
        self.sessions = 0
        self.commands = 0
        self.routed: dict[str, int] = {}
        self.errors = 0
        self._server: asyncio.Server | None = None
        self._calls = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        try:
            env: dict[str, str] = {}
            while True:
                line = await reader.readline()
                if not line:
                    return
                text = line.decode("utf-8").rstrip("\n")
                if not text:
                    break
                key, _, value = text.partition(": ")
                env[key] = value

            async def cmd(command: str) -> str:
                self.commands += 1
                writer.write((command + "\n").encode("utf-8"))
                await writer.drain()
                reply = (await reader.readline()).decode("utf-8").rstrip("\n")
                if reply.startswith("520-"):
                    while not reply.startswith("520 "):
                        reply = (await reader.readline()).decode("utf-8").rstrip("\n")
                if reply == "HANGUP" or not reply:
                    raise ConnectionResetError("caller hung up")
                return reply

            def result(reply: str) -> str:
                return reply.split("result=", 1)[1].split(" ", 1)[0] if "result=" in reply else ""

            if env.get("agi_network_script") == "survey":
                for q in ("venlighed", "ventetid", "tilfredshed"):
                    await cmd(f"GET DATA acd/survey-{q} 5000 1")
                await cmd('STREAM FILE acd/info-tak ""')
                return
            self._calls += 1
            await cmd('GET FULL VARIABLE "${CHANNEL(linkedid)}"')
            await cmd("ANSWER")
            await cmd('STREAM FILE acd/info-velkommen ""')
            node = self.menu
            prompt = "acd/menu-main"
            tries = 0
            while True:
                digit = result(await cmd(f"GET DATA {prompt} 5000 1"))
                if digit == "-1":
                    return
                nxt = node.children.get(digit)
                if nxt is None:
                    tries += 1
                    if tries >= 3:
                        await cmd('SET VARIABLE ACD_ROUTE "hangup"')
                        return
                    await cmd('STREAM FILE acd/info-ugyldigt ""')
                    continue
                tries = 0
                if isinstance(nxt, _Node):
                    node, prompt = nxt, f"acd/menu-{digit}"
                    continue
                survey = "1" if self._calls % self.survey_every == 0 else "0"
                await cmd('SET VARIABLE ACD_ROUTE "queue"')
                await cmd(f'SET VARIABLE ACD_QUEUE "{nxt}"')
                await cmd(f'SET VARIABLE ACD_SURVEY "{survey}"')
                self.routed[nxt] = self.routed.get(nxt, 0) + 1
                return
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        except Exception:  # pragma: no cover - a stub bug must not kill the server
            self.errors += 1
            raise
        finally:
            with contextlib.suppress(Exception):
                writer.close()
