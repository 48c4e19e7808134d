"""The flow as a graph: its edges, and the keys a caller presses to reach a queue.

``key_path(flow, queue)`` is for the simulated PBX: its callers navigate the real menu
("press 3, then 1" for sygedagpenge) without knowing the flow's shape.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

from app.ivr.model import Flow, ForwardNode, MenuNode, MessageNode, QueueNode, ScheduleNode

EdgeKind = Literal["key", "fallback", "next", "rule", "otherwise"]


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    kind: EdgeKind
    label: str  # the key, the rule name, ...
    path: tuple[str, ...]  # where in the file the edge is written


def edges(flow: Flow) -> list[Edge]:
    out: list[Edge] = []
    for node_id, node in flow.nodes.items():
        base = ("nodes", node_id)
        if isinstance(node, MenuNode):
            for key, target in node.choices.items():
                out.append(Edge(node_id, target, "key", key, (*base, "choices", key)))
            out.append(Edge(node_id, node.fallback, "fallback", "", (*base, "fallback")))
        elif isinstance(node, MessageNode):
            out.append(Edge(node_id, node.next, "next", "", (*base, "next")))
        elif isinstance(node, ScheduleNode):
            for i, rule in enumerate(node.rules):
                out.append(Edge(node_id, rule.goto, "rule", rule.name, (*base, "rules", str(i))))
            out.append(Edge(node_id, node.otherwise, "otherwise", "", (*base, "otherwise")))
        else:
            assert isinstance(node, QueueNode | ForwardNode)  # terminal nodes
    return out


def successors(flow: Flow) -> dict[str, list[Edge]]:
    out: dict[str, list[Edge]] = {node_id: [] for node_id in flow.nodes}
    for edge in edges(flow):
        out.setdefault(edge.source, []).append(edge)
    return out


def reachable(flow: Flow, start: str | None = None) -> set[str]:
    succ = successors(flow)
    first = start or flow.start
    if first not in flow.nodes:
        return set()
    seen = {first}
    todo = [first]
    while todo:
        for edge in succ.get(todo.pop(), []):
            if edge.target in flow.nodes and edge.target not in seen:
                seen.add(edge.target)
                todo.append(edge.target)
    return seen


def key_path(flow: Flow, queue: str) -> list[str]:
    """The fewest keys from the top of the flow to a queue node for ``queue``.

    Messages and time rules are passed through without keys (a schedule's branches are
    all followed, so the path is valid at the times the queue is reached at all); fallback
    edges are not keys and are not used. Raises ``KeyError`` if no key path exists.
    """
    succ = successors(flow)
    best: dict[str, int] = {flow.start: 0}
    paths: dict[str, list[str]] = {flow.start: []}
    todo: deque[str] = deque([flow.start])
    found: list[str] | None = None
    while todo:  # 0-1 BFS: free edges go to the front, key edges to the back
        node_id = todo.popleft()
        node = flow.nodes.get(node_id)
        here = paths[node_id]
        if isinstance(node, QueueNode) and node.queue == queue:
            if found is None or len(here) < len(found):
                found = here
            continue
        for edge in succ.get(node_id, []):
            if edge.kind == "fallback" or edge.target not in flow.nodes:
                continue
            cost = len(here) + (1 if edge.kind == "key" else 0)
            if edge.target in best and best[edge.target] <= cost:
                continue
            best[edge.target] = cost
            paths[edge.target] = [*here, edge.label] if edge.kind == "key" else here
            if edge.kind == "key":
                todo.append(edge.target)
            else:
                todo.appendleft(edge.target)
    if found is None:
        raise KeyError(f"queue {queue!r} cannot be reached by keys in flow {flow.name!r}")
    return list(found)


def key_paths(flow: Flow) -> dict[str, list[str]]:
    """``key_path`` for every queue the flow can route to by keys."""
    out: dict[str, list[str]] = {}
    for node in flow.nodes.values():
        if isinstance(node, QueueNode) and node.queue not in out:
            try:
                out[node.queue] = key_path(flow, node.queue)
            except KeyError:
                continue
    return out
