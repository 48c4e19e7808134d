"""What is wrong with a configuration file, said so an operator can act on it.

Every problem is one ``ConfigError``: ``<file>:<line>: <path in the file>: <what is
wrong>``, e.g. ``ivr_flows/jobcenter.yaml:41: nodes.main.choices.7: unknown node
'sygdomm'``; every problem of a set of files is reported at once (``ConfigInvalid``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

Path_ = tuple[str, ...]  # a place in a YAML document: ("nodes", "main", "choices", "7")
Lines = dict[Path_, int]  # the line each place starts on


@dataclass(frozen=True, slots=True)
class ConfigError:
    file: str
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigInvalid(Exception):
    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


def line_of(lines: Lines, path: Path_) -> int | None:
    """The line of ``path``, else of its nearest parent that has one."""
    while True:
        if path in lines:
            return lines[path]
        if not path:
            return None
        path = path[:-1]


def message_of(err: Any) -> str:
    """A pydantic error's message, in the words an operator reads."""
    kind = err.get("type", "")
    msg = str(err.get("msg", "invalid"))
    if kind == "missing":
        return "required field missing"
    if kind == "extra_forbidden":
        return "unknown field"
    msg = msg.removeprefix("Value error, ")
    if kind in ("literal_error", "enum") or "union_tag" in kind:
        value = err.get("input")
        return f"{msg} (got {value!r})"
    return msg


def from_validation(
    exc: ValidationError,
    file: str,
    lines: Lines,
    place: Callable[[list[str]], list[str]] = lambda loc: loc,
) -> ConfigInvalid:
    """A model's validation errors, each at its line. ``place`` may rewrite a location
    (pydantic puts a union's tag into it)."""
    errors = []
    for err in exc.errors():
        loc = place([str(p) for p in err["loc"]])
        errors.append(ConfigError(file, ".".join(loc), message_of(err), line_of(lines, tuple(loc))))
    return ConfigInvalid(errors)
