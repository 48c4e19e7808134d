"""The configuration registry (app/config): one loader with line-numbered errors for every
kind of file, one immutable versioned snapshot, a reload that swaps it whole or not at all,
and a new kind of file plugged in with one entry."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from app.config.errors import ConfigError, ConfigInvalid, Lines, line_of
from app.config.kinds import KINDS, QUEUES, WORK, Before, FileKind, validated
from app.config.loader import flow_files, load_config
from app.config.registry import ConfigRegistry
from app.config.snapshot import ConfigSnapshot
from app.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "ivr_flows"
    shutil.copytree(ROOT / "ivr_flows", target)
    return target


def replace(path: Path, old: str, new: str, first: bool = False) -> int:
    """Replace once (the only one, or the ``first``); the line it is on."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1 or (first and old in text), old
    path.write_text(text.replace(old, new), encoding="utf-8")
    return text[: text.index(old)].count("\n") + 1


def test_the_shipped_folder_is_one_snapshot(folder: Path) -> None:
    snap = load_config(folder)
    assert isinstance(snap, ConfigSnapshot) and len(snap.version) == 12
    assert snap.queues is not None and "dagpenge" in snap.queue_names
    assert snap.work is not None and snap.work.pause_reason("lunch") is not None
    assert list(snap.flows) == ["jobcenter"]
    assert [Path(f).name for f in snap.files] == [
        "queues.yaml",
        "work.yaml",
        "goals.yaml",
        "retention.yaml",
        "jobcenter.yaml",
    ]
    assert [p.name for p in flow_files(folder)] == ["jobcenter.yaml"]
    # Immutable: no field, no mapping can be changed in place.
    with pytest.raises(AttributeError):
        snap.version = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.flows["other"] = snap.flows["jobcenter"]  # type: ignore[index]
    # The same files, the same version; another byte, another.
    assert load_config(folder).version == snap.version
    replace(folder / "work.yaml", "title: Frokost", "title: Frokostpause")
    assert load_config(folder).version != snap.version


@pytest.mark.parametrize(
    "file, old, new, where, message",
    [
        ("queues.yaml", "calls_per_year: 113709", "calls_per_year: -1",
         "queues.0.calls_per_year", "greater than or equal to 0"),
        ("work.yaml", "{code: lunch, title: Frokost}", "{code: Lunch, title: Frokost}",
         "pause_reasons.0.code", "should match pattern"),
        ("work.yaml", "    dagpenge:\n", "    dagpengge:\n", "dispositions.queues.dagpengge",
         "'dagpengge' is not a queue of queues.yaml"),
        ("jobcenter.yaml", "queue: dagpenge}", "queue: dagpenger}", "nodes.koe_dagpenge.queue",
         "unknown queue 'dagpenger'"),
        ("retention.yaml", "audit_log: 730", "audit_log: 30", "audit_log",
         "greater than or equal to 180"),
        ("retention.yaml", "spill_files: 30", "spil_files: 30", "spil_files",
         "unknown field"),
    ],
)  # fmt: skip
def test_every_kind_reports_its_errors_at_their_line(
    folder: Path, file: str, old: str, new: str, where: str, message: str
) -> None:
    line = replace(folder / file, old, new)
    with pytest.raises(ConfigInvalid) as exc:
        load_config(folder)
    (error,) = exc.value.errors
    assert (error.file, error.path, error.line) == (str(folder / file), where, line), error
    assert message in error.message


def test_all_errors_of_all_files_come_at_once(folder: Path) -> None:
    replace(folder / "work.yaml", "{code: lunch, title: Frokost}", "{code: 7, title: Frokost}")
    replace(folder / "jobcenter.yaml", "start: velkommen", "start: velkomen")
    (folder / "extra.yaml").write_text("name: x\nname: y\n", encoding="utf-8")
    with pytest.raises(ConfigInvalid) as exc:
        load_config(folder)
    files = {Path(e.file).name for e in exc.value.errors}
    assert files == {"work.yaml", "jobcenter.yaml", "extra.yaml"}
    assert "duplicate key 'name' (first at line 1)" in str(exc.value)


def test_missing_and_unreadable_files(folder: Path) -> None:
    (folder / "work.yaml").unlink()
    assert load_config(folder).work is None  # optional: the agents' endpoints answer 503
    (folder / "queues.yaml").unlink()
    with pytest.raises(ConfigInvalid) as exc:
        load_config(folder)
    assert [str(e) for e in exc.value.errors] == [
        f"{folder}/queues.yaml: missing (the service needs it)"
    ]
    (folder / "queues.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigInvalid, match="cannot read"):
        load_config(folder)


async def test_a_rejected_reload_leaves_the_running_snapshot_whole(folder: Path) -> None:
    metrics = Metrics()
    registry = ConfigRegistry(folder, metrics, sighup=False)
    assert registry.load().ok
    running = registry.current
    # A good queue and a broken flow in one change: nothing of it may be taken.
    with (folder / "queues.yaml").open("a", encoding="utf-8") as fh:
        fh.write("  - name: boligstoette\n    title: Boligstøtte\n")
    replace(folder / "jobcenter.yaml", "tries: 3\n", "tries: 0\n", first=True)
    result = await registry.reload()
    assert not result.ok and result.version == running.version
    assert registry.current is running and "boligstoette" not in registry.current.queue_names
    assert "nodes.hovedmenu.tries" in str(result.errors[0])
    health = await registry.check()
    assert health.ok and "tries" in str(health.detail["rejected"])
    # Fixed: swapped in whole.
    replace(folder / "jobcenter.yaml", "tries: 0\n", "tries: 3\n", first=True)
    result = await registry.reload()
    assert result.ok and registry.current is not running
    assert "boligstoette" in registry.current.queue_names
    assert registry.last_errors == ()
    assert metrics.ivr_flow_reloads.labels("ok")._value.get() == 2
    assert metrics.ivr_flow_reloads.labels("rejected")._value.get() == 1


async def test_readers_see_the_old_set_or_the_new_one_never_a_mix(folder: Path) -> None:
    """While reloads run, every read of ``current`` is one of the loaded snapshots, its
    queues and its flows of the same files."""
    registry = ConfigRegistry(folder, sighup=False)
    registry.load()
    seen: set[int] = set()
    stop = asyncio.Event()

    async def reader() -> None:
        while not stop.is_set():
            snap = registry.current
            flow_queues = {
                n.queue for n in snap.flows["jobcenter"].nodes.values() if hasattr(n, "queue")
            }
            assert flow_queues <= set(snap.queue_names)
            seen.add(id(snap))
            await asyncio.sleep(0)

    task = asyncio.create_task(reader())
    for i in range(5):
        with (folder / "queues.yaml").open("a", encoding="utf-8") as fh:
            fh.write(f"  - name: extra_{i}\n    title: Ekstra {i}\n")
        assert (await registry.reload()).ok
    stop.set()
    await task
    assert len(seen) >= 2


async def test_a_start_with_errors_runs_on_an_empty_snapshot_until_a_reload(
    folder: Path,
) -> None:
    replace(folder / "queues.yaml", "wrapup_seconds: 30", "wrapup_seconds: x")
    registry = ConfigRegistry(folder, sighup=False)
    assert not registry.load().ok
    assert registry.current.version == "" and registry.current.queues is None
    health = await registry.check()
    assert not health.ok and health.state == "not_loaded"
    replace(folder / "queues.yaml", "wrapup_seconds: x", "wrapup_seconds: 30")
    assert (await registry.reload()).ok and (await registry.check()).ok


# ---- a new kind of file, plugged in with one entry ------------------------------------


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    queues: tuple[str, ...]


class Departments(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    departments: tuple[Department, ...]


def _departments(data: Any, file: str, lines: Lines, before: Before) -> Departments:
    value = validated(Departments, data, file, lines)
    known = set(before["queues"].names)
    errors = [
        ConfigError(file, f"departments.{i}.queues.{j}", f"unknown queue {q!r}", line_of(
            lines, ("departments", str(i), "queues", str(j))
        ))
        for i, d in enumerate(value.departments)
        for j, q in enumerate(d.queues)
        if q not in known
    ]  # fmt: skip
    if errors:
        raise ConfigInvalid(errors)
    return value


DEPARTMENTS: FileKind[Departments] = FileKind(
    "departments", "departments.yaml", _departments, after=("queues",)
)


async def test_a_new_kind_plugs_in_with_one_entry(folder: Path) -> None:
    (folder / "departments.yaml").write_text(
        "departments:\n  - name: nord\n    queues: [dagpenge, kontanthjaelp]\n", encoding="utf-8"
    )
    registry = ConfigRegistry(folder, sighup=False, kinds=(*KINDS, DEPARTMENTS))
    assert registry.load().ok
    snap = registry.current
    assert snap[DEPARTMENTS] == Departments(
        departments=(Department(name="nord", queues=("dagpenge", "kontanthjaelp")),)
    )
    assert list(snap.flows) == ["jobcenter"]  # not taken for a menu
    assert snap[QUEUES] is snap.queues and snap[WORK] is snap.work
    replace(folder / "departments.yaml", "kontanthjaelp]", "kontanthjelp]")
    result = await registry.reload()
    assert not result.ok and registry.current is snap
    assert [str(e) for e in result.errors] == [
        f"{folder}/departments.yaml:3: departments.0.queues.1: unknown queue 'kontanthjelp'"
    ]
