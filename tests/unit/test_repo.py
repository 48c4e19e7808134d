"""The repository's promises: README table, the two commands, CI, container files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.cli import COMMANDS, main
from app.settings import Settings, describe_settings

ROOT = Path(__file__).resolve().parents[2]


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = {m.group(1) for m in re.finditer(r"^\| `(ACD_[A-Z_]+)` \|", readme, re.M)}
    assert table == {var for var, _default, _doc in describe_settings()}


def test_readme_quick_start_has_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick, re.S)
    commands = [line for b in blocks for line in b.splitlines() if line.strip()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [x for x in ci.splitlines() if x.strip() and not x.startswith("#")]
    assert lines[-1] == "exec bash scripts/test.sh"


@pytest.mark.parametrize("name", [c.name for c in COMMANDS])
def test_every_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert f"usage: acd {name}" in capsys.readouterr().out


def test_dockerfile_is_multistage_nonroot_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert re.search(r"^USER acd$", text, re.M)
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/health" in text
    assert re.search(r'^CMD \["acd", "serve"', text, re.M)
    # The build stage has what setup.py needs to build the parser's C speed-up.
    build = text.split("\nFROM ")[1]
    assert re.search(r"^COPY .*\bsetup\.py\b", build, re.M) and "gcc" in build


SECRETS = {
    "ACD_AMI_SECRET": "ami-secret",
    "ACD_CALLER_HASH_KEY": "0123456789abcdef",
    "POSTGRES_PASSWORD": "pg-password",
    "GRAFANA_PASSWORD": "grafana-password",
}


def test_compose_file_has_the_whole_stack_and_no_secrets() -> None:
    path = ROOT / "deploy" / "docker-compose.yml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert {
        "asterisk",
        "postgres",
        "redis",
        "migrate",
        "acd-1",
        "acd-2",
        "prometheus",
        "alertmanager",
        "grafana",
    } <= set(spec["services"])
    for service in spec["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"SECRET|PASSWORD|HASH_KEY", key):
                # From the environment, and required: `${VAR:?message}`, never a default.
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), (
                    f"{key} must come from the environment, required"
                )


def test_compose_runs_two_replicas_of_the_service_the_same_way() -> None:
    """acd-1 and acd-2: one image, one command, one environment (so one PBX, one database,
    one Redis), each with its own host ports and spill volume; the schema is migrated once
    before either starts; every name in their environment is a setting of the service."""
    spec = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text(encoding="utf-8"))
    services = spec["services"]
    serve = ["acd", "serve"]
    replicas = sorted(name for name, s in services.items() if s.get("command", [])[:2] == serve)
    assert replicas == ["acd-1", "acd-2"]
    one, two = (services[name] for name in replicas)
    for key in ("image", "build", "command", "environment", "depends_on", "read_only", "tmpfs"):
        assert one[key] == two[key], key
    assert one["command"] == ["acd", "serve"]  # no --migrate: two at once would race
    assert one["read_only"] is True and one["cap_drop"] == ["ALL"]
    assert one["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    migrate = services["migrate"]
    assert migrate["command"] == ["acd", "migrate"] and migrate["image"] == one["image"]
    assert migrate["environment"]["ACD_DATABASE_URL"] == one["environment"]["ACD_DATABASE_URL"]
    # Each its own host ports (HTTP, FastAGI) and its own spill volume, on the settings' ports.
    settings = Settings.model_fields
    host_ports = [p.split(":")[0] for name in replicas for p in services[name]["ports"]]
    assert len(set(host_ports)) == len(host_ports) == 4
    for name in replicas:
        targets = sorted(int(p.split(":")[1]) for p in services[name]["ports"])
        assert targets == sorted([settings["http_port"].default, settings["agi_port"].default])
    volumes = [v for name in replicas for v in services[name]["volumes"]]
    assert len(set(volumes)) == 2 and all(v.endswith(":/srv/acd/var") for v in volumes)
    # A misspelt ACD_* name would be ignored by the service: none here.
    known = {var for var, _default, _doc in describe_settings()}
    for name in (*replicas, "migrate"):
        assert set(services[name]["environment"]) <= known, name
    # Prometheus scrapes both.
    prometheus = yaml.safe_load(
        (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    )
    (job,) = [c for c in prometheus["scrape_configs"] if c["job_name"] == "acd"]
    targets = [t for c in job["static_configs"] for t in c["targets"]]
    assert targets == [f"{name}:{settings['http_port'].default}" for name in replicas]


def _compose(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    cmd = [tool] if tool else ["docker", "compose"]
    if not tool and subprocess.run([*cmd, "version"], capture_output=True).returncode != 0:
        pytest.fail(
            "neither docker-compose nor the docker compose plugin is installed "
            "(scripts/test.sh installs Debian's docker-compose)"
        )
    clean = {k: v for k, v in os.environ.items() if k not in SECRETS}
    return subprocess.run(
        [*cmd, "-f", str(ROOT / "deploy" / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        env={**clean, **env},
        cwd=ROOT / "deploy",  # no .env of the checkout's root is read
    )


def test_docker_compose_config_accepts_the_file_with_its_secrets() -> None:
    result = _compose(SECRETS)
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_to_start_without_each_secret() -> None:
    for name in SECRETS:
        result = _compose({k: v for k, v in SECRETS.items() if k != name})
        assert result.returncode != 0, name
        assert f"set {name}" in result.stderr, (name, result.stderr)
        # An empty value is no secret either.
        result = _compose({**SECRETS, name: ""})
        assert result.returncode != 0 and f"set {name}" in result.stderr, name
