"""The layout the modules' docstrings and docs/ draw, checked on the source itself:
no import cycles (the runtime, the web app, the routers, the FastAGI server and the dialer
included), a runtime without FastAPI, routers that take their parts as typed
dependencies, one owner of the host's clock, a core (app/acd) that imports nothing from the
menu (app/ivr)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in APP.rglob("*.py")}


def imported(path: Path) -> Iterator[str]:
    """Every name an ``import`` anywhere in the file names (in functions and
    ``TYPE_CHECKING`` blocks too: a cycle there is a cycle of the design)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def app_imports(name: str) -> set[str]:
    out = set()
    for target in imported(MODULES[name]):
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)
    return out


GRAPH = {name: app_imports(name) for name in MODULES}


def cycles() -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def closure(name: str) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo.extend(GRAPH[v])
    return seen


def test_no_import_cycles_outside_the_simulator() -> None:
    # The simulated PBX (app/sim) is a program of its own with its own cycles; the
    # service has none, TYPE_CHECKING imports included.
    service = [c for c in cycles() if any(not m.startswith("app.sim") for m in c)]
    assert service == []


def test_the_runtime_is_a_leaf_without_the_web() -> None:
    reach = closure("app.runtime")
    assert not [m for m in reach if m == "app.main" or m.startswith("app.api")]
    for name in reach:
        third = {t.partition(".")[0] for t in imported(MODULES[name])}
        assert not third & {"fastapi", "starlette", "uvicorn"}, name
    # Only the web app, the routers' dependencies and the command line build or read it.
    users = {m for m, deps in GRAPH.items() if "app.runtime" in deps}
    assert users <= {"app.main", "app.api.deps", "app.cli"}
    # Components are given what they use: none reaches back for the runtime or the app.
    for component in ("app.agi.server", "app.dialer", "app.pipeline", "app.live.hub"):
        assert not closure(component) & {"app.runtime", "app.main"}, component


def test_the_core_imports_nothing_from_the_menu() -> None:
    # app/acd is the core the menu (app/ivr) builds on: the calendar both read is the
    # core's (app/acd/calendar.py), and operators' tooling lives in app/tools.
    for name in sorted(m for m in GRAPH if m == "app.acd" or m.startswith("app.acd.")):
        assert not [m for m in GRAPH[name] if m.startswith("app.ivr")], name
    assert not (APP / "ivr" / "calendar.py").exists()
    assert not (APP / "ivr" / "asterisk_config.py").exists()


def test_the_state_machine_is_split_the_h11_way() -> None:
    # Its transition table and handlers stay together with the core that applies them;
    # the model, the records and the resync are modules of their own, and the model
    # knows nothing of the machine that changes it.
    assert {"app.acd.model", "app.acd.recording"} <= GRAPH["app.acd.state"]
    assert "app.acd.resync" not in closure("app.acd.state")
    assert "app.acd.state" not in closure("app.acd.model") | closure("app.acd.recording")


def test_routers_take_their_parts_as_typed_dependencies() -> None:
    for path in sorted((APP / "api").glob("*.py")):
        if path.name == "deps.py":
            continue
        assert "app.state" not in path.read_text(encoding="utf-8"), path.name


HOST_CLOCK = {"now", "today", "utcnow", "time"}
# Who may read the host's clock, and why (none of it is business time).
HOST_CLOCK_ALLOWED = {
    "app/clock.py": "the one owner: PbxClock.now()/wall()",
    "app/store/models.py": "rows' created_at/updated_at defaults",
    "app/store/auth.py": "the demo's admin key is revoked at once",
    "app/cli.py": "the demo picks its day near today; acd users issues credentials",
    "app/live/hub.py": "the stream's published_at stamp (for a client's staleness check)",
    "app/live/centre.py": "the same stamp on the centre's sum of several PBXs' pictures",
}


def test_only_the_clock_reads_the_hosts_time_for_business() -> None:
    readers = set()
    for path in APP.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("app/sim/"):
            continue  # the simulated PBX keeps its own (virtual) time
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in HOST_CLOCK
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("datetime", "date", "time")
            ):
                readers.add(rel)
    assert readers <= set(HOST_CLOCK_ALLOWED), readers - set(HOST_CLOCK_ALLOWED)
    assert "app/clock.py" in readers
