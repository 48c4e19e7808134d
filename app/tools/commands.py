"""The operators' configuration commands: ``acd ivr validate``, ``acd asterisk-config``,
``acd prompts``. Each takes parsed arguments and returns an exit code (0 ok, 1 the check
failed, 2 could not run); ``app/cli.py``'s ``COMMANDS`` table wires them in.

They read the files with the service's own loader (app/config/), so a file they pass is
a file the service takes, with the same line-numbered errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.acd.queues import QueueCatalogue
from app.config.errors import ConfigInvalid
from app.config.kinds import KINDS, QUEUES
from app.config.loader import load_config, parse_kind, read_file
from app.config.snapshot import ConfigSnapshot
from app.ivr.graph import key_paths
from app.ivr.model import QueueNode
from app.ivr.validate import all_prompt_texts, load_flow_text
from app.tools.asterisk_check import Problem, check_folder
from app.tools.asterisk_config import (
    DEFAULT_AGI_ADDRESS,
    render_extensions_conf,
    render_queues_conf,
)
from app.tools.prompts import PromptToolsMissing, render_prompts


def _err(message: str) -> None:
    print(message, file=sys.stderr)


# ---- acd ivr validate ---------------------------------------------------------------


def cmd_ivr(args: argparse.Namespace) -> int:
    if args.ivr_command == "validate":
        return _validate(args)
    _err("acd ivr: say what to do (validate)")
    return 2


def _validate(args: argparse.Namespace) -> int:
    failed = False
    for file in args.files:
        path = Path(file)
        queues_path = Path(args.queues) if args.queues else path.parent / QUEUES.file
        kind = next((k for k in KINDS if k.file == path.name), None)
        try:
            catalogue: QueueCatalogue = parse_kind(
                QUEUES, read_file(queues_path), str(queues_path), {}
            )
            if kind is not None:
                value = parse_kind(kind, read_file(path), str(path), {QUEUES.name: catalogue})
                print(f"{path}: ok: {kind.describe(value)}")
                continue
            flow = load_flow_text(read_file(path), str(path), catalogue)
        except ConfigInvalid as exc:
            failed = True
            for error in exc.errors:
                _err(str(error))
            continue
        paths = key_paths(flow)
        queue_nodes = {n.queue for n in flow.nodes.values() if isinstance(n, QueueNode)}
        print(
            f"{path}: ok: flow {flow.name!r}, {len(flow.nodes)} nodes, "
            f"{len(queue_nodes)} queues, {len(flow.prompts)} prompts"
        )
        for queue, keys in sorted(paths.items(), key=lambda kv: (len(kv[1]), kv[1])):
            print(f"  {' '.join(keys):<6} {queue}")
    return 1 if failed else 0


def ivr_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="ivr_command", required=True, metavar="ACTION")
    v = sub.add_parser(
        "validate",
        help="check flow files (or queues.yaml, work.yaml); exit 1 with file:line: path: "
        "problem for each error",
        description="Check IVR flow files (and the other files beside them: "
        + ", ".join(k.file for k in KINDS)
        + "): unknown queues or nodes, unreachable nodes, duplicate keys, loops without "
        "exit, missing prompts, ...",
    )
    v.add_argument(
        "files", nargs="+", metavar="FILE", help="flow file(s), e.g. ivr_flows/jobcenter.yaml"
    )
    v.add_argument(
        "--queues", metavar="FILE", help="queue catalogue (default: queues.yaml beside FILE)"
    )


# ---- acd asterisk-config -------------------------------------------------------------


def _load_or_report(folder: Path) -> ConfigSnapshot | None:
    """The configuration folder, or None after printing each of its errors."""
    try:
        return load_config(folder)
    except ConfigInvalid as exc:
        for error in exc.errors:
            _err(str(error))
        return None


def cmd_asterisk_config(args: argparse.Namespace) -> int:
    config = _load_or_report(Path(args.flows))
    if config is None:
        return 1
    assert config.queues is not None  # a required kind
    rendered = {
        "queues.conf": render_queues_conf(config.queues),
        "extensions.conf": render_extensions_conf(
            config.queues, dict(config.flows), args.agi_address
        ),
    }
    out = Path(args.out)
    asterisk_dir = Path(args.asterisk_dir) if args.asterisk_dir else None
    if args.check:
        stale = []
        for name, text in rendered.items():
            path = out / name
            current = path.read_text(encoding="utf-8") if path.exists() else None
            if current != text:
                stale.append(str(path))
        if stale:
            _err("out of date (run `acd asterisk-config`): " + ", ".join(stale))
        problems = _reference_problems(out, asterisk_dir)
        if stale or problems:
            return 1
        print(f"{out}: queues.conf and extensions.conf are current; includes and references ok")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 1 if _reference_problems(out, asterisk_dir) else 0


def _reference_problems(out: Path, asterisk_dir: Path | None) -> list[Problem]:
    """The folder's include paths and references (app/tools/asterisk_check.py), printed."""
    problems = check_folder(out, asterisk_dir)
    for problem in problems:
        _err(f"{out}/{problem}")
    return problems


def asterisk_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flows", default="ivr_flows", help="flow folder (default ivr_flows)")
    p.add_argument(
        "--out", default="asterisk_config", help="target folder (default asterisk_config)"
    )
    p.add_argument(
        "--agi-address",
        default=DEFAULT_AGI_ADDRESS,
        metavar="HOST:PORT",
        help=f"the service's FastAGI address in the dialplan (default {DEFAULT_AGI_ADDRESS})",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="only check: the files are current, every #include resolves where Asterisk "
        "looks (acd/<file>), every context, queue and endpoint named is defined (exit 1 if not)",
    )
    p.add_argument(
        "--asterisk-dir",
        metavar="DIR",
        help="Asterisk's config folder the files are installed under as acd/ (e.g. "
        "/etc/asterisk, on the PBX): also check that every #include'd file exists there",
    )


# ---- acd prompts ---------------------------------------------------------------------


def cmd_prompts(args: argparse.Namespace) -> int:
    config = _load_or_report(Path(args.flows))
    if config is None:
        return 1
    texts: dict[str, str] = {}
    for flow in config.flows.values():
        texts.update(all_prompt_texts(flow))
    if args.list:
        for name, text in sorted(texts.items()):
            print(f"{name}\t{text}")
        return 0
    try:
        written = render_prompts(texts, Path(args.out), only=args.only)
    except PromptToolsMissing as exc:
        _err(f"acd prompts: {exc}")
        return 2
    print(f"rendered {len(written)} prompts (8 kHz mono 16-bit WAV) under {args.out}")
    return 0


def prompts_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flows", default="ivr_flows", help="flow folder (default ivr_flows)")
    p.add_argument(
        "--out",
        default="var/sounds/da",
        help="target folder; Asterisk's is /var/lib/asterisk/sounds/da (default var/sounds/da)",
    )
    p.add_argument("--only", action="append", metavar="PREFIX", help="only prompts starting so")
    p.add_argument("--list", action="store_true", help="print name and text, render nothing")
