"""`acd migrate` and `acd serve` as a user runs them: a real process, a real socket."""

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


ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACD_")}
    env["ACD_DATABASE_URL"] = f"sqlite:///{tmp_path / 'serve.db'}"
    # The service runs from tmp_path: give it the menu files and a FastAGI port of its own.
    env["ACD_IVR_FLOWS"] = str(ROOT / "ivr_flows")
    env["ACD_AGI_PORT"] = str(_free_port())
    env["ACD_CALLER_HASH_KEY"] = "e2e-serve-caller-hash-key-0123"  # serve refuses without
    env.update(extra)
    return env


def test_migrate_then_serve_answers_health_ready_metrics(tmp_path: Path) -> None:
    env = _env(tmp_path)
    migrate = subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert "migrated to head" in migrate.stdout

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "service did not answer"
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        ready = httpx.get(f"{base}/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert "acd_ami_connected" in metrics.text
        # A live stream is open (the wallboard) when the service is told to stop.
        users = subprocess.run(
            [sys.executable, "-m", "app", "users", "add", "wall", "--role", "integration"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        key = users.stdout.strip().splitlines()[-1]
        stream = socket.create_connection(("127.0.0.1", port), timeout=5)
        stream.sendall(f"GET /v1/stream HTTP/1.1\r\nHost: acd\r\nX-API-Key: {key}\r\n\r\n".encode())
        got = b""
        while b"event: snapshot" not in got:
            chunk = stream.recv(65536)
            assert chunk, got
            got += chunk
    finally:
        proc.send_signal(signal.SIGINT)
        stopping = time.monotonic()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert time.monotonic() - stopping < 5, "the open stream held the shutdown"
    stream.close()
