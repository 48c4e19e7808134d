"""`acd demo`, the README's first command, as a user runs it: a real process that serves
the API and, within seconds at any hour, shows a centre at work (the morning so far is
played at once), with the roster its PBX uses, an agent's key that can act, and the line
that points the CLI at its database. A second start with ``--continue`` keeps the data;
a start without it is clean. A taken port is said in one line before anything starts."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACD_")}
    # Whatever the environment says, the demo uses its embedded defaults.
    env["ACD_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    env["ACD_REDIS_URL"] = "redis://127.0.0.1:1/0"
    env["ACD_IVR_FLOWS"] = str(ROOT / "ivr_flows")
    # A demo that does not stop is sent SIGABRT: faulthandler prints every thread's stack.
    env["PYTHONFAULTHANDLER"] = "1"
    env.update(extra)
    return env


class Demo:
    """One `acd demo` process; ``banner`` is what it printed before serving."""

    def __init__(self, cwd: Path, port: int, *args: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "demo", "--port", str(port), "--scale", "0.25", *args],
            env=_env(),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        lines: list[str] = []
        while not lines or "Stop with Ctrl-C" not in lines[-1]:
            line = self.proc.stdout.readline()
            assert line, f"the demo ended early: {self.proc.stderr.read()}"  # type: ignore[union-attr]
            lines.append(line)
        self.banner = "".join(lines)

    def field(self, label: str) -> str:
        return re.search(rf"{label}:\s+(\S+)", self.banner).group(1)  # type: ignore[union-attr]

    def get(self, path: str, key: str, **params: Any) -> httpx.Response:
        return httpx.get(self.base + path, headers={"X-API-Key": key}, params=params, timeout=10)

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)  # the stacks of what holds it, in err
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.proc.stderr.read() if self.proc.stderr else ""
        assert self.proc.returncode == 0, err
        return err


def _until(check: Any, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"not within {within} s: {last!r}")


@pytest.mark.slow
def test_the_demo_is_alive_at_once_agents_can_act_and_a_rerun_continues_or_starts_clean(
    tmp_path: Path,
) -> None:
    port = _free_port()
    demo = Demo(tmp_path, port)
    try:
        assert "simulated PBX" in demo.banner and f"{demo.base}/docs" in demo.banner
        admin, agent = demo.field("Admin key"), demo.field("Agent key")
        assert re.search(r"Agent key:\s+\S+\s+\(agent101\)", demo.banner)
        # Whatever the hour, the morning so far is played at once: finished calls within
        # seconds, and the day's figures are there.
        started = time.monotonic()
        calls = _until(
            lambda: (
                items := demo.get("/v1/calls", admin, limit=100).json()["items"],
                sum(1 for i in items if i["outcome"]) >= 20 and items,
            )[1]
        )
        assert time.monotonic() - started < 45
        assert all(i["dialled"] in ("82565682", "+4582565682") for i in calls)
        assert not any(i["data_gap"] for i in calls)
        # The live figures are a snapshot made every ACD_LIVE_INTERVAL (1 s): they follow
        # the calls within it.
        today = _until(
            lambda: (
                t := demo.get("/v1/queues", admin).json()["centre"]["today"],
                t if t["offered"] >= 20 else None,
            )[1],
            within=5.0,
        )
        assert today["offered"] >= 20
        assert httpx.get(demo.base + "/v1/calls", timeout=5).status_code == 401

        # The agent's key acts on the PBX through the roster (docs/api.md's example).
        pause = httpx.post(
            f"{demo.base}/v1/agents/agent101/pause",
            headers={"X-API-Key": agent},
            json={"reason": "break"},
            timeout=10,
        )
        assert pause.status_code == 200, pause.text
        assert all(q["paused"] and q["reason"] == "break" for q in pause.json()["queues"])
        card = demo.get("/v1/agents/agent101/today", agent)
        assert card.status_code == 200, card.text
        assert demo.get("/v1/agents/agent102/today", agent).status_code == 403

        # The printed CLI line works on the running demo's database.
        line = re.search(r"(ACD_DATABASE_URL=\S+) (\S+) users add anne", demo.banner)
        assert line is not None
        env = _env(ACD_DATABASE_URL=line.group(1).split("=", 1)[1])
        cli = [sys.executable, "-m", "app", "users"]
        add = subprocess.run([*cli, "add", "anne", "--role", "agent", "--agent", "agent102"],
                             env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert add.returncode == 0, add.stderr
        anne = add.stdout.strip()
        assert demo.get("/v1/agents/agent102/today", anne).status_code == 200
        ready = httpx.get(f"{demo.base}/ready", timeout=5).json()
        assert ready["parts"]["ami"]["state"] == "logged_in"
        assert ready["parts"]["database"]["detail"]["backend"] == "sqlite"
        assert "redis" not in ready["parts"]
        # The morning so far is played at once: later in the day there is more of it, and
        # the checks above can be done before it is. Until the PBX's clock is there (then
        # the demo logs it, checked below, within its 0.2 s look).
        played = re.search(r"(\d{4}-\d\d-\d\d): the morning up to (\d\d:\d\d) at once", demo.banner)
        assert played is not None, demo.banner
        live_from = dt.datetime.fromisoformat(f"{played[1]}T{played[2]}").replace(
            tzinfo=ZoneInfo("Europe/Copenhagen")
        )
        _until(
            lambda: (
                dt.datetime.fromisoformat(demo.get("/v1/queues", admin).json()["as_of"])
                >= live_from
            ),
            within=120,
        )
        time.sleep(1.0)
    finally:
        first_log = demo.stop()
    assert "the day up to" in first_log
    first_ids = {c["linkedid"] for c in calls}

    # --continue: the same day goes on where it stopped, with the same users and calls.
    demo = Demo(tmp_path, port, "--continue")
    try:
        admin = demo.field("Admin key")
        assert "from " in demo.banner.split("playing", 1)[1].splitlines()[0]
        assert demo.get("/v1/agents/agent102/today", anne).status_code == 200
        kept = demo.get("/v1/calls", admin, limit=500).json()["items"]
        assert first_ids <= {c["linkedid"] for c in kept}
    finally:
        demo.stop()

    # A start without --continue is clean: no old users, calls or keys.
    demo = Demo(tmp_path, port)
    try:
        admin = demo.field("Admin key")
        assert demo.get("/v1/calls", anne).status_code == 401
        items = demo.get("/v1/calls", admin, limit=500).json()["items"]
        assert not any(c["data_gap"] for c in items)
    finally:
        demo.stop()


def test_a_taken_port_is_said_in_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for argv, env in (
            (["demo", "--port", str(port)], _env()),
            (["demo"], _env(ACD_HTTP_PORT=str(port))),  # as `acd serve` takes it
            (["serve", "--port", str(port)], _env(ACD_DATABASE_URL=f"sqlite:///{tmp_path}/s.db")),
        ):
            run = subprocess.run([sys.executable, "-m", "app", *argv], env=env, cwd=tmp_path,
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
            assert run.returncode == 2, run.stderr
            assert run.stderr == f"acd: port {port} is in use; use --port (or ACD_HTTP_PORT)\n"
            assert run.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing was started or created
