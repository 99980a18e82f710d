"""The LiveKit Agents worker: registers under our agent name, and runs one receptionist session per call.

Wiring only; the receptionist lives in agent/receptionist.py, the session in agent/session.py.
Run: `python -m agent.worker console|dev|start|download-files`.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import sys

from aiohttp import web
from livekit import rtc
from livekit.agents import (
    NOT_GIVEN,
    AgentServer,
    JobContext,
    JobExecutorType,
    JobProcess,
    cli,
    room_io,
)
from livekit.agents.cli.log import JsonFormatter
from livekit.agents.worker import ServerEnvOption

from agent import livekit_internals, log_privacy, turn_model
from agent.brain import BrainError, load_brains
from agent.call import CallContext
from agent.call_end import finish_call
from agent.call_keeper import CallKeeper
from agent.call_start import answer, open_call
from agent.console_view import show_the_agents_own_turns
from agent.fallback_audio import FallbackLibrary
from agent.health import WorkerHealth
from agent.kept_greeting import voiced_line
from agent.live import LiveState
from agent.live.waiting_calls import takes_a_message
from agent.metrics import WorkerMetrics, follow_journal
from agent.model_link import check_model_key
from agent.overflow import BusyLine
from agent.receptionist import brain_for_call
from agent.session import realtime_model, settings_for_brain
from agent.settings import Settings, SettingsError, load_settings, max_calls_basis, require
from agent.store.db import DatabaseNotReady, require_current_schema
from agent.store.journal.spill_file import spill_files
from agent.store.journal.writer import keep_replaying_spill, replay_spill
from agent.store.runtime import call_stores
from agent.telephony import LiveKitLine, SipCaller, wait_until_active, why_the_caller_left
from agent.warm_transfer import WarmTransferLine

log = logging.getLogger("receptionist.worker")

SPILL_REPLAY_SECONDS = 10.0  # how often the worker looks for call records ended calls left on disk


def prewarm(proc: JobProcess) -> None:
    # once per job process: settings, every brain and the VAD model, so a call starts warm; the
    # forkserver loaded them once already (agent/preload.py), unless a brain file changed since
    from agent.preload import warm

    log_privacy.install()  # job processes start from LiveKit's forkserver, not from main()
    ready = warm()
    proc.userdata["settings"] = ready.settings
    proc.userdata["brains"] = ready.brains
    proc.userdata["vad"] = ready.vad
    for brain in ready.brains.all:  # an audio turn model (TURN_MODEL, or a brain's), loaded once here
        turn_model.warm(settings_for_brain(ready.settings, brain))
    # what callers hear when the model is down, rendered before any call (cached on disk)
    # in the model's own voice when the worker had it read them (agent/voiced_lines.py)
    proc.userdata["fallback"] = FallbackLibrary(ready.brains.all, ready.settings.fallback_audio_dir,
                                                voiced=voiced_line(ready.settings))  # fmt: skip


async def entrypoint(ctx: JobContext) -> None:
    settings: Settings = ctx.proc.userdata["settings"]
    brains = ctx.proc.userdata["brains"]
    await ctx.connect()

    caller: SipCaller | None = None
    participant = None
    if not ctx.is_fake_job():
        participant = await ctx.wait_for_participant()
        caller = SipCaller.from_participant(participant)

    # the dispatch rule names the business (sip.provision); the dialed number is the fallback
    dispatch = json.loads(ctx.job.metadata) if ctx.job.metadata else {}
    dialed = (caller.dialed_number if caller else None) or next(iter(dispatch.get("numbers") or []), None)
    brain, known = brain_for_call(brains, dialed, dispatch.get("business"))
    if not known:
        log.warning("no brain for dialed number %s; answering generically", dialed)

    stores = await call_stores(settings)
    backlog = None
    if settings.metrics_port is not None and stores.journal is not None:
        backlog = asyncio.create_task(follow_journal(stores.journal))
    call = CallContext(
        brain=brain,
        room=ctx.room.name,
        caller_number=caller.caller_number if caller else None,
        dialed_number=dialed,
        sip_call_id=caller.sip_call_id if caller else None,
        twilio_call_sid=caller.twilio_call_sid if caller else None,
        caller_verstat=caller.caller_verstat if caller else None,
        journal=stores.journal,
        pool=stores.pool,
        live=stores.live,
        line=LiveKitLine(ctx.api, ctx.room.name, caller.identity) if caller else None,
    )
    call.start()
    # every line this job process logs names its call, LiveKit's own included (the JSON of `start`
    # carries them as fields, dev's coloured lines at the end): one call's story is one grep
    ctx.log_context_fields = {"call_id": str(call.call_id), "business": brain.business.name}

    # a caller who rang while every worker was full: a message taken without the model
    keeper: CallKeeper | BusyLine
    if takes_a_message(ctx.job.metadata):
        busy, opened = BusyLine(call, settings, ctx.proc.userdata["fallback"].for_brain(brain)), None
        keeper = busy
    else:
        busy, opened = None, open_call(
            call, settings, model=realtime_model, vad_model=ctx.proc.userdata["vad"],
            fallback=ctx.proc.userdata["fallback"],
        )  # fmt: skip
        keeper = opened.keeper
    if opened is not None and call.line is not None and caller is not None:
        call.line = WarmTransferLine(
            call.line, caller.identity, call=call, session=opened.session, room=ctx.room, lk=ctx.api,
            settings=opened.settings,
        )  # fmt: skip
    if caller is not None:
        caller_identity = caller.identity

        def on_left(p: rtc.RemoteParticipant) -> None:
            if p.identity != caller_identity:
                return
            try:
                keeper.caller_departed(why_the_caller_left(p))
            except Exception:  # an error here would stop the room's other handlers of this event
                log.exception("recording how the caller's leg left failed")

        ctx.room.on("participant_disconnected", on_left)
    if opened is not None and ctx.is_fake_job():  # console: the greeting and check-ins, not only replies
        show_the_agents_own_turns(opened.session)

    async def end_with_the_caller() -> None:
        # the caller hung up: the job ends now (its record saved first), not when LiveKit closes the
        # emptied room (`departure_timeout`, 20 s by default), so a draining replica exits with its
        # last caller and the call's slot is free at once
        await keeper.closed.wait()
        if keeper.caller_left:
            ctx.shutdown(reason="caller hung up")

    ending = asyncio.create_task(end_with_the_caller())

    async def on_shutdown(reason: str) -> None:
        ending.cancel()
        finish_call(call, reason=call.end_reason or reason or "room closed")
        if call.recording is not None:
            await call.recording.finish()
        await stores.release(call)
        if backlog is not None:
            backlog.cancel()

    ctx.add_shutdown_callback(on_shutdown)

    async def admit(c: CallContext) -> bool:
        return await stores.admit(c, worker=ctx.worker_id)

    async def line_up() -> None:
        if participant is not None:
            await wait_until_active(ctx.room, participant, within_s=30)
            if opened is not None:
                ctx.room.on("sip_dtmf_received", opened.keeper.on_dtmf)

    room_options = room_io.RoomOptions(
        participant_identity=caller.identity if caller else NOT_GIVEN, close_on_disconnect=True
    )
    admitted = admit if caller is not None else None  # console's typed call has no caller to limit
    if busy is not None:
        await busy.answer(admit=admitted, room=ctx.room, room_options=room_options, line_up=line_up)
        return
    assert opened is not None
    await answer(opened, known=known, admit=admitted, room=ctx.room, room_options=room_options, line_up=line_up)


def json_logs() -> None:
    """LiveKit's JSON lines (what `start` prints) in dev and console too. LiveKit has configured the
    root logger's handler by now; job processes send their records to it, so theirs follow."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setFormatter(JsonFormatter())


def job_process_environment() -> None:
    """Before the worker's process pool starts: LiveKit's forkserver would otherwise preload its local
    end-of-turn model (~244 MB mapped into every job process), which the receptionist never uses."""
    os.environ.setdefault("LIVEKIT_AGENTS_PRELOAD_LOCAL_INFERENCE", "0")


class ReceptionistServer(livekit_internals.CallSlotsLoad, AgentServer):
    """An AgentServer that keeps the error that stopped it: LiveKit's CLI logs it with a traceback
    and exits 0, which a supervisor takes for a clean stop, so main() turns it into one line and a
    non-zero exit."""

    failure: Exception | None = None
    worker_metrics: WorkerMetrics | None = None
    settings: Settings | None = None
    agent_name: str = ""  # what the dispatch rules name (build_server)

    @property
    def call_slots(self) -> int | None:  # CallSlotsLoad: the calls its load counts, WORKER_MAX_CALLS
        return self.settings.worker_max_calls if self.settings is not None else None

    @property
    def overflow_slots(self) -> int:  # CallSlotsLoad: messages for a full fleet, WORKER_OVERFLOW_CALLS
        return self.settings.worker_overflow_calls if self.settings is not None else 0

    async def run(self, *, devmode: bool = False, unregistered: bool = False) -> None:
        if self.settings is not None and self.settings.log_format == "json":
            json_logs()
        log_privacy.mask_handlers()  # the room names LiveKit adds to a job's records as fields
        watch: asyncio.Task[None] | None = None

        def start_watching() -> None:
            nonlocal watch
            assert self.worker_metrics is not None
            watch = asyncio.create_task(self.worker_metrics.watch(lambda: len(self.active_jobs)))

        if self.worker_metrics is not None:
            self.on("worker_started", start_watching)
        if self.settings is not None and not unregistered:
            log.info("takes up to %d calls at once (%s)", self.settings.worker_max_calls,
                     max_calls_basis(self.settings))  # fmt: skip
        # the call registry in Redis, shared by the two sweeps below (one connection pool)
        live = self._live_state()
        sweeping = self._sweep_lost_calls(live)
        answering = self._answer_waiting_calls(live) if not unregistered else None
        moving = self._move_call_audio()
        replaying = self._replay_spilled_records()
        voicing = self._voice_lines() if not unregistered else None
        background = [t for t in (sweeping, answering, moving, replaying, voicing) if t is not None]
        health = None
        try:
            if self.settings is not None and self.settings.health_port is not None and not unregistered:
                health = await self._serve_health(self.settings.health_port)
            await super().run(devmode=devmode, unregistered=unregistered)
        except Exception as e:  # noqa: BLE001 - reported by main() as the reason the worker stopped
            self.failure = e
        finally:
            if watch is not None:
                watch.cancel()
            if self.worker_metrics is not None:
                self.worker_metrics.close()
            for task in background:
                task.cancel()
            # each ends its own way: the replay's files released, the voiced lines' pool closed
            await asyncio.gather(*background, return_exceptions=True)
            if health is not None:
                await health.cleanup()

    async def _serve_health(self, port: int) -> web.AppRunner:
        assert self.settings is not None
        try:
            return await WorkerHealth(self.settings).serve(port)
        except OSError as e:
            # not WORKER_PORT's message (startup_failure): name the setting that holds this port
            raise RuntimeError(f"HEALTH_PORT {port} is unavailable ({e.strerror}); set a free port") from e

    def _move_call_audio(self) -> asyncio.Task[None] | None:
        """With AUDIO_BUCKET, recordings and voicemails leave this worker's disk for the bucket."""
        settings = self.settings
        if settings is None or not settings.audio_bucket or not settings.database_url:
            return None
        from agent.store.audio import AudioMover, AudioStore

        store = AudioStore.from_settings(settings)
        assert store is not None
        mover = AudioMover(store, settings.database_url, recordings_dir=settings.recordings_dir,
                           voicemail_dir=settings.voicemail_dir)  # fmt: skip
        return asyncio.create_task(mover.run(), name="call-audio")

    def _replay_spilled_records(self) -> asyncio.Task[None] | None:
        """Call records that ended calls left on disk while Postgres was down reach it within
        SPILL_REPLAY_SECONDS of its return, whether or not another call comes to this worker."""
        settings = self.settings
        if settings is None or not settings.database_url:
            return None
        return asyncio.create_task(
            keep_replaying_spill(settings.database_url, settings.journal_spill_dir, SPILL_REPLAY_SECONDS),
            name="spill-replay",
        )

    def _voice_lines(self) -> asyncio.Task[None] | None:
        """Each brain's greeting and model-down lines read by the model, once per fleet (GREETING_AUDIO
        and VOICED_LINES), and a line edited since, every 10 minutes: calls after it hear them in the
        model's voice."""
        settings = self.settings
        if settings is None or not (settings.greeting_audio and settings.voiced_lines):
            return None
        from agent.voiced_lines import keep_lines_voiced

        return asyncio.create_task(keep_lines_voiced(settings), name="voiced-lines")

    def _live_state(self) -> LiveState | None:
        """The call registry the worker's own sweeps read: with Redis and LiveKit's API key only."""
        settings = self.settings
        if settings is None or not settings.redis_url or not settings.livekit_api_key:
            return None
        return LiveState(settings.redis_url)

    def _answer_waiting_calls(self, live: LiveState | None) -> asyncio.Task[None] | None:
        """A caller the full fleet left ringing is dispatched again once this worker has a free slot."""
        settings = self.settings
        if settings is None or live is None or not self.agent_name:
            return None
        from agent.live.waiting_calls import WaitingCalls

        waiting = WaitingCalls(
            live, agent_name=self.agent_name, livekit_url=settings.livekit_url,
            api_key=settings.livekit_api_key or "", api_secret=settings.livekit_secret(),
            free_slots=self.free_slots, free_overflow_slots=self.free_overflow_slots,
            overflow_after_s=settings.overflow_after_seconds,
        )  # fmt: skip
        return asyncio.create_task(waiting.run(), name="waiting-calls")

    def _sweep_lost_calls(self, live: LiveState | None) -> asyncio.Task[None] | None:
        """Every running replica ends the calls of replicas (or job processes) that died."""
        settings = self.settings
        if settings is None or live is None:
            return None
        from agent.live.lost_calls import LostCallSweeper
        from agent.notify.at_once import LostCallNotices

        try:
            told = LostCallNotices(load_brains(settings.brain_path))  # an urgent message a lost call left
        except BrainError as e:
            log.error("lost calls are ended without telling their owners: %s", e)
            told = None
        sweeper = LostCallSweeper(
            live,
            database_url=settings.database_url,
            livekit_url=settings.livekit_url,
            api_key=settings.livekit_api_key or "",
            api_secret=settings.livekit_secret(),
            owner_told=told,
        )
        return asyncio.create_task(sweeper.run(), name="lost-calls")


def build_server(
    agent_name: str, settings: Settings | None = None, worker_metrics: WorkerMetrics | None = None
) -> ReceptionistServer:
    options = {}
    if settings is not None:
        # a call or a message taken for a full fleet (agent/overflow.py); which of the two may be
        # taken is ReceptionistServer.take_or_pass's to say
        slots = settings.worker_max_calls + settings.worker_overflow_calls

        def calls_load(server: AgentServer) -> float:
            # load = share of this worker's slots in use: predictable for capacity planning,
            # unlike machine-wide CPU, which other tenants of the host also move
            return min(1.0, len(server.active_jobs) / slots)

        options = {
            "load_fnc": calls_load,
            "load_threshold": (slots - 0.5) / slots,  # full at exactly its slots
            "num_idle_processes": settings.worker_idle_processes,
            "job_executor_type": JobExecutorType(settings.worker_job_executor),
            # the forkserver imports the receptionist once and every job process inherits it: each
            # process otherwise imports it itself (~0.6 s of CPU measured here), which is what a
            # burst of calls waits on while new processes start; agent.preload then loads the
            # brains, the VAD model and first-use state once for all of them
            "preload_modules": ["agent.worker", "agent.preload"],
            # LiveKit kills a job process whose prewarm takes over 10 s and starts another from
            # scratch, three times, then refuses the call: on a busy host (measured: 3 replicas, 6
            # calls, 2 cores) prewarm took longer, and every restart only added load. A call waits
            # for its process either way; livekit-sip gives up on it after ~30 s.
            "initialize_process_timeout": 30.0,
            # dev keeps LiveKit's any-free-port, so several dev workers can run side by side
            "port": ServerEnvOption(dev_default=0, prod_default=settings.worker_port),
            # LiveKit's console and dev modes log at DEBUG unless told; LOG_LEVEL is the one knob
            "log_level": settings.log_level,
        }
        if settings.livekit_api_key and settings.livekit_api_secret:
            # AgentServer reads only the process environment; a .env file reaches it through
            # settings. Console needs no credentials, and a URL without them stops its worker.
            options |= {
                "ws_url": settings.livekit_url,
                "api_key": settings.livekit_api_key,
                "api_secret": settings.livekit_secret(),
            }
    if worker_metrics is not None:
        options |= worker_metrics.server_options()
    server = ReceptionistServer(**options)
    server.worker_metrics = worker_metrics
    server.settings = settings
    server.setup_fnc = prewarm
    server.rtc_session(entrypoint, agent_name=agent_name, on_request=server.take_or_pass)
    server.agent_name = agent_name
    return server


def startup_failure(error: Exception, settings: Settings) -> str:
    """One line an operator can act on, for the error that stopped the worker."""
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE:
        return (
            f"the worker's port {settings.worker_port} is already in use; "
            "set WORKER_PORT to a free port (0 = any)"
        )
    detail = str(error).strip().splitlines()
    return f"the worker stopped: {type(error).__name__}: {detail[0] if detail else 'no detail'}"


def main() -> None:
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help", "help"):
        cli.run_app(build_server("receptionist"))
        return
    try:
        settings = load_settings()
        load_brains(settings.brain_path)  # fail fast: a bad brain never takes a call
        if args[0] in ("dev", "start"):
            require(settings, "livekit_api_key", "livekit_api_secret")
        if args[0] in ("console", "dev", "start"):
            check_model_key(settings)  # a wrong key would fail every call
        if args[0] == "start" and settings.database_url:
            require_current_schema(settings.database_url)  # production never migrates by itself
    except (SettingsError, BrainError, DatabaseNotReady) as e:
        print(f"receptionist: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.getLogger("receptionist").setLevel(settings.log_level)
    log_privacy.install()
    if settings.database_url and args[0] in ("dev", "start") and spill_files(settings.journal_spill_dir):
        # call records an earlier run left on disk while Postgres was down, so an idle worker does
        # not keep them until its next call (console needs no such step: its call starts at once,
        # and that call's journal replays them first)
        asyncio.run(replay_spill(settings.database_url, settings.journal_spill_dir))
    job_process_environment()
    # console runs the call in this process and serves no port; dev and start serve /metrics
    worker_metrics = (
        WorkerMetrics(settings) if settings.metrics_port is not None and args[0] in ("dev", "start") else None
    )
    server = build_server(settings.agent_name, settings, worker_metrics)
    if args[0] == "console":
        livekit_internals.console_exit_without_deadlock()
    if args[0] == "console" or settings.worker_job_executor == "thread":
        # calls run in threads of this process: what the forkserver would load, loaded here once,
        # on the main thread (LiveKit's plugins register only there)
        from agent import preload  # noqa: F401
    try:
        cli.run_app(server)
    except SystemExit:
        if server.failure is None:
            raise
    finally:
        if args[0] == "console":  # what prints at exit goes to the terminal, not to a prompt now gone
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    if server.failure is not None:
        print(f"receptionist: {startup_failure(server.failure, settings)}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
