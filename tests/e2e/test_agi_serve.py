"""`acd serve` as deployed: its FastAGI port takes a call as Asterisk makes it, SIGHUP and
POST /v1/ivr/reload change the menu without a restart, a broken file changes nothing.

The service runs with the real clock, so its menu copy is open around the clock (00:00-24:00,
no holidays): what the test sees does not depend on when it runs."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agi_fake_asterisk import Caller, FakeAsterisk

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rewrite(flows: Path, old: str, new: str) -> None:
    path = flows / "jobcenter.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def service(
    tmp_path: Path,
) -> Iterator[tuple[subprocess.Popen[str], str, int, Path, dict[str, str]]]:
    flows = tmp_path / "ivr_flows"
    shutil.copytree(ROOT / "ivr_flows", flows)
    for day in ("mon", "tue", "wed"):
        _rewrite(flows, f'{day}: "08:00-15:00"', f'{day}: "00:00-24:00"')
    _rewrite(flows, 'thu: "08:00-17:00"', 'thu: "00:00-24:00"')
    _rewrite(flows, 'fri: "08:00-13:00"', 'fri: "00:00-24:00"')
    _rewrite(flows, "sat: closed", 'sat: "00:00-24:00"')
    _rewrite(flows, "sun: closed", 'sun: "00:00-24:00"')
    _rewrite(flows, "public_holidays: true", "public_holidays: false")
    http_port, agi_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACD_")}
    env.update(
        ACD_DATABASE_URL=f"sqlite:///{tmp_path / 'acd.db'}",
        ACD_IVR_FLOWS=str(flows),
        ACD_AGI_PORT=str(agi_port),
        ACD_HTTP_PORT=str(http_port),
        ACD_CALLER_HASH_KEY="e2e-caller-hash-key-0123456789",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--migrate"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "service did not become ready"
            time.sleep(0.1)
        yield proc, base, agi_port, flows, env
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _call(agi_port: int, keys: list[str], uniqueid: str) -> dict[str, str]:
    pbx = FakeAsterisk("127.0.0.1", agi_port)
    result = asyncio.run(pbx.call(Caller(answers=keys), uniqueid=uniqueid))
    assert result.closed_by_service
    return result.variables


def test_serve_runs_the_menu_and_reloads_it(
    service: tuple[subprocess.Popen[str], str, int, Path, dict[str, str]],
) -> None:
    proc, base, agi_port, flows, env = service
    # An operator with the admin role, made as in production: `acd users add`.
    made = subprocess.run(
        [sys.executable, "-m", "app", "users", "add", "ops", "--role", "admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    admin = {"X-API-Key": made.stdout.strip()}
    assert made.stdout.strip() not in made.stderr  # the secret is printed once
    assert httpx.post(f"{base}/v1/ivr/reload", timeout=5).status_code == 401
    assert _call(agi_port, ["2"], "1.1")["ACD_QUEUE"] == "dagpenge"
    assert _call(agi_port, ["5", "3"], "1.2")["ACD_QUEUE"] == "andre_forvaltninger"
    metrics = httpx.get(f"{base}/metrics", timeout=5).text
    assert 'acd_agi_sessions_total{result="routed"} 2.0' in metrics
    assert 'acd_ivr_keys_total{key="5",menu="hovedmenu"} 1.0' in metrics

    # SIGHUP: operations changed the file; the next call gets the new menu.
    _rewrite(flows, '"1": koe_kontanthjaelp\n      "2": koe_dagpenge',
             '"1": koe_dagpenge\n      "2": koe_kontanthjaelp')  # fmt: skip
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while 'acd_ivr_flow_reloads_total{result="ok"} 2.0' not in httpx.get(f"{base}/metrics").text:
        assert time.monotonic() < deadline, "SIGHUP did not reload"
        time.sleep(0.05)
    assert _call(agi_port, ["2"], "1.3")["ACD_QUEUE"] == "kontanthjaelp"
    assert proc.poll() is None  # SIGHUP did not stop the service

    # A broken file over the API: rejected with the error; the running menu stays.
    _rewrite(flows, "queue: dagpenge}", "queue: dagpenger}")
    bad = httpx.post(f"{base}/v1/ivr/reload", headers=admin, timeout=5)
    assert bad.status_code == 422
    assert "unknown queue 'dagpenger'" in bad.json()["errors"][0]["text"]
    assert _call(agi_port, ["2"], "1.4")["ACD_QUEUE"] == "kontanthjaelp"

    _rewrite(flows, "queue: dagpenger}", "queue: dagpenge}")
    good = httpx.post(f"{base}/v1/ivr/reload", headers=admin, timeout=5)
    assert good.status_code == 200 and good.json()["status"] == "reloaded"
