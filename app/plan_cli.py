"""``acd plan`` (forecast and staffing of coming days from the log, ``--check`` in the
simulator) and ``acd staffing`` (the planner's Erlang calculator). Thin: the use cases are
``app.planning``, the maths ``app.acd``; the documents are the API's."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from app.acd.kpi import KpiConfig
from app.acd.plan import PlanTargets
from app.acd.staffing import (
    Model,
    StaffingError,
    Targets,
    erlang_c_performance,
    required_agents,
    rostered,
)
from app.planning import plan_csv, plan_xlsx

# --------------------------------------------------------------------------------------
# acd staffing: the calculator
# --------------------------------------------------------------------------------------


def staffing_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calls", type=float, required=True, help="calls offered in the interval")
    p.add_argument("--aht", type=float, required=True, help="average handle time, seconds")
    p.add_argument("--interval", type=float, default=1800.0, help="interval length, seconds (1800)")
    p.add_argument(
        "--answer-within",
        type=float,
        default=180.0,
        help="service-level time, seconds (180: 'answered within 3 minutes')",
    )
    p.add_argument(
        "--service-level",
        type=float,
        default=PlanTargets().service_level,
        help=f"share answered within that time, 0-1 ({PlanTargets().service_level})",
    )
    p.add_argument(
        "--patience",
        type=float,
        help="callers' mean patience, seconds: Erlang A (without: Erlang C)",
    )
    p.add_argument("--shrinkage", type=float, default=0.0, help="share of non-call time, 0-1")
    p.add_argument("--max-occupancy", type=float, help="occupancy cap, 0-1")
    p.add_argument("--avg-wait", type=float, help="also: mean wait of all calls at most, seconds")
    p.add_argument("--answer-rate", type=float, help="also: share answered at least (Erlang A)")


def staffing_answer(args: argparse.Namespace) -> dict[str, Any]:
    """The calculator's JSON (raises ``StaffingError`` on bad input)."""
    if not math.isfinite(args.interval) or args.interval <= 0:
        raise StaffingError("the interval must be above 0 seconds")
    targets = Targets(
        service_level=args.service_level,
        answer_within=args.answer_within,
        avg_wait_seconds=args.avg_wait,
        answer_rate=args.answer_rate,
        max_occupancy=args.max_occupancy,
    )
    if not 0 <= args.shrinkage < 1:
        raise StaffingError("shrinkage must be 0 or more and below 1")
    lam = args.calls / args.interval
    model: Model = "A" if args.patience is not None else "C"
    s = required_agents(model, lam, args.aht, targets, args.patience)
    if s.agents is None or s.performance is None:
        raise StaffingError(s.reason or "no staffing meets the targets")
    p = s.performance
    out: dict[str, Any] = {
        "model": f"erlang_{model.lower()}",
        "agents": s.agents,
        "rostered": math.ceil(rostered(s.agents, args.shrinkage) - 1e-9),
        "erlangs": round(p.load_erlangs, 4),
        "service_level": round(p.service_level, 4),
        "asa_seconds": _round(p.asa_seconds, 2),
        "avg_wait_seconds": _round(p.avg_wait_seconds, 2),
        "wait_probability": round(p.wait_probability, 4),
        "answer_rate": _round(p.answer_rate, 4),
        "abandon_rate": _round(p.abandon_rate, 4),
        "occupancy": round(p.occupancy, 4),
        "inputs": {
            "calls": args.calls,
            "aht_seconds": args.aht,
            "interval_seconds": args.interval,
            "answer_within_seconds": args.answer_within,
            "service_level": args.service_level,
            "patience_seconds": args.patience,
            "shrinkage": args.shrinkage,
            "max_occupancy": args.max_occupancy,
        },
    }
    if model == "A":
        c = required_agents("C", lam, args.aht, targets, args.patience)
        out["erlang_c"] = {
            "agents": c.agents,
            "service_level": None
            if c.performance is None
            else round(c.performance.service_level, 4),
        }
        if s.agents > 0:
            same = erlang_c_performance(s.agents, lam, args.aht, args.answer_within)
            out["erlang_c"]["service_level_at_these_agents"] = round(same.service_level, 4)
    return out


def _round(v: float | None, n: int) -> float | None:
    return None if v is None else round(v, n)


def cmd_staffing(args: argparse.Namespace) -> int:
    try:
        answer = staffing_answer(args)
    except StaffingError as exc:
        print(f"acd staffing: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0


# --------------------------------------------------------------------------------------
# acd plan
# --------------------------------------------------------------------------------------


def plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", required=True, help="first day to plan (YYYY-MM-DD)")
    p.add_argument("--days", type=int, default=1, help="days to plan (1-42; 5 = a week)")
    p.add_argument(
        "--format",
        choices=("text", "json", "csv", "xlsx"),
        default="text",
        help="text (a table), json (the API's document), csv, xlsx (needs --output)",
    )
    p.add_argument("--output", metavar="FILE", help="write the document here (else stdout)")
    p.add_argument(
        "--shrinkage", type=float, help="share of non-call time (default: measured from the log)"
    )
    p.add_argument("--max-occupancy", type=float, help="occupancy cap, 0-1 (default: none)")
    p.add_argument(
        "--patience",
        type=float,
        help="callers' mean patience, seconds (default: measured from the log's abandons)",
    )
    p.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="NAME=Q1,Q2",
        help="queues sharing agents, staffed as one group (repeatable)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="play each planned day in the simulator and adjust the staffing to the "
        "fewest agent-hours that meet the goals there",
    )
    p.add_argument("--rounds", type=int, default=6, help="--check: simulated days at most (6)")
    p.add_argument("--seed", type=int, default=7, help="--check: the simulated callers' seed")
    p.add_argument("--history-weeks", type=int, default=53, help="weeks of log to use (53)")


def _pools(specs: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, members = spec.partition("=")
        if not sep or not name or not members:
            raise ValueError(f"--pool {spec!r}: write NAME=QUEUE1,QUEUE2")
        out[name] = [m.strip() for m in members.split(",") if m.strip()]
    return out


def cmd_plan(args: argparse.Namespace) -> int:
    from app.tools.shell import command_settings as _settings

    settings = _settings()
    try:
        start = date.fromisoformat(args.date)
        pools = _pools(args.pool)
    except ValueError as exc:
        print(f"acd plan: {exc}", file=sys.stderr)
        return 2
    if args.format == "xlsx" and not args.output:
        print("acd plan: --format xlsx needs --output FILE", file=sys.stderr)
        return 2
    made = asyncio.run(_plan(args, settings, start, pools))
    if isinstance(made, int):
        return made
    doc = made
    checks = doc.get("check") or {}
    code = 0 if all(c["met"] for c in checks.values()) else 1
    if args.format == "xlsx":
        Path(args.output).write_bytes(plan_xlsx(doc))
        print(f"plan written to {args.output}", file=sys.stderr)
        return code
    text = {"json": plan_json, "csv": plan_csv, "text": plan_text}[args.format](doc)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return code


def plan_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


async def _plan(
    args: argparse.Namespace, settings: Any, start: date, pools: dict[str, list[str]]
) -> dict[str, Any] | int:
    """The staffing document (with the checks), or an exit code after a message."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.clock import PbxClock
    from app.config.errors import ConfigInvalid
    from app.config.kinds import GOALS
    from app.config.loader import load_config
    from app.planning import (
        Planner,
        PlanningError,
        PlanOptions,
        schedule_of_flows,
    )
    from app.reports.goals import goals_on
    from app.store.db import create_engine, session_factory
    from app.tools.shell import safe_url as _safe_url

    try:
        config = load_config(Path(settings.ivr_flows))
    except ConfigInvalid as exc:
        print(f"acd plan: the configuration files are invalid: {exc}", file=sys.stderr)
        return 2
    schedule = schedule_of_flows(config.flows)
    catalogue = config.queues
    assert catalogue is not None  # a required kind
    kpi = KpiConfig(settings.short_abandon_seconds, settings.service_level_seconds)
    goals = goals_on(config[GOALS], PbxClock(settings.tz).today())
    engine = create_engine(settings.database_url)
    planner = Planner(
        session_factory(engine),
        tz=settings.tz,
        queues=lambda: catalogue.names,
        wrapup=lambda: {q.name: float(q.wrapup_seconds) for q in catalogue.queues},
        schedule=lambda: schedule,
        # The agreement in force (ivr_flows/goals.yaml), as the service takes it.
        targets=PlanTargets.from_goals(goals, kpi) if goals is not None else PlanTargets(),
        short_abandon_seconds=settings.short_abandon_seconds,
        # Outside the service there is no PBX to learn the skew from: the host's today.
        clock=PbxClock(settings.tz),
    )
    options = PlanOptions(
        shrinkage=args.shrinkage,
        max_occupancy=args.max_occupancy,
        patience=args.patience,
        groups=pools,
        history_weeks=args.history_weeks,
    )
    try:
        data, fcs, plans, inputs = await planner.plan(start, args.days, options)
        accuracy = planner.accuracy(data, start, planner.queues)
    except (PlanningError, StaffingError) as exc:
        print(f"acd plan: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(
            f"acd plan: cannot read the log in {_safe_url(settings.database_url)} "
            f"({type(exc).__name__}; is it reachable and migrated? `acd migrate`)",
            file=sys.stderr,
        )
        return 2
    finally:
        await engine.dispose()
    checks: dict[str, Any] | None = None
    if args.check:
        from app.sim.check import Checker
        from app.sim.runner import load_queues

        queues = load_queues(catalogue)
        checks = {}
        for day in sorted({p.day for p in plans if p.closed is None}):
            checker = Checker(
                queues, day, fcs, plans, inputs.targets, kpi,
                tz=settings.timezone, seed=args.seed, rounds=args.rounds,
            )  # fmt: skip
            checks[day.isoformat()] = (await checker.run()).as_dict(checker.members)
    return planner.document(data, plans, inputs, options, accuracy, checks)


def _f(v: Any, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def plan_text(doc: Mapping[str, Any]) -> str:
    """The plan as a table for the planner (Danish, like the workbook)."""
    lines: list[str] = []
    t = doc["targets"]
    lines.append(
        f"Bemandingsplan fra loggen til og med {doc['origin']} "
        f"({doc['history']['days']} dage med opkald)"
    )
    lines.append(
        f"Mål: tilgængelighed {_pct(t['answer_rate'])}, ventetid højst "
        f"{_f(t['avg_wait_seconds'], '{:.0f}')} s, servicegrad {_pct(t['service_level'])} "
        f"inden for {t['service_level_seconds']:.0f} s"
        + (f", belægning højst {_pct(t['max_occupancy'])}" if t["max_occupancy"] else "")
    )
    s, p = doc["shrinkage"], doc["patience"]
    lines.append(
        f"Svind {_pct(s['share'])} ({'målt' if s['source'] == 'measured' else 'givet'}); "
        f"tålmodighed {_f(p['centre_seconds'], '{:.0f}')} s i snit "
        f"({'målt' if p['source'] == 'measured' else 'givet'})"
    )
    acc = doc["accuracy"]
    c = acc.get("centre")
    if c:
        lines.append(
            f"Prognosens træfsikkerhed (backtest, {c['days']} dage, {acc['horizon_days']} "
            f"dage frem): WAPE dag {_pct(c['wape_day'])}, halvtime {_pct(c['wape_half_hour'])}, "
            f"bias {_pct(c['bias'])}, interval-dækning {_pct(c['interval_coverage'])}"
        )
    for day in doc["days"]:
        lines.append("")
        if day["closed"]:
            lines.append(f"{day['date']}: lukket ({day['closed']})")
            continue
        h = day["agent_hours"]
        lines.append(
            f"{day['date']}: agenttimer Erlang C {h['erlang_c']:.1f}, Erlang A "
            f"{h['erlang_a']:.1f}, plan {h['plan']:.1f}, vagtplan med svind {h['rostered']:.1f}"
        )
        for g in day["groups"]:
            if not g["half_hours"]:
                continue
            e = g["expected"]["erlang_a"] or g["expected"]["erlang_c"]
            lines.append(
                f"  {g['group']}: {e['calls']:.0f} opkald, forventet tilgængelighed "
                f"{_pct(e['answer_rate'])}, ventetid {_f(e['avg_wait_seconds'])} s, "
                f"servicegrad {_pct(e['service_level'])}"
            )
            lines.append("    kl.    opkald  beh.tid  C   A   vagt")
            for row in g["half_hours"]:
                lines.append(
                    f"    {row['start']}  {row['calls']:6.1f}  {_f(row['aht_seconds'], '{:5.0f}')}"
                    f"  {_f((row['erlang_c'] or {}).get('agents'), '{:>2}')}"
                    f"  {_f((row['erlang_a'] or {}).get('agents'), '{:>2}')}"
                    f"  {_f(row['rostered'], '{:>3}')}"
                    + (f"  ({row['note']})" if row["note"] else "")
                )
    for day, check in (doc.get("check") or {}).items():
        h = check["agent_hours"]
        lines.append("")
        lines.append(
            f"Simulation {day}: målene {'nået' if check['met'] else 'IKKE nået'}; agenttimer "
            f"Erlang C {h['erlang_c']:.1f}, Erlang A {h['erlang_a']:.1f}, simuleret optimum "
            f"{_f(h['simulated_optimal'])} ({len(check['rounds'])} simulerede dage)"
        )
        centre = check.get("centre")
        if centre:
            lines.append(
                f"  hele centret: {centre['offered']} opkald, tilgængelighed "
                f"{_pct(centre['answer_rate'])}, ventetid {_f(centre['avg_wait_seconds'])} s, "
                f"servicegrad {_pct(centre['service_level'])}"
            )
        for slot, v in (check.get("centre_half_hours") or {}).items():
            mark = {True: "ok", False: "MISSER " + ",".join(v["missed"]), None: "få opkald"}[
                v["met"]
            ]
            lines.append(
                f"  {slot}  {v['offered']:4d} opkald  tilgængelighed {_pct(v['answer_rate'])}  "
                f"ventetid {_f(v['avg_wait_seconds'])} s  servicegrad {_pct(v['service_level'])}  "
                f"{mark}"
            )
    return "\n".join(lines) + "\n"
