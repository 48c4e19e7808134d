"""Queue configuration for the simulated PBX: ``queues.conf`` in Asterisk's own format, or
the queue catalogue (``ivr_flows/queues.yaml``). Pure: text or objects in, specs out.

Asterisk config format (main/config.c) as far as queues.conf uses it:
- ``[name]`` sections; ``[name](!)`` a template; ``[name](tpl1,tpl2)`` inherits the
  templates' variables *before* its own; ``[name](!,tpl)`` a template inheriting;
  ``[name](+)`` adds to an earlier section of that name.
- ``key = value`` and ``key => value`` (object form, same for parsing).
- ``;`` starts a comment (``\\;`` is a literal semicolon), ``;-- ... --;`` a block comment.

app_queue reads a queue's variables in order, so for most keys the *last* one wins; but
``strategy`` is fetched first with ``ast_variable_retrieve``, which returns the *first*
match, i.e. the template's: a strategy set in a template cannot be overridden in the
child (README of the captures, point 13). ``member =>`` lines accumulate: template
members first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.acd.queues import QueueCatalogue

STRATEGIES = frozenset(
    {
        "ringall",
        "leastrecent",
        "fewestcalls",
        "random",
        "rrmemory",
        "linear",
        "wrandom",
        "rrordered",
    }
)
EMPTY_RULES = frozenset(
    {"paused", "penalty", "inuse", "ringing", "invalid", "wrapup", "unavailable", "unknown"}
)


class ConfigError(ValueError):
    """A queues.conf the simulator cannot use, with the line it stopped at."""


@dataclass(frozen=True, slots=True)
class MemberSpec:
    interface: str
    penalty: int = 0
    membername: str = ""
    state_interface: str = ""
    ringinuse: bool | None = None  # None: the queue's setting
    wrapuptime: int = 0  # member-level; 0 = the queue's

    @property
    def name(self) -> str:
        return self.membername or self.interface

    @property
    def state(self) -> str:
        return self.state_interface or self.interface


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    strategy: str = "ringall"  # app_queue's default
    timeout: int = 15  # ring timeout per member, seconds
    retry: int = 5
    wrapuptime: int = 0
    maxlen: int = 0
    joinempty: frozenset[str] = frozenset()
    leavewhenempty: frozenset[str] = frozenset()
    ringinuse: bool = True
    servicelevel: int = 0
    weight: int = 0
    autofill: bool = True
    timeoutpriority: str = "app"
    musicclass: str = "default"
    setinterfacevar: bool = False
    setqueuevar: bool = False
    setqueueentryvar: bool = False
    members: tuple[MemberSpec, ...] = ()
    # Not a queues.conf key: the dialplan's Queue() timeout (catalogue max_wait_seconds).
    max_wait: int = 0
    title: str = ""
    calls_per_year: int = 0


@dataclass(frozen=True, slots=True)
class QueuesConfig:
    queues: tuple[QueueSpec, ...]
    shared_lastcall: bool = True
    autofill: bool = True
    persistentmembers: bool = False
    general: tuple[tuple[str, str], ...] = ()

    def get(self, name: str) -> QueueSpec | None:
        return next((q for q in self.queues if q.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.queues)

    def with_members(self, members: dict[str, tuple[MemberSpec, ...]]) -> QueuesConfig:
        """A copy with extra static members per queue (e.g. a simulated staff)."""
        queues = tuple(replace(q, members=q.members + members.get(q.name, ())) for q in self.queues)
        return replace(self, queues=queues)


# ------------------------------------------------------------------ config grammar


@dataclass(slots=True)
class Section:
    name: str
    template: bool = False
    inherits: list[str] = field(default_factory=list)
    items: list[tuple[str, str]] = field(default_factory=list)
    line: int = 0


def _strip_comment(line: str, in_block: bool) -> tuple[str, bool]:
    out: list[str] = []
    i = 0
    while i < len(line):
        if in_block:
            end = line.find("--;", i)
            if end < 0:
                return "".join(out), True
            i = end + 3
            in_block = False
            continue
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if ch == ";":
            if line.startswith(";--", i):
                in_block = True
                i += 3
                continue
            break
        out.append(ch)
        i += 1
    return "".join(out), in_block


def parse_config(text: str) -> list[Section]:
    """Asterisk config text to sections, inheritance resolved (templates kept, marked)."""
    sections: list[Section] = []
    by_name: dict[str, Section] = {}
    current: Section | None = None
    in_block = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line, in_block = _strip_comment(raw, in_block)
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            raise ConfigError(f"line {lineno}: {line.split()[0]} is not supported here")
        if line.startswith("["):
            close = line.find("]")
            if close < 0:
                raise ConfigError(f"line {lineno}: missing ']' in {line!r}")
            name = line[1:close].strip()
            opts_text = line[close + 1 :].strip()
            opts: list[str] = []
            if opts_text:
                if not (opts_text.startswith("(") and opts_text.endswith(")")):
                    raise ConfigError(f"line {lineno}: bad section options {opts_text!r}")
                opts = [o.strip() for o in opts_text[1:-1].split(",") if o.strip()]
            if "+" in opts:
                if name not in by_name:
                    raise ConfigError(f"line {lineno}: [{name}](+) without an earlier [{name}]")
                current = by_name[name]
                continue
            section = Section(name=name, line=lineno)
            for opt in opts:
                if opt == "!":
                    section.template = True
                else:
                    base = by_name.get(opt)
                    if base is None:
                        raise ConfigError(f"line {lineno}: [{name}] inherits unknown [{opt}]")
                    section.inherits.append(opt)
                    section.items.extend(base.items)
            sections.append(section)
            by_name[name] = section
            current = section
            continue
        if current is None:
            raise ConfigError(f"line {lineno}: {line!r} outside any [section]")
        if "=>" in line and (line.find("=>") <= line.find("=") or "=" not in line):
            key, _, value = line.partition("=>")
        elif "=" in line:
            key, _, value = line.partition("=")
        else:
            raise ConfigError(f"line {lineno}: expected 'key = value', got {line!r}")
        current.items.append((key.strip().lower(), value.strip()))
    return sections


# ---------------------------------------------------------------- queues.conf


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("yes", "true", "y", "t", "1", "on"):
        return True
    if v in ("no", "false", "n", "f", "0", "off"):
        return False
    raise ConfigError(f"not a yes/no value: {value!r}")


def _int(key: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ConfigError(f"{key} = {value!r} is not a number") from None


def parse_empty(value: str, join: bool) -> frozenset[str]:
    """app_queue's parse_empty_options: rule names, ``loose``/``strict``, yes/no."""
    rules: set[str] = set()
    for option in (o.strip().lower() for o in value.split(",")):
        if not option:
            continue
        if option in EMPTY_RULES:
            rules.add(option)
        elif option == "loose":
            rules = {"penalty", "invalid"}
        elif option == "strict":
            rules = {"penalty", "invalid", "paused", "unavailable"}
        elif option in ("yes", "true", "no", "false"):
            truthy = option in ("yes", "true")
            # joinempty=no / leavewhenempty=yes: penalty, invalid, paused; the other: none.
            rules = {"penalty", "invalid", "paused"} if truthy != join else set()
        else:
            raise ConfigError(
                f"unknown {'joinempty' if join else 'leavewhenempty'} rule {option!r}"
            )
    return frozenset(rules)


def parse_member(value: str) -> MemberSpec:
    parts = [p.strip() for p in value.split(",")]
    if not parts or not parts[0]:
        raise ConfigError(f"member line without an interface: {value!r}")
    penalty = _int("penalty", parts[1]) if len(parts) > 1 and parts[1] else 0
    name = parts[2] if len(parts) > 2 else ""
    state = parts[3] if len(parts) > 3 else ""
    ringinuse = _bool(parts[4]) if len(parts) > 4 and parts[4] else None
    wrapup = _int("wrapuptime", parts[5]) if len(parts) > 5 and parts[5] else 0
    return MemberSpec(parts[0], penalty, name, state, ringinuse, wrapup)


_QUEUE_INTS = {
    "timeout": "timeout",
    "retry": "retry",
    "wrapuptime": "wrapuptime",
    "maxlen": "maxlen",
    "servicelevel": "servicelevel",
    "weight": "weight",
}
_QUEUE_BOOLS = {
    "ringinuse": "ringinuse",
    "autofill": "autofill",
    "setinterfacevar": "setinterfacevar",
    "setqueuevar": "setqueuevar",
    "setqueueentryvar": "setqueueentryvar",
}


def _queue_from_section(section: Section, general_autofill: bool) -> QueueSpec:
    items = section.items
    # strategy: ast_variable_retrieve -> the first occurrence (template first).
    strategy = next((v for k, v in items if k == "strategy"), "ringall").lower()
    if strategy == "roundrobin":
        strategy = "rrmemory"  # app_queue maps the old name
    if strategy not in STRATEGIES:
        raise ConfigError(f"[{section.name}] unknown strategy {strategy!r}")
    values: dict[str, object] = {"autofill": general_autofill}
    members: list[MemberSpec] = []
    for key, value in items:
        if key == "member":
            members.append(parse_member(value))
        elif key in _QUEUE_INTS:
            values[_QUEUE_INTS[key]] = _int(key, value)
        elif key in _QUEUE_BOOLS:
            values[_QUEUE_BOOLS[key]] = _bool(value)
        elif key == "joinempty":
            values["joinempty"] = parse_empty(value, join=True)
        elif key == "leavewhenempty":
            values["leavewhenempty"] = parse_empty(value, join=False)
        elif key == "timeoutpriority":
            values["timeoutpriority"] = value.lower()
        elif key == "musicclass" or key == "musiconhold":
            values["musicclass"] = value
        # Other keys (announcements, periodic announce, ...) change no AMI event here.
    # A later member line for the same interface replaces the earlier one (ao2 link).
    unique: dict[str, MemberSpec] = {}
    for m in members:
        unique[m.interface] = m
    return QueueSpec(
        name=section.name,
        strategy=strategy,
        members=tuple(unique.values()),
        **values,  # type: ignore[arg-type]
    )


def parse_queues_conf(text: str) -> QueuesConfig:
    sections = parse_config(text)
    general: list[tuple[str, str]] = []
    for s in sections:
        if s.name == "general":
            general.extend(s.items)
    g = dict(general)
    autofill = _bool(g.get("autofill", "yes"))
    queues = tuple(
        _queue_from_section(s, autofill) for s in sections if s.name != "general" and not s.template
    )
    return QueuesConfig(
        queues=queues,
        shared_lastcall=_bool(g.get("shared_lastcall", "yes")),
        autofill=autofill,
        persistentmembers=_bool(g.get("persistentmembers", "yes")),
        general=tuple(general),
    )


def from_catalogue(catalogue: QueueCatalogue) -> QueuesConfig:
    """The queue catalogue as the queues.conf ``acd asterisk-config`` would render.

    No members: in a catalogue-only setup agents log in dynamically (QueueAdd).
    """
    queues = tuple(
        QueueSpec(
            name=q.name,
            strategy=q.strategy,
            timeout=q.ring_timeout,
            retry=q.retry,
            wrapuptime=q.wrapup_seconds,
            maxlen=q.maxlen,
            joinempty=frozenset(q.joinempty),
            leavewhenempty=frozenset(q.leavewhenempty),
            ringinuse=False,
            servicelevel=q.service_level_seconds,
            timeoutpriority="app",
            max_wait=q.max_wait_seconds,
            title=q.title,
            calls_per_year=q.calls_per_year,
        )
        for q in catalogue.queues
    )
    return QueuesConfig(queues=queues)


def merge_catalogue(conf: QueuesConfig, catalogue: QueueCatalogue) -> QueuesConfig:
    """queues.conf rules, plus the catalogue's volumes, titles and Queue() timeouts."""
    out = []
    for q in conf.queues:
        c = catalogue.get(q.name)
        if c is not None:
            q = replace(
                q,
                max_wait=q.max_wait or c.max_wait_seconds,
                title=q.title or c.title,
                calls_per_year=c.calls_per_year,
            )
        out.append(q)
    return replace(conf, queues=tuple(out))
