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
from app.settings import describe_settings

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
    assert {"asterisk", "postgres", "redis", "acd", "prometheus", "alertmanager", "grafana"} <= set(
        spec["services"]
    )
    for service in spec["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"SECRET|PASSWORD|HASH_KEY", key):
                # From the environment, and required: `${VAR:?message}`, never a default.
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), (
                    f"{key} must come from the environment, required"
                )


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
