"""``acd asterisk-config --check``: the Asterisk files refer only to what they define.

The folder (``asterisk_config/``) is installed as ``<Asterisk's config folder>/acd/`` and
``#include``d from the main files (README, "Pointing it at a real Asterisk"). Asterisk
itself only says what is wrong once the files are loaded on the PBX, one error at a time,
and some mistakes it takes silently (an endpoint whose context does not exist just fails
every call it makes). This reads the folder as Asterisk would and names each problem with
its file and line:

- **includes**: a relative ``#include``/``#tryinclude`` resolves in Asterisk's config
  folder, not beside the including file, so a file of this folder is ``acd/<file>``;
  with ``asterisk_dir`` (the PBX's own folder, e.g. ``/etc/asterisk``) an ``#include``d
  file must exist there (``#tryinclude`` may be missing);
- **contexts**: every context named by an endpoint (``context =`` in ``pjsip.conf``,
  templates included), by the dialplan (``Goto``/``GotoIf``/``Gosub``/``GosubIf`` targets,
  ``include =>``) and by the service itself over AMI (``SERVICE_CONTEXTS``) is defined in
  ``extensions.conf``, and a literal extension of such a target exists in its context;
- **queues and endpoints**: ``Queue(<name>)`` names a queue of ``queues.conf`` and
  ``Dial(PJSIP/...@<endpoint>)`` an endpoint of ``pjsip.conf`` (when those files are in
  the folder).

Pure: text in, problems out; the command prints them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The contexts the service sends calls to over AMI (docs/dialplan-contract.md): call-backs
# and queue transfers into acd-queue (app/dialer.py, app/services/pbx.py), external
# transfers and click-to-dial into acd-transfer.
SERVICE_CONTEXTS = ("acd-queue", "acd-transfer")
# Where the folder is installed, relative to Asterisk's config folder.
INSTALLED_AS = "acd"
# extensions.conf sections that are not contexts.
_NOT_CONTEXTS = frozenset({"general", "globals"})

_SECTION = re.compile(r"^\[([^\]]+)\]\s*(?:\(([^)]*)\))?\s*$")
_INCLUDE = re.compile(r"^#(include|tryinclude)\s+(.+?)\s*$")
_EXTEN = re.compile(r"^exten\s*=>?\s*([^,]+),\s*([^,]+),\s*(.*)$")
_SAME = re.compile(r"^same\s*=>?\s*([^,]+),\s*(.*)$")
_INCLUDE_CTX = re.compile(r"^include\s*=>?\s*(\S+)")
_APP = re.compile(r"^(\w+)\((.*)\)\s*$")
_DIAL_ENDPOINT = re.compile(r"PJSIP/[^@,()&]*@([A-Za-z0-9_.-]+)")


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    text: str  # comment and surrounding blanks removed


def _lines(text: str) -> list[_Line]:
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line.startswith("#"):
            # ';' starts a comment unless escaped ('\;'); a directive keeps its quotes.
            line = re.split(r"(?<!\\);", line, maxsplit=1)[0].strip()
        if line:
            out.append(_Line(number, line))
    return out


def _sections(lines: Iterable[_Line]) -> dict[str, list[tuple[int, str, str]]]:
    """section name -> (line, key, value) of its ``key = value`` lines (several sections
    of one name, as pjsip.conf's endpoint/aor/identify, are one list)."""
    out: dict[str, list[tuple[int, str, str]]] = {}
    current: list[tuple[int, str, str]] | None = None
    for ln in lines:
        m = _SECTION.match(ln.text)
        if m:
            current = out.setdefault(m.group(1).strip(), [])
            continue
        if current is None or ln.text.startswith("#"):
            continue
        key, sep, value = ln.text.partition("=")
        if sep:
            current.append((ln.number, key.strip().rstrip(">").strip(), value.strip()))
    return out


def _pattern(exten: str) -> re.Pattern[str] | None:
    """Asterisk's extension pattern (``_X.``) as a regex; None for a plain extension."""
    if not exten.startswith("_"):
        return None
    out = []
    chars = iter(exten[1:])
    for ch in chars:
        if ch == "X":
            out.append("[0-9]")
        elif ch == "Z":
            out.append("[1-9]")
        elif ch == "N":
            out.append("[2-9]")
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "[":
            body = []
            for inner in chars:
                if inner == "]":
                    break
                body.append(inner)
            out.append("[" + "".join(re.escape(c) if c != "-" else "-" for c in body) + "]")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.I)


@dataclass
class _Context:
    line: int
    extens: set[str]
    patterns: list[re.Pattern[str]]

    def has(self, exten: str) -> bool:
        return exten in self.extens or any(p.fullmatch(exten) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class _Target:
    line: int
    context: str
    exten: str | None  # None: not literal (a variable) or not given
    what: str


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside ``$[..]``/``${..}``/``(..)``."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _split_args(text: str) -> list[str]:
    """Application arguments: split on top-level commas."""
    return _split_top(text, ",")


def _goto_target(label: str, context: str, line: int, what: str) -> _Target | None:
    parts = _split_args(label)
    if len(parts) == 3:
        ctx, exten = parts[0], parts[1]
    elif len(parts) == 2:
        ctx, exten = context, parts[0]
    else:
        return None  # a priority or label of the same extension
    if not ctx or "$" in ctx:
        return None
    return _Target(line, ctx, None if (not exten or "$" in exten) else exten, what)


def _app_targets(app: str, args: str, context: str, line: int) -> list[_Target]:
    name = app.lower()
    if name in ("goto", "gosub"):
        target = _goto_target(
            args.split("(", 1)[0] if name == "gosub" else args, context, line, f"{app}({args})"
        )
        return [target] if target is not None else []
    if name in ("gotoif", "gosubif"):
        _, sep, branches = args.rpartition("?")
        if not sep:
            return []
        out = []
        for branch in _split_branches(branches):
            label = branch.split("(", 1)[0] if name == "gosubif" else branch
            target = _goto_target(label, context, line, f"{app}(...?{branches})")
            if target is not None:
                out.append(target)
        return out
    return []


def _split_branches(text: str) -> list[str]:
    """``GotoIf``'s ``iftrue:iffalse``, either may be empty."""
    return [p for p in _split_top(text, ":") if p]


@dataclass
class _Dialplan:
    contexts: dict[str, _Context]
    targets: list[_Target]
    queues: list[tuple[int, str]]
    endpoints: list[tuple[int, str]]


def _read_dialplan(lines: list[_Line]) -> _Dialplan:
    plan = _Dialplan({}, [], [], [])
    context = ""
    for ln in lines:
        m = _SECTION.match(ln.text)
        if m:
            context = m.group(1).strip()
            if context not in _NOT_CONTEXTS:
                plan.contexts.setdefault(context, _Context(ln.number, set(), []))
            continue
        if context in _NOT_CONTEXTS or not context:
            continue
        ctx = plan.contexts[context]
        body = ""
        if (e := _EXTEN.match(ln.text)) is not None:
            exten = e.group(1).strip()
            pattern = _pattern(exten)
            if pattern is not None:
                ctx.patterns.append(pattern)
            else:
                ctx.extens.add(exten)
            body = e.group(3)
        elif (s := _SAME.match(ln.text)) is not None:
            body = s.group(2)
        elif (i := _INCLUDE_CTX.match(ln.text)) is not None:
            plan.targets.append(_Target(ln.number, i.group(1), None, f"include => {i.group(1)}"))
            continue
        else:
            continue
        app = _APP.match(body.strip())
        if app is None:
            continue
        plan.targets += _app_targets(app.group(1), app.group(2), context, ln.number)
        if app.group(1).lower() == "queue":
            queue = _split_args(app.group(2))[0]
            if queue and "$" not in queue:
                plan.queues.append((ln.number, queue))
        for endpoint in _DIAL_ENDPOINT.findall(body):
            if "$" not in endpoint:
                plan.endpoints.append((ln.number, endpoint))
    return plan


def _include_problems(name: str, lines: list[_Line], asterisk_dir: Path | None) -> list[Problem]:
    out = []
    for ln in lines:
        m = _INCLUDE.match(ln.text)
        if m is None:
            continue
        kind, target = m.group(1), m.group(2).strip().strip('"').strip("<>").strip()
        if target.startswith("/"):
            resolved = Path(target)
        else:
            resolved = (asterisk_dir or Path("/etc/asterisk")) / target
            first, _, rest = target.partition("/")
            if first != INSTALLED_AS or not rest:
                beside = f"{INSTALLED_AS}/{target}"
                out.append(
                    Problem(
                        name,
                        ln.number,
                        f"#{kind} {target!r} resolves in Asterisk's config folder "
                        f"({resolved}), not beside this file: write {beside!r}",
                    )
                )
                continue
        if asterisk_dir is not None and kind == "include" and not resolved.is_file():
            out.append(Problem(name, ln.number, f"#include {target!r}: {resolved} does not exist"))
    return out


def check_folder(
    folder: Path,
    asterisk_dir: Path | None = None,
    service_contexts: Iterable[str] = SERVICE_CONTEXTS,
) -> list[Problem]:
    """Every problem of the folder's ``*.conf`` files, in file and line order."""
    files = {p.name: _lines(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.conf"))}
    problems: list[Problem] = []
    for name, lines in files.items():
        problems += _include_problems(name, lines, asterisk_dir)
    if "extensions.conf" not in files:
        problems.append(Problem("extensions.conf", 0, "missing: no context is defined"))
        return problems
    plan = _read_dialplan(files["extensions.conf"])
    defined = plan.contexts

    def undefined(context: str) -> str:
        return f"context {context!r} is not defined in extensions.conf"

    for target in plan.targets:
        ctx = defined.get(target.context)
        if ctx is None:
            problems.append(
                Problem(
                    "extensions.conf", target.line, f"{target.what}: {undefined(target.context)}"
                )
            )
        elif target.exten is not None and not ctx.has(target.exten):
            problems.append(
                Problem(
                    "extensions.conf",
                    target.line,
                    f"{target.what}: no extension {target.exten!r} in context {target.context!r}",
                )
            )
    for context in service_contexts:
        if context not in defined:
            problems.append(
                Problem("extensions.conf", 0, f"the service sends calls to {undefined(context)}")
            )
    if "queues.conf" in files:
        queues = set(_sections(files["queues.conf"])) - {"general"}
        for line, queue in plan.queues:
            if queue not in queues:
                problems.append(
                    Problem(
                        "extensions.conf", line, f"Queue({queue}): no such queue in queues.conf"
                    )
                )
    if "pjsip.conf" in files:
        pjsip = _sections(files["pjsip.conf"])
        endpoints = {
            name
            for name, items in pjsip.items()
            if any(k == "type" and v == "endpoint" for _, k, v in items)
        }
        for line, endpoint in plan.endpoints:
            if endpoint not in endpoints:
                problems.append(
                    Problem(
                        "extensions.conf",
                        line,
                        f"PJSIP/...@{endpoint}: no such endpoint in pjsip.conf",
                    )
                )
        for section, items in pjsip.items():
            for line, key, value in items:
                if key == "context" and value not in defined:
                    problems.append(Problem("pjsip.conf", line, f"[{section}]: {undefined(value)}"))
    problems.sort(key=lambda p: (p.file, p.line))
    return problems
