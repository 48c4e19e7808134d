"""schemathesis against the service's own OpenAPI: no input makes a 5xx.

The service runs as in production, over real sockets: uvicorn on 127.0.0.1 in a thread of
its own, PostgreSQL, and the simulated PBX on AMI (so agent actions reach a PBX instead of
answering 503 "no PBX"). Every operation gets schema-conforming and schema-violating
cases (bounded: ``EXAMPLES`` of each), sent with an admin key, an agent's key, or none.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from app.main import create_app
from app.settings import load_settings
from app.sim.manager import ManagerUser
from app.sim.pbx import PbxConfig
from app.sim.runner import SimulatedPbx, load_queues
from tests.auth_support import key, make_user
from tests.work_support import seed

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 20  # per operation and mode; 60 found nothing more (~30 s instead of ~12 s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service(threading.Thread):
    """The simulated PBX and the service under uvicorn, in one thread with its own loop."""

    def __init__(self, db_url: str, tmp: Path) -> None:
        super().__init__(daemon=True, name="fuzzed-service")
        self.db_url, self.tmp = db_url, tmp
        self.port = _free_port()
        self.server: uvicorn.Server | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _main(self) -> None:
        agi_port = _free_port()
        config = PbxConfig(
            queues=load_queues(ROOT / "ivr_flows" / "queues.yaml"),
            timestampevents=True,
            agi_address=f"127.0.0.1:{agi_port}",
        )
        users = {"acd": ManagerUser("acd", "acdsecret")}
        async with SimulatedPbx(config, mode="real", ami_port=0, users=users) as sim:
            app = create_app(
                load_settings(
                    database_url=self.db_url,
                    ami_host="127.0.0.1",
                    ami_port=sim.ami_port,
                    ami_secret="acdsecret",
                    agi_port=agi_port,
                    ivr_flows=str(ROOT / "ivr_flows"),
                    spill_dir=str(self.tmp),
                    caller_hash_key="fuzz-caller-hash-key-0123456789",
                    ami_confirm_timeout=3.0,
                )
            )
            self.server = uvicorn.Server(
                uvicorn.Config(
                    app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
                )
            )
            await self.server.serve()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.error is None, self.error
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError("the service did not become ready")

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        self.join(timeout=30)


@pytest.fixture
def service(pg_url: str, tmp_path: Path) -> Iterator[tuple[Service, dict[str, dict[str, str]]]]:
    asyncio.run(seed(pg_url, datetime.now(UTC)))
    who = {
        "admin": key(asyncio.run(make_user(pg_url, "admin", "admin"))),
        "agent": key(asyncio.run(make_user(pg_url, "anne", "agent", agent_id="agent1"))),
        "none": {},
    }
    svc = Service(pg_url, tmp_path)
    svc.start()
    try:
        svc.wait_ready()
        yield svc, who
    finally:
        svc.stop()
    assert svc.error is None, svc.error


def _stream_status(request: dict[str, Any]) -> tuple[int, str]:
    keep = {"method", "url", "headers", "params", "cookies"}
    with httpx.stream(**{k: v for k, v in request.items() if k in keep}, timeout=15) as r:
        first = next(r.iter_text(), "") if r.status_code == 200 else r.read().decode()
        return r.status_code, first


def _fuzz(
    svc: Service,
    operation: Any,
    mode: GenerationMode,
    principals: list[dict[str, str]],
    seen: dict[str, int],
    server_errors: list[str],
) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    counter = iter(range(10**6))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def probe(case: Any) -> None:
        headers = principals[next(counter) % len(principals)]
        if operation.path == "/v1/stream":
            # The live stream never ends by design: send the generated request ourselves,
            # take its status and first bytes, then hang up.
            status, text = _stream_status(case.as_transport_kwargs(svc.base, headers))
        else:
            response = case.call(base_url=svc.base, headers=headers, timeout=15)
            status, text = response.status_code, response.text
        seen[label] = seen.get(label, 0) + 1
        if status >= 500:
            server_errors.append(
                f"{label} [{mode}] -> {status}: {text[:300]}\n"
                f"    {case.as_curl_command(headers=headers)[:400]}"
            )

    try:
        probe()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (no parameters, no body).
        assert mode is GenerationMode.NEGATIVE, label


def test_no_input_makes_a_server_error(service: tuple[Service, dict[str, dict[str, str]]]) -> None:
    svc, who = service
    schema = schemathesis.openapi.from_url(f"{svc.base}/openapi.json")
    server_errors: list[str] = []
    seen: dict[str, int] = {}
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(svc, result.ok(), mode, list(who.values()), seen, server_errors)
    assert len(seen) >= 20, sorted(seen)  # every operation was exercised
    assert not server_errors, "\n".join(server_errors[:20])
