"""The running service: its parts, built from the settings and wired together.

``build_runtime(settings)`` makes every component (database, configuration registry,
roster, event writer, pipeline, live picture, FastAGI server, AMI link, dialer) and gives
each what it uses: no component reaches back for the runtime. The HTTP side
(``app/main.py``, ``app/api``) reaches the parts through typed dependencies
(``app/api/deps.py``); this module imports no FastAPI, so tools, benchmarks and other
service processes can build and run a runtime without a web app.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.acd.board import QueueInfo
from app.acd.calendar import Schedule
from app.acd.callbacks import callback_due
from app.acd.estimates import EstimateSource, QueueEstimate, no_estimates
from app.acd.events import DomainEvent, PbxLifecycle
from app.acd.kpi import CountedVisit, DayBook, KpiConfig
from app.acd.plan import PlanTargets
from app.acd.queues import QueueCatalogue
from app.acd.state import CallCentre
from app.agi.channel import AgiLimits
from app.agi.server import AgiServer
from app.ami.confirm import Confirmations
from app.ami.link import AmiLink
from app.ami.normalise import Normaliser
from app.clock import PbxClock
from app.components import Component, DatabaseComponent, RedisComponent
from app.config.kinds import GOALS, RETENTION
from app.config.registry import ConfigRegistry
from app.dialer import CallbackDialer
from app.ha.lease import Lease
from app.ha.ownership import Ownership
from app.ha.relay import ClockShare, Handoff, RelayReceiver, RelaySender, SharedCounter
from app.live.centre import CentreView
from app.live.collector import LiveCollector, PbxCollector
from app.live.history import calls_of_day, visits_of_day
from app.live.hub import LiveHub
from app.live.mirror import RedisMirror, RedisReader
from app.live.queries import estimate_from
from app.live.store import LiveStore
from app.messages import MessageFiles, MessageFolder
from app.metrics import Metrics
from app.pipeline import Pipeline
from app.planning import IntradayMonitor, Planner, PlanningError, schedule_of_flows
from app.privacy import CallerPrivacy
from app.reports.archive import ReportArchive
from app.reports.goals import goals_on
from app.reports.rollup import Context as ReportContext
from app.reports.rollup import RollupJob
from app.retention import DEFAULTS, RetentionConfig
from app.services.privacy import PurgeJob
from app.services.rekey import RekeyJob
from app.settings import Settings
from app.store import restore
from app.store.agents import Roster
from app.store.auth import CredentialMemory
from app.store.db import create_engine, session_factory
from app.store.writer import Backend, EventWriter, PostgresBackend, SqliteBackend

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The running service's parts (module doc). Routers take the parts they use through
    ``app/api/deps.py``; components are given theirs when built, never this."""

    settings: Settings
    clock: PbxClock  # the one "now" for business time (app/clock.py)
    metrics: Metrics
    privacy: CallerPrivacy
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    centre: CallCentre
    pipeline: Pipeline
    writer: EventWriter
    roster: Roster
    # Credentials the database recently confirmed (live polls; reads while it is away).
    credentials: CredentialMemory
    # The configuration files (queues, work data, menu flows): read ``config.current``
    # each time, never keep it (a reload swaps it).
    config: ConfigRegistry
    redis: Redis | None = None
    ami: AmiLink | None = None
    # Agent actions wait here for the AMI events that confirm them (app.ami.confirm).
    confirmations: Confirmations = field(default_factory=Confirmations)
    dialer: CallbackDialer | None = None
    components: list[Component] = field(default_factory=list)
    # Where producers (AMI normaliser, IVR sessions, API) hand their domain events; each
    # listener must return at once (enqueue into its own bounded queue, never await).
    listeners: list[Callable[[DomainEvent], None]] = field(default_factory=list)
    # Live queue figures for the IVR (replaced by the live state once it runs).
    estimates: EstimateSource = no_estimates
    # The live picture this process serves (REST, stream, gauges); ``hub`` builds it on
    # the process that owns the AMI link, ``reader`` follows the Redis mirror on a replica.
    live: LiveStore | None = None
    # Each PBX's own picture (``?pbx=``): with one PBX, ``live`` itself; with several
    # (ACD_PBXS), ``live`` is their sum made by ``centre_view`` (app/live/centre.py).
    live_of: dict[str, LiveStore] = field(default_factory=dict)
    centre_view: CentreView | None = None
    hub: LiveHub | None = None
    reader: RedisReader | None = None
    # Forecasts and staffing plans (/v1/forecast, /v1/staffing) and "goal at risk".
    planner: Planner | None = None
    # Several processes for one PBX (app/ha): the lease decides which one owns it; a
    # standby relays the events it makes (its FastAGI sessions, the API) to the owner.
    ownership: Ownership | None = None
    relay: RelaySender | None = None
    # The owner's own events, held from a takeover until the relayed backlog is in.
    handoff: Handoff | None = None
    # The voice messages' files (app/messages.py); set by build_runtime.
    messages: MessageFiles = field(default_factory=lambda: MessageFiles(None, list))

    def retention(self) -> RetentionConfig:
        """How long each kind of data is kept (retention.yaml, or its defaults)."""
        return self.config.current[RETENTION] or DEFAULTS

    def report_context(self) -> ReportContext | None:
        """What reports are counted with, from the running configuration (None: no
        goals.yaml)."""
        current = self.config.current
        goals = current[GOALS]
        if goals is None:
            return None
        s = self.settings
        return ReportContext(
            tz=s.tz,
            config=KpiConfig(s.short_abandon_seconds, s.service_level_seconds),
            goals=goals,
            catalogue=current.queues,
            repeat_days=s.repeat_call_working_days,
            settle=timedelta(minutes=s.disposition_window_minutes),
        )

    def parts(self) -> list[Component]:
        """What ``/ready`` checks: the components, and the owner's or the standby's parts
        while they run."""
        if self.ownership is None:
            return list(self.components)
        return [*self.components, *self.ownership.active()]

    def roles(self) -> dict[str, str]:
        """Per PBX, this process's role (``/ready``)."""
        if self.ownership is not None:
            return {self.ownership.pbx: self.ownership.role}
        return {self.settings.pbx_id: "owner" if self.ami is not None else "replica"}

    def emit(self, event: DomainEvent) -> None:
        """An event made here (FastAGI, the API): into the pipeline on the PBX's owner
        (after the events relayed before it, app/ha/relay.py), to the owner through Redis
        on a standby."""
        ownership = self.ownership
        # Not the owner, or an owner unsure of its lease (after a pause, its successor
        # may be at work): through the stream, to whichever process owns the PBX.
        if ownership is not None and not ownership.may_act():
            if self.relay is not None:
                self.relay.publish(event)
                return
            if ownership.role != "owner":
                log.error("standby without Redis: event %s not relayed to the owner", event.kind)
                return
            # An owner unsure of its lease (a database outage longer than the lease) with
            # no Redis to relay through: its own pipeline is the only place the event is
            # kept. The writer spills it meanwhile; if the lease did move, the fence
            # refuses it. (Dropping it lost the menus' routes of a single process with a
            # lease through every database outage.)
        if self.handoff is not None:
            self.handoff.emit(event)
        else:
            self.deliver(event)

    def deliver(self, event: DomainEvent) -> None:
        """Hand an event to the listeners (the pipeline first)."""
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed on %s", event.kind)


def build_runtime(settings: Settings, metrics: Metrics | None = None) -> Runtime:
    if settings.caller_hash_key is not None:
        previous = settings.caller_hash_key_previous
        privacy = CallerPrivacy(
            settings.caller_hash_key.get_secret_value().encode("utf-8"),
            previous.get_secret_value().encode("utf-8") if previous is not None else None,
        )
    else:
        log.warning(
            "ACD_CALLER_HASH_KEY is not set: caller hashes are random per process and "
            "cannot be compared across restarts"
        )
        privacy = CallerPrivacy.ephemeral()
    metrics = metrics or Metrics()
    clock = PbxClock(settings.tz)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    config = ConfigRegistry(settings.ivr_flows, metrics)
    config.load()  # before anything starts; errors leave the service not ready
    roster = Roster(sessions, lambda: config.current.queues)
    centre = CallCentre(
        settings.pbx_id,
        lambda: config.current.queues,
        agent_of=roster.agent_of,
        due_at=lambda at: callback_due(at, settings.tz),
        stale_after=timedelta(seconds=settings.stale_call_seconds),
    )
    lease = (
        Lease(settings.database_url, settings.pbx_id, ttl=settings.lease_ttl)
        if settings.lease_enabled
        else None
    )
    backend: Backend = (
        SqliteBackend(engine)
        if settings.is_sqlite
        else PostgresBackend(
            settings.database_url,
            fence=lease.token if lease else None,
            application_name=f"acd-writer:{lease.holder}" if lease else "acd-writer",
        )
    )
    writer = EventWriter(
        backend, metrics, settings.spill_dir / f"spill-{settings.pbx_id}.jsonl", clock=clock.wall
    )
    pipeline = Pipeline(centre, Normaliser(settings.pbx_id, privacy), metrics, writer, clock=clock)
    pipeline.restore_from = partial(restore.open_calls, sessions, settings.pbx_id)
    rt = Runtime(
        settings=settings,
        clock=clock,
        metrics=metrics,
        privacy=privacy,
        engine=engine,
        sessions=sessions,
        centre=centre,
        pipeline=pipeline,
        writer=writer,
        roster=roster,
        credentials=CredentialMemory(settings.auth_outage_seconds),
        config=config,
    )
    rt.messages = MessageFiles(
        settings.message_dir,
        lambda: [f.callback.message_dir for f in config.current.flows.values()],
    )
    rt.listeners.append(pipeline.on_event)
    pipeline.listeners.append(rt.confirmations.on_event)
    rt.components += [config, DatabaseComponent(engine), roster]
    # A process without AMI but with Redis is an API replica: it serves the live picture
    # the AMI owner mirrors to Redis. The owner works on without Redis (not required).
    is_reader = settings.redis_url is not None and settings.ami_host is None
    if settings.redis_url is not None:
        rt.redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        rt.components.append(RedisComponent(rt.redis, required=is_reader))
    # The owner's parts: on a single process (or an API replica) simply components; with
    # a lease, started only while this process holds it (app/ha/ownership.py).
    head: list[Component] = [writer, pipeline, MessageFolder(rt.messages)]
    tail: list[Component] = []
    standby: list[Component] = []
    _live(rt, is_reader, head, standby, ha=lease is not None)
    agi = _agi_server(rt)
    _planning(rt, tail)
    if not is_reader and settings.pbx_id == settings.primary_pbx:
        # The centre's jobs, on one owner for the whole centre (the first PBX's: with
        # several PBXs each has an owner, and these work on every PBX's rows).
        # Counts the report tallies of the last weeks' days ahead of the reports.
        tail.append(RollupJob(sessions, rt.report_context, clock.now))
        if settings.purge_interval_minutes > 0:
            # Deletes what is past its retention (retention.yaml), in small batches.
            tail.append(
                PurgeJob(
                    sessions,
                    retention=rt.retention,
                    ctx=rt.report_context,
                    clock=clock.now,
                    tz=settings.tz,
                    files=rt.messages,
                    spill_dir=settings.spill_dir,
                    interval=settings.purge_interval_minutes * 60.0,
                )
            )
        if privacy.previous is not None:
            # A key rotation under way: stored hashes and sealed numbers move to the new key.
            tail.append(RekeyJob(sessions, privacy, clock.now))
        if settings.report_archive:
            # Makes and keeps the weekly, monthly and quarterly reports as periods end.
            tail.append(
                ReportArchive(
                    sessions,
                    rt.report_context,
                    clock.now,
                    delay=timedelta(minutes=settings.report_archive_delay_minutes),
                    catchup_days=settings.report_archive_catchup_days,
                )
            )
    if settings.ami_host is not None:
        rt.ami = AmiLink(
            host=settings.ami_host,
            port=settings.ami_port,
            username=settings.ami_username,
            secret=settings.ami_secret.get_secret_value() if settings.ami_secret else "",
            metrics=metrics,
            on_frame=pipeline.on_ami_frame,
            on_batch_end=pipeline.after_read,
            on_skipped=pipeline.count_skipped,
            on_connected=lambda link: pipeline.resync(link.action),
            on_lost=pipeline.on_link_lost,
            clock=clock.wall,  # when a frame was received: the skew is measured against it
        )
        tail.append(rt.ami)
        pipeline.listeners.append(_resync_on_reload(pipeline, rt.ami))
    # Always present: it keeps the overdue call-back gauges; it dials only when
    # ACD_DIALER_ENABLED and a PBX is configured.
    rt.dialer = CallbackDialer(
        settings,
        sessions=sessions,
        centre=centre,
        metrics=metrics,
        privacy=privacy,
        link=rt.ami,
        queue_names=lambda: config.current.queue_names,
        clock=clock,
    )
    tail.append(rt.dialer)
    if lease is None:
        rt.components += [*head, *standby, agi, *tail]
        return rt
    _ownership(rt, lease, [*head, *tail], standby)
    rt.components.append(agi)
    return rt


def _ownership(rt: Runtime, lease: Lease, owner: list[Component], standby: list[Component]) -> None:
    """Several processes for one PBX: the owner's parts run under its lease; the menu's
    events of a standby reach the owner through Redis, the survey count is shared."""
    settings = rt.settings
    if rt.redis is not None:
        rt.relay = RelaySender(rt.redis, settings.pbx_id, rt.metrics)
        rt.components.append(rt.relay)
        rt.handoff = Handoff(rt.deliver)
        # Right after the pipeline: the backlog is in before the AMI link resyncs.
        owner.insert(
            owner.index(rt.pipeline) + 1,
            RelayReceiver(
                rt.redis,
                settings.pbx_id,
                lease.holder,
                rt.deliver,
                rt.metrics,
                handoff=rt.handoff,
                settle=rt.relay.drained,
                may_take=lambda: rt.ownership is not None and rt.ownership.may_act(),
            ),
        )
    else:
        log.warning(
            "a lease without Redis: a standby's FastAGI sessions cannot reach the owner "
            "and it serves no live picture (set ACD_REDIS_URL)"
        )
    rt.ownership = Ownership(
        lease,
        owner_parts=owner,
        standby_parts=standby,
        metrics=rt.metrics,
        renew=settings.lease_renew_interval,
        poll=settings.lease_poll_interval,
        wall=rt.clock.wall,
        clock_share=ClockShare(rt.redis, settings.pbx_id, rt.clock) if rt.redis else None,
    )
    rt.writer.on_fenced = rt.ownership.fenced
    assert rt.dialer is not None
    rt.dialer.may_act = rt.ownership.may_act
    rt.dialer.fence = lease.token
    rt.components.append(rt.ownership)


def _live(
    rt: Runtime, is_reader: bool, owner: list[Component], standby: list[Component], *, ha: bool
) -> None:
    """The live picture: built here (owner) or followed from Redis (replica, standby).
    ``ha``: both, the reader while a standby, the board while the owner."""
    settings, config = rt.settings, rt.config

    def new_store() -> LiveStore:
        return LiveStore(
            first_version=int(rt.clock.wall().timestamp() * 1000),
            max_clients=settings.stream_max_clients,
            on_drop=rt.metrics.stream_dropped.inc,
        )

    # This process's PBX: built here while it owns it, else followed from Redis.
    store = new_store()
    rt.live = rt.live_of[settings.pbx_id] = store
    pbxs = settings.centre_pbxs
    if len(pbxs) > 1:
        # The centre's other PBXs: followed from their owners' mirrors, on every process;
        # the main picture is the sum of all of them.
        assert rt.redis is not None  # the settings require it
        for other in pbxs[1:]:
            rt.live_of[other] = new_store()
            rt.components.append(
                RedisReader(rt.redis, other, rt.live_of[other], name=f"live-reader:{other}")
            )
        rt.live = new_store()
        rt.centre_view = CentreView(
            pbxs, rt.live_of, rt.live, clock=rt.clock.now, interval=settings.live_interval
        )
        rt.components.append(rt.centre_view)
    shown = rt.live

    def queue_names() -> tuple[str, ...]:
        """Metric labels: the running catalogue's queues (a replica without the files:
        those of the owner's snapshot)."""
        if config.current.queues is not None:
            return config.current.queue_names
        snap = shown.snapshot
        return tuple(snap["queues"]) if snap is not None else ()

    rt.metrics.registry.register(LiveCollector(shown, queue_names))
    rt.metrics.registry.register(PbxCollector(rt.live_of, queue_names))
    if is_reader or (ha and rt.redis is not None):
        assert rt.redis is not None
        rt.reader = RedisReader(rt.redis, settings.pbx_id, store)
        standby.append(rt.reader)
        rt.estimates = estimate_from(store)
        if is_reader:
            return
    mirror = (
        RedisMirror(
            rt.redis, settings.pbx_id, rt.metrics, ttl=max(10.0, 10 * settings.live_interval)
        )
        if rt.redis is not None
        else None
    )

    async def load_day(day: date) -> Sequence[CountedVisit]:
        visits: list[CountedVisit] = list(
            await visits_of_day(rt.sessions, settings.pbx_id, day, settings.tz)
        )
        return visits + list(await calls_of_day(rt.sessions, settings.pbx_id, day, settings.tz))

    hub = LiveHub(
        rt.centre,
        rt.clock,
        store,
        DayBook(
            settings.tz,
            KpiConfig(settings.short_abandon_seconds, settings.service_level_seconds),
        ),
        _queue_infos(config),
        rt.metrics,
        interval=settings.live_interval,
        load_day=load_day,
        sink=mirror,
        queue_label=rt.pipeline.queue_label,
        goals=lambda day: goals_on(config.current[GOALS], day),
    )
    rt.hub = hub
    rt.pipeline.drain_hooks.append(hub.on_drained)
    owner.append(hub)
    if mirror is not None:
        owner.append(mirror)
    if not ha:
        rt.estimates = hub.estimate
        return
    followed = estimate_from(store)

    def estimates(queue: str) -> QueueEstimate | None:
        """The owner's board, or the Redis mirror of it on a standby."""
        ownership = rt.ownership
        if ownership is not None and ownership.is_owner:
            return hub.estimate(queue)
        return followed(queue)

    rt.estimates = estimates


def _planning(rt: Runtime, owner: list[Component]) -> None:
    """The planner reads the log; on the process that builds the live board it also
    projects today's figures into it (goal at risk)."""
    settings, config = rt.settings, rt.config
    kpi = KpiConfig(settings.short_abandon_seconds, settings.service_level_seconds)
    # The agreement in force today (ivr_flows/goals.yaml) sets the staffing targets.
    goals = goals_on(config.current[GOALS], rt.clock.today())

    def schedule() -> Schedule:
        if not config.current.flows:
            raise PlanningError("the IVR flows are not loaded: opening hours unknown")
        return schedule_of_flows(config.current.flows)

    def wrapup() -> dict[str, float]:
        catalogue = config.current.queues
        queues = catalogue.queues if catalogue is not None else ()
        return {q.name: float(q.wrapup_seconds) for q in queues}

    rt.planner = Planner(
        rt.sessions,
        tz=settings.tz,
        queues=lambda: config.current.queue_names,
        wrapup=wrapup,
        schedule=schedule,
        targets=PlanTargets.from_goals(goals, kpi) if goals is not None else PlanTargets(),
        short_abandon_seconds=settings.short_abandon_seconds,
        clock=rt.clock,
    )
    if rt.centre_view is not None:
        # Several PBXs: the forecast is the centre's, so is the projection (on the sum).
        intraday = IntradayMonitor(rt.planner)
        rt.centre_view.decorators.append(intraday.decorate)
        rt.components.append(intraday)
    elif rt.hub is not None:
        intraday = IntradayMonitor(rt.planner)
        rt.hub.decorators.append(intraday.decorate)
        owner.append(intraday)


def _agi_server(rt: Runtime) -> AgiServer:
    s = rt.settings

    def estimates(queue: str) -> QueueEstimate | None:
        return rt.estimates(queue)  # late-bound: the live state replaces it when it runs

    return AgiServer(
        host=s.agi_host,
        port=s.agi_port,
        config=rt.config,
        emit=rt.emit,
        estimates=estimates,
        privacy=rt.privacy,
        metrics=rt.metrics,
        pbx=s.pbx_id,
        tz=s.tz,
        clock=rt.clock,  # the PBX's (app/clock.py): opening hours are its
        limits=AgiLimits(
            env_timeout=s.agi_env_timeout,
            reply_timeout=s.agi_reply_timeout,
            session_seconds=s.agi_session_timeout,
        ),
        max_sessions=s.agi_max_sessions,
        # Several processes for one PBX share the survey's count (Redis).
        counter=SharedCounter(rt.redis, s.pbx_id) if rt.redis and s.lease_enabled else None,
    )


def _resync_on_reload(pipeline: Pipeline, link: AmiLink) -> Callable[[DomainEvent], None]:
    """A reload (queues.conf, members) changes what the PBX has: ask it again."""
    tasks: set[asyncio.Task[int]] = set()

    def listener(event: DomainEvent) -> None:
        if isinstance(event, PbxLifecycle) and event.what == "reload":
            task = asyncio.get_running_loop().create_task(pipeline.resync(link.action))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    return listener


def _queue_infos(config: ConfigRegistry) -> Callable[[], list[QueueInfo]]:
    """The board's queues, from the running catalogue (made again after a reload)."""
    made: list[tuple[QueueCatalogue | None, list[QueueInfo]]] = [(None, [])]

    def infos() -> list[QueueInfo]:
        catalogue = config.current.queues
        if catalogue is not made[0][0]:
            queues = catalogue.queues if catalogue is not None else ()
            made[0] = (catalogue, [QueueInfo(q.name, q.title, q.wrapup_seconds) for q in queues])
        return made[0][1]

    return infos


def settle_heap() -> None:
    """Once the service is up: what exists now (modules, flows, ORM metadata, the
    catalogue) lives as long as the process, so keep it out of the cyclic collector's full
    scans, which otherwise paused the event loop for up to 100 ms (bench/api.py's p99).
    Everything made later is collected as usual. For the serving process only (tests
    build many apps in one process)."""
    gc.collect()
    gc.freeze()
