"""What a router may receive, as typed dependencies: ``rt: Rt``, ``clock: Clock``, ...

The one place that knows where the parts live (the ``Runtime`` on ``app.state``); a
router names the parts it uses in its signature and never reaches into the request for
them. ``Config`` is the configuration snapshot running when the request came in: one
request sees one consistent set even while a reload swaps in the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.acd.events import DomainEvent
from app.acd.state import CallCentre
from app.acd.work import WorkConfig
from app.ami import agent_actions as actions
from app.ami.link import AmiLink
from app.clock import PbxClock
from app.config.registry import ConfigRegistry
from app.config.snapshot import ConfigSnapshot
from app.live.store import LiveStore
from app.messages import MessageFiles
from app.metrics import Metrics
from app.privacy import CallerPrivacy
from app.reports.rollup import Context as ReportContext
from app.retention import RetentionConfig
from app.runtime import Runtime
from app.services.errors import Invalid, Unavailable
from app.services.pbx import PbxGate
from app.settings import PBX_ID, Settings
from app.store.agents import Roster


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


Rt = Annotated[Runtime, Depends(runtime)]


def _settings(rt: Rt) -> Settings:
    return rt.settings


def _sessions(rt: Rt) -> async_sessionmaker[AsyncSession]:
    return rt.sessions


def _clock(rt: Rt) -> PbxClock:
    return rt.clock


def _registry(rt: Rt) -> ConfigRegistry:
    return rt.config


def _config(rt: Rt) -> ConfigSnapshot:
    return rt.config.current


def _work(rt: Rt, config: Annotated[ConfigSnapshot, Depends(_config)]) -> WorkConfig:
    if config.work is None:
        raise Unavailable(
            f"no {rt.settings.ivr_flows}/work.yaml loaded: pause reasons, registration "
            "reasons and destinations are not configured"
        )
    return config.work


def _centre(rt: Rt) -> CallCentre:
    return rt.centre


def _roster(rt: Rt) -> Roster:
    return rt.roster


def _metrics(rt: Rt) -> Metrics:
    return rt.metrics


def _privacy(rt: Rt) -> CallerPrivacy:
    return rt.privacy


def _messages(rt: Rt) -> MessageFiles:
    return rt.messages


def _retention(rt: Rt) -> RetentionConfig:
    return rt.retention()


def _emit(rt: Rt) -> Callable[[DomainEvent], None]:
    return rt.emit


def _live(
    rt: Rt,
    pbx: Annotated[
        str | None,
        Query(
            max_length=32,
            pattern=f"^{PBX_ID.pattern}$",
            description="One PBX's picture (a name of ACD_PBXS); without it, the whole "
            "centre across its PBXs.",
        ),
    ] = None,
) -> LiveStore:
    if rt.live is None:
        raise Unavailable("the live state is not part of this service")
    if pbx is None:
        return rt.live
    store = rt.live_of.get(pbx)
    if store is None:
        known = ", ".join(rt.live_of) or "none"
        raise Invalid(f"no PBX {pbx!r} in this centre (ACD_PBXS: {known})", ("query", "pbx"))
    return store


def _reports(rt: Rt) -> ReportContext:
    ctx = rt.report_context()
    if ctx is None:
        raise Unavailable(
            f"no {rt.settings.ivr_flows}/goals.yaml loaded: no goals to report against, no "
            "past days kept"
        )
    return ctx


def _maybe_reports(rt: Rt) -> ReportContext | None:
    return rt.report_context()


def _ami(rt: Rt) -> AmiLink | None:
    return rt.ami


def _pbx(rt: Rt) -> PbxGate:
    ownership = rt.ownership
    if ownership is not None and not ownership.is_owner:
        # The PBX's link and its state are on the owner (docs/high-availability.md).
        raise Unavailable(
            f"this process is a {ownership.role} for {ownership.pbx}: actions on the PBX "
            "go through its owner (GET /ready, roles); try again"
        )
    pbx = actions.Pbx(rt.ami, rt.confirmations, rt.centre, rt.settings.ami_confirm_timeout)
    return PbxGate(pbx, rt.metrics)


AppSettings = Annotated[Settings, Depends(_settings)]
Sessions = Annotated[async_sessionmaker[AsyncSession], Depends(_sessions)]
Clock = Annotated[PbxClock, Depends(_clock)]
Registry = Annotated[ConfigRegistry, Depends(_registry)]
Config = Annotated[ConfigSnapshot, Depends(_config)]
Work = Annotated[WorkConfig, Depends(_work)]
Centre = Annotated[CallCentre, Depends(_centre)]
RosterDep = Annotated[Roster, Depends(_roster)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
Privacy = Annotated[CallerPrivacy, Depends(_privacy)]
Messages = Annotated[MessageFiles, Depends(_messages)]  # the voice messages' files
Retention = Annotated[RetentionConfig, Depends(_retention)]  # retention.yaml or defaults
Emit = Annotated[Callable[[DomainEvent], None], Depends(_emit)]
Live = Annotated[LiveStore, Depends(_live)]
Reports = Annotated[ReportContext, Depends(_reports)]  # what reports are counted with
# The same, or None without a goals file (for what works without it, and says so later).
MaybeReports = Annotated[ReportContext | None, Depends(_maybe_reports)]
Pbx = Annotated[PbxGate, Depends(_pbx)]
Ami = Annotated[AmiLink | None, Depends(_ami)]  # the AMI link (None: no PBX configured)
