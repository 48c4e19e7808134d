"""Simulated PBX: AMI server + FastAGI client + app_queue model + traffic model.

See docs/simulator.md. The names below are the API for ``acd simulate``, ``acd demo``,
the end-to-end tests and the benchmarks.
"""

from app.sim.behaviour import Reply, ScriptedAgent, ScriptedCaller, Talk
from app.sim.conf import QueuesConfig, QueueSpec, from_catalogue, parse_queues_conf
from app.sim.manager import ManagerUser, parse_manager_conf
from app.sim.pbx import PbxConfig
from app.sim.runner import (
    DEFAULT_USERS,
    DayResult,
    SimulatedPbx,
    default_queues,
    load_queues,
)
from app.sim.stub_ivr import StubIvr
from app.sim.traffic import (
    DayPlan,
    FunctionKeyPlanner,
    KeyPlanner,
    MappingKeyPlanner,
    TrafficConfig,
    catalogue_key_planner,
    plan_day,
)
from app.sim.truth import OUTCOMES, CallTruth, TruthLog, read_jsonl

__all__ = [
    "DEFAULT_USERS",
    "OUTCOMES",
    "CallTruth",
    "DayPlan",
    "DayResult",
    "FunctionKeyPlanner",
    "KeyPlanner",
    "ManagerUser",
    "MappingKeyPlanner",
    "PbxConfig",
    "QueueSpec",
    "QueuesConfig",
    "Reply",
    "ScriptedAgent",
    "ScriptedCaller",
    "SimulatedPbx",
    "StubIvr",
    "Talk",
    "TrafficConfig",
    "TruthLog",
    "catalogue_key_planner",
    "default_queues",
    "from_catalogue",
    "load_queues",
    "parse_manager_conf",
    "parse_queues_conf",
    "plan_day",
    "read_jsonl",
]
