"""`acd demo`, the README's first command, as a user runs it: a real process that serves
the API and, within seconds, shows calls of the simulated PBX going through the service."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_prints_where_to_look_and_calls_flow(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACD_")}
    # Whatever the environment says, the demo uses its embedded defaults.
    env["ACD_DATABASE_URL"] = "postgresql://nobody@127.0.0.1:1/none"
    env["ACD_REDIS_URL"] = "redis://127.0.0.1:1/0"
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "demo",
            "--port",
            str(port),
            "--speed",
            "30",
            "--db",
            str(tmp_path / "demo.db"),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(10)]
        text = "".join(lines)
        assert "simulated PBX" in text
        key = next(x.split("API key:")[1].strip() for x in lines if "API key:" in x)
        headers = {"X-API-Key": key}
        deadline = time.monotonic() + 60
        items: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{base}/v1/calls", params={"limit": 50}, headers=headers, timeout=5)
                items = r.json()["items"]
                if sum(1 for i in items if i["outcome"]) >= 3:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert sum(1 for i in items if i["outcome"]) >= 3, items
        assert all(i["dialled"] in ("82565682", "+4582565682") for i in items)
        assert httpx.get(f"{base}/v1/calls", timeout=5).status_code == 401
        ready = httpx.get(f"{base}/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["parts"]["ami"]["state"] == "logged_in"
        assert ready.json()["parts"]["database"]["detail"]["backend"] == "sqlite"
        assert "redis" not in ready.json()["parts"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    out = proc.stdout.read() if proc.stdout else ""
    assert f"{base}/docs" in text + out
