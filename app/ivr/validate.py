"""Loading and validating flow files, with errors an operator can act on.

Every problem is reported as ``<file>:<line>: <path in the flow>: <what is wrong>``, e.g.

    ivr_flows/jobcenter.yaml:41: nodes.main.choices.7: unknown node 'sygdomm'

and all problems of a file are reported at once. Checked: YAML syntax; duplicate keys
(YAML itself silently keeps the last one); the model (types, ranges, unknown fields);
unknown nodes and queues; nodes no path reaches; loops a caller can never leave; prompts
without a Danish text; prompt names that break the dialplan contract's roles (a menu is
asked with ``acd/menu-*``, an offer with ``acd/offer-*``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from app.acd.calendar import calendar_prompt_texts
from app.acd.queues import QueueCatalogue
from app.config.errors import ConfigError, ConfigInvalid, Lines, Path_, from_validation, line_of
from app.config.yamlfile import load_yaml
from app.ivr.graph import edges, reachable, successors
from app.ivr.model import (
    NODE_TYPES,
    Flow,
    ForwardNode,
    MenuNode,
    MessageNode,
    QueueNode,
)

ASKED_PREFIXES = ("acd/menu-", "acd/offer-", "acd/confirm-", "acd/survey-")


# --------------------------------------------------------------------------------------
# Loading and checking
# --------------------------------------------------------------------------------------


def parse_flow(data: Any, file: str, lines: Lines) -> Flow:
    try:
        return Flow.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, file, lines, _without_node_tag) from None


def _without_node_tag(loc: list[str]) -> list[str]:
    # pydantic puts the discriminator's tag into the location: nodes.main.menu.x
    if len(loc) >= 3 and loc[0] == "nodes" and loc[2] in NODE_TYPES:
        del loc[2]
    return loc


def check_flow(flow: Flow, catalogue: QueueCatalogue, file: str, lines: Lines) -> list[ConfigError]:
    """The semantic checks across the graph; returns every problem found."""
    errors: list[ConfigError] = []

    def err(path: Path_, message: str) -> None:
        errors.append(ConfigError(file, ".".join(path), message, line_of(lines, path)))

    stem = Path(file).stem
    if stem and flow.name != stem:
        err(("name",), f"flow name {flow.name!r} must match the file name {stem!r}")

    # Nodes and queues that do not exist.
    if flow.start not in flow.nodes:
        err(("start",), f"unknown node {flow.start!r}")
    for edge in edges(flow):
        if edge.target not in flow.nodes:
            err(edge.path, f"unknown node {edge.target!r}")
    known = set(catalogue.names)
    for node_id, node in flow.nodes.items():
        if isinstance(node, QueueNode) and node.queue not in known:
            err(
                ("nodes", node_id, "queue"),
                f"unknown queue {node.queue!r} (queues.yaml has: {', '.join(sorted(known))})",
            )
    if flow.default_queue not in known:
        err(("default_queue",), f"unknown queue {flow.default_queue!r}")

    # Nodes nobody reaches.
    if flow.start in flow.nodes:
        seen = reachable(flow)
        for node_id in flow.nodes:
            if node_id not in seen:
                err(
                    ("nodes", node_id), f"unreachable node {node_id!r}: no path from {flow.start!r}"
                )

    # Loops without exit: a strongly connected set of nodes with a cycle and no edge out.
    succ = successors(flow)
    for component in _loops(flow):
        leaves = any(
            e.target not in component and e.target in flow.nodes
            for n in component
            for e in succ.get(n, [])
        )
        if not leaves:
            cycle = " → ".join([*sorted(component), sorted(component)[0]])
            err(("nodes", sorted(component)[0]), f"loop without exit: {cycle}")

    # Prompts: a Danish text for every one, and the contract's roles.
    texts = set(flow.prompts) | set(calendar_prompt_texts(set()))
    for path, name, role in prompt_refs(flow):
        if name not in texts:
            err(path, f"missing prompt {name!r}: add its Danish text under 'prompts'")
        if role == "played" and name.startswith(ASKED_PREFIXES):
            err(path, f"prompt {name!r} is played, not asked: name it acd/info-* or acd/closed-*")
        elif role != "played" and not name.startswith(f"acd/{role}-"):
            err(path, f"prompt {name!r} asks for a {role} answer: name it acd/{role}-*")
    return errors


def _loops(flow: Flow) -> list[set[str]]:
    """Strongly connected components that contain a cycle (small graphs: O(n²) is fine)."""
    reach = {node_id: reachable(flow, node_id) for node_id in flow.nodes}
    succ = successors(flow)
    done: set[str] = set()
    out: list[set[str]] = []
    for node_id in flow.nodes:
        if node_id in done:
            continue
        component = {m for m in reach[node_id] if node_id in reach.get(m, set())}
        done |= component
        cyclic = len(component) > 1 or any(e.target == node_id for e in succ.get(node_id, []))
        if cyclic:
            out.append(component)
    return out


def prompt_refs(flow: Flow) -> list[tuple[Path_, str, str]]:
    """(path, prompt, role) of every prompt the flow plays; role is how it is used:
    ``menu``/``offer``/``confirm``/``survey`` (asked with GET DATA) or ``played``."""
    refs: list[tuple[Path_, str, str]] = [
        (("fallback_prompt",), flow.fallback_prompt, "played"),
        (("unanswered_prompt",), flow.unanswered_prompt, "played"),
    ]
    for node_id, node in flow.nodes.items():
        base = ("nodes", node_id)
        if isinstance(node, MenuNode):
            refs.append(((*base, "prompt"), node.prompt, "menu"))
            for name in ("invalid_prompt", "timeout_prompt", "fallback_prompt"):
                value = getattr(node, name)
                if value is not None:
                    refs.append(((*base, name), value, "played"))
        elif isinstance(node, MessageNode | QueueNode | ForwardNode) and node.prompt is not None:
            refs.append(((*base, "prompt"), node.prompt, "played"))
    hours = flow.hours
    for name in ("closed_prompt", "holiday_prompt", "override_prompt", "opens_prompt"):
        refs.append((("hours", name), getattr(hours, name), "played"))
    if hours.goodbye_prompt is not None:
        refs.append((("hours", "goodbye_prompt"), hours.goodbye_prompt, "played"))
    cb = flow.callback
    refs.append((("callback", "offer_prompt"), cb.offer_prompt, "offer"))
    refs.append((("callback", "confirm_prompt"), cb.confirm_prompt, "confirm"))
    for name in (
        "booked_prompt",
        "no_number_prompt",
        "message_prompt",
        "message_saved_prompt",
        "declined_prompt",
    ):
        value = getattr(cb, name)
        if value is not None:
            refs.append((("callback", name), value, "played"))
    for i, q in enumerate(flow.survey.questions):
        refs.append((("survey", "questions", str(i), "prompt"), q.prompt, "survey"))
    refs.append((("survey", "invalid_prompt"), flow.survey.invalid_prompt, "played"))
    refs.append((("survey", "thanks_prompt"), flow.survey.thanks_prompt, "played"))
    return refs


def load_flow_text(text: str, file: str, catalogue: QueueCatalogue) -> Flow:
    """Parse and check a flow; raises ``ConfigInvalid`` with every problem found."""
    data, lines = load_yaml(text, file)
    if not isinstance(data, dict):
        raise ConfigInvalid(
            [ConfigError(file, "", "a flow file is a mapping (name:, nodes:, ...)", 1)]
        )
    flow = parse_flow(data, file, lines)
    errors = check_flow(flow, catalogue, file, lines)
    if errors:
        raise ConfigInvalid(errors)
    return flow


def load_flow_file(path: Path, catalogue: QueueCatalogue) -> Flow:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigInvalid([ConfigError(str(path), "", f"cannot read: {exc}")]) from None
    return load_flow_text(text, str(path), catalogue)


def all_prompt_texts(flow: Flow) -> dict[str, str]:
    """Every prompt the flow can play with its Danish text, calendar prompts included."""
    times = {i.start for spans in flow.hours.schedule.weekly.values() for i in spans}
    texts = dict(calendar_prompt_texts(times))
    texts.update(flow.prompts)
    return texts
