"""YAML with a line for every place, and duplicate keys refused.

The configuration files are YAML read by people; an error must say the line. PyYAML's
composer gives each node its start mark, so the document is built here from the nodes,
keeping the line of every path (``Lines``) for the errors of the models checked later.
A duplicate key (which YAML itself silently resolves to the last) and a ``<<`` merge key
are errors; ``10:00`` stays the text it is (YAML 1.1 would read the number 600).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from app.config.errors import ConfigError, ConfigInvalid, Path_

_INT_TAG = "tag:yaml.org,2002:int"


def load_yaml(text: str, file: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML; return the data and the line of every path. Raises ``ConfigInvalid``."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigInvalid([ConfigError(file, "", f"not valid YAML: {problem}", line)]) from None
    try:
        lines: dict[Path_, int] = {}
        errors: list[ConfigError] = []
        data = _build(root, (), loader, lines, errors, file) if root is not None else None
    finally:
        loader.dispose()
    if errors:
        raise ConfigInvalid(errors)
    return data, lines


def _build(
    node: yaml.Node,
    path: Path_,
    loader: yaml.SafeLoader,
    lines: dict[Path_, int],
    errors: list[ConfigError],
    file: str,
) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                errors.append(
                    ConfigError(
                        file, _dotted(path), "keys must be plain", key_node.start_mark.line + 1
                    )
                )
                continue
            if key_node.tag == "tag:yaml.org,2002:merge":
                errors.append(
                    ConfigError(
                        file,
                        _dotted(path),
                        "'<<' merge keys are not supported",
                        key_node.start_mark.line + 1,
                    )
                )
                continue
            key = _key(loader.construct_object(key_node))
            line = key_node.start_mark.line + 1
            if key in first_line:
                errors.append(
                    ConfigError(
                        file,
                        _dotted((*path, key)),
                        f"duplicate key {key!r} (first at line {first_line[key]})",
                        line,
                    )
                )
                continue
            first_line[key] = line
            lines[(*path, key)] = line
            out[key] = _build(value_node, (*path, key), loader, lines, errors, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(item, (*path, str(i)), loader, lines, errors, file)
            for i, item in enumerate(node.value)
        ]
    assert isinstance(node, yaml.ScalarNode)
    if node.tag == _INT_TAG and ":" in node.value:
        # YAML 1.1 reads 10:00 as the sexagesimal number 600; in a flow it is a time.
        return node.value
    return loader.construct_object(node, deep=True)


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _dotted(path: Iterable[str]) -> str:
    return ".".join(path)
