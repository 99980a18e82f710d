"""Simulated calls for the benchmarks: the Realtime simulator on a thread of its own (as OpenAI would be
remote), and real AgentSessions (ours, plain LiveKit, variants) on the main loop, each with a paced
CallerMicrophone and a CallerEar from simulator/line.py, measured against the simulator's event clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil
from livekit.agents import Agent, AgentSession
from livekit.plugins import silero

from agent.brain import Brain, load_brain
from agent.call import CallContext
from agent.call_keeper import CallKeeper
from agent.receptionist import Receptionist
from agent.session import build_session, realtime_model
from agent.settings import Settings
from bench.audio import CALLER_RATE
from simulator.line import CallerEar, CallerMicrophone, SimulatedLine
from simulator.server import RealtimeSimulator
from simulator.speech import MODEL_SAMPLE_RATE, MODEL_VOICE, render_speech

log = logging.getLogger("bench")

ROOT = Path(__file__).resolve().parents[1]
MODEL_DELAY_MS = 300  # what the reference figures assume
GREETING = "Thanks for calling. I'm an AI assistant. How can I help?"
SHORT_REPLIES = [
    "Sure, I can help with that.",
    "Of course. Which day suits you?",
    "Okay, let me note that down.",
    "Yes, we can do that.",
]
LONG_REPLY = (
    "We have openings on Tuesday at nine, Wednesday at half past two, and Thursday morning. "
    "A standard cleaning takes about an hour, and we'll send you a reminder the day before. "
    "If you have insurance, bring your card, and please arrive ten minutes early to fill in the forms."
)


def settings_for(**overrides: Any) -> Settings:
    """Our Settings with only the turn-taking knobs changed (never read from the environment's .env)."""
    return Settings(openai_api_key="sim", _env_file=None, **overrides)  # type: ignore[call-arg]


# ---- the simulator on its own loop ------------------------------------------------------------

class SimulatorThread:
    """A RealtimeSimulator served from its own thread and event loop, so its work never queues behind
    the agents' loop and its CPU time can be told apart (time.thread_time inside the thread)."""

    def __init__(self, model_delay_ms: int = MODEL_DELAY_MS, transcription_delay_ms: int = 0) -> None:
        self.sim = RealtimeSimulator(
            model_delay_ms=model_delay_ms, voice_mode="speech", transcription_delay_ms=transcription_delay_ms
        )
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="realtime-simulator", daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def cpu_seconds(self) -> float:
        async def read() -> float:
            return time.thread_time()

        # a burst of job processes starting can starve the simulator's thread for seconds
        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(60)

    def events(self) -> list[Any]:
        return list(self.sim.events)  # the list only grows; a copy is a consistent prefix

    def forget_events(self) -> None:
        self.sim.events.clear()


def warm_model_voice(lines: list[str]) -> None:
    """Render the scripted model lines once, so no reply pays espeak's start-up inside a measurement."""
    for text in lines:
        render_speech(text, MODEL_SAMPLE_RATE, voice=MODEL_VOICE)


# ---- who answers the call ---------------------------------------------------------------------

Kind = Literal["ours", "livekit"]


@dataclass(frozen=True)
class Flavour:
    """One way of answering: our build_session with some Settings (optionally plus LiveKit's local
    audio end-of-turn model), or a plain LiveKit AgentSession with its defaults."""

    name: str
    kind: Kind
    settings: Settings = field(default_factory=settings_for)
    # ours + an audio end-of-turn model: "v1-mini" (livekit.agents.inference.TurnDetector, local) or
    # "smart-turn" (agent/smart_turn.py, Smart Turn v3.2)
    turn_detector: Literal["v1-mini", "smart-turn"] | None = None
    turn_threshold: float | None = None  # the audio model's end-of-turn cut; None: its own (0.36, 0.5)
    livekit_turn_detection: str | None = None  # plain LiveKit: None = its default, or "vad"

    def describe(self) -> dict[str, Any]:
        if self.kind == "livekit":
            return {
                "kind": "plain LiveKit 1.8.9 AgentSession(llm=RealtimeModel, vad=silero.VAD.load())",
                "turn_detection": self.livekit_turn_detection or "default (inference.TurnDetector v1-mini)",
            }
        s = self.settings
        return {
            "kind": "ours: agent.session.build_session + Receptionist",
            "min_endpointing_delay": s.min_endpointing_delay,
            "max_endpointing_delay": s.max_endpointing_delay,
            "min_interruption_duration": s.min_interruption_duration,
            "vad_min_silence_duration": s.vad_min_silence_duration,
            "speculative_reply": s.speculative_reply,
            "speculation_lead": s.speculation_lead,
            "noise_gate_db": s.noise_gate_db,
            "backchannel_seconds": s.backchannel_seconds,
            "turn_detector": {"v1-mini": "inference.TurnDetector v1-mini", "smart-turn": "Smart Turn v3.2",
                              None: "vad"}[self.turn_detector],
            "turn_threshold": self.turn_threshold if self.turn_threshold is not None
            else {"v1-mini": 0.36, "smart-turn": 0.5, None: None}[self.turn_detector],
        }


OURS = Flavour("ours", "ours")
LIVEKIT_DEFAULT = Flavour("livekit-default", "livekit")
LIVEKIT_VAD = Flavour("livekit-vad", "livekit", livekit_turn_detection="vad")


class _PlainAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a friendly receptionist. Keep answers short.")

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="Greet the caller.")


class _Discard(bytearray):
    def extend(self, _: Any) -> None:  # keep nothing: a long call must not grow the harness's memory
        pass


class CountingEar(CallerEar):
    """CallerEar that also counts each time the agent's audio was paused or cut while it was playing,
    and keeps no copy of the audio (its recording would dwarf the agent's own memory growth)."""

    def __init__(self) -> None:
        super().__init__()
        self.audio = _Discard()
        self.pauses: list[float] = []
        self.cuts: list[float] = []

    def pause(self) -> None:
        if self.speaking and self._resumed.is_set():  # the session re-pauses while already paused
            self.pauses.append(time.monotonic())
        super().pause()

    def clear_buffer(self) -> None:
        if self.speaking:
            self.cuts.append(time.monotonic())
        super().clear_buffer()


_BRAIN: Brain | None = None
_VADS: dict[float | None, Any] = {}


def brain(also_speaks: str | None = None) -> Brain:
    """The bench's business (brains/dental.yaml); `also_speaks`: the same business speaking English
    and that language too (`languages: [en, <it>]`), as a US practice with Spanish-speaking callers."""
    global _BRAIN
    if _BRAIN is None:
        _BRAIN = load_brain(ROOT / "brains" / "dental.yaml")
    if also_speaks is None or also_speaks in _BRAIN.languages:
        return _BRAIN
    return _BRAIN.model_validate({**_BRAIN.model_dump(), "languages": [*_BRAIN.languages, also_speaks]})


def vad_model(min_silence: float | None) -> Any:
    """One Silero model per setting, shared by every call as the worker shares its prewarmed one."""
    if min_silence not in _VADS:
        _VADS[min_silence] = (
            silero.VAD.load() if min_silence is None else silero.VAD.load(min_silence_duration=min_silence)
        )
    return _VADS[min_silence]


@dataclass
class Turn:
    """One caller turn as measured: monotonic times on the process-wide clock."""

    call: str
    text: str
    start: float  # caller voice onset
    end: float  # caller voice end
    heard_start: float | None = None  # first agent frame at the session output after `end`
    heard_voice: float | None = None  # first voiced agent frame after `end`

    @property
    def gap_ms(self) -> float | None:
        return None if self.heard_voice is None else (self.heard_voice - self.end) * 1000


class BenchCall:
    """One simulated call: a session of `flavour` on its own simulator script key."""

    settle_s = 0.25  # quiet this long after the agent's last sound = idle

    def __init__(
        self, sim: SimulatorThread, flavour: Flavour, steps: list[dict[str, Any]], *, mic_rate: int = CALLER_RATE,
        background: bytes = b"", business: Brain | None = None,
    ) -> None:
        self.simt = sim
        self.flavour = flavour
        self.business = business or brain()
        self.key = uuid.uuid4().hex[:12]
        self.steps = steps
        self.mic_rate = mic_rate
        self.mic = CallerMicrophone(sample_rate=mic_rate, background=background)  # the line's noise, looped
        self.ear = CountingEar()
        self.session: AgentSession[Any] | None = None
        self.model: Any = None
        self.keeper: CallKeeper | None = None
        self.turns: list[Turn] = []
        self.started_at = 0.0

    async def start(self, *, wait_greeting: bool = True) -> None:
        self.simt.sim.add_script(self.key, self.steps)
        f = self.flavour
        url = self.simt.sim.url_for(self.key)
        self.model = realtime_model(f.settings, base_url=url)
        if f.kind == "ours":
            call = CallContext(
                brain=self.business,
                room=f"bench-{self.key}",
                caller_number="+15555550100",
                dialed_number=self.business.business.numbers[0] if self.business.business.numbers else None,
                line=SimulatedLine(),
            )
            call.start()
            self.session = build_session(
                f.settings, call, model=self.model, vad_model=vad_model(f.settings.vad_min_silence_duration)
            )
            if f.turn_detector == "v1-mini":
                from livekit.agents.inference import TurnDetector

                threshold = {} if f.turn_threshold is None else {"unlikely_threshold": f.turn_threshold}
                self.session.update_options(turn_detection=TurnDetector(version="v1-mini", **threshold))
            elif f.turn_detector == "smart-turn":
                from agent.smart_turn import SmartTurnDetector

                threshold = {} if f.turn_threshold is None else {"threshold": f.turn_threshold}
                self.session.update_options(turn_detection=SmartTurnDetector(**threshold))
            self.keeper = CallKeeper(self.session, call, f.settings)
            call.line_ready.set()  # the simulated line is up at once, as in simulator/runner.py
            agent: Agent = Receptionist(self.business)
        else:
            kwargs: dict[str, Any] = {}
            if f.livekit_turn_detection:
                kwargs["turn_handling"] = {"turn_detection": f.livekit_turn_detection}
            self.session = AgentSession(llm=self.model, vad=vad_model(None), **kwargs)
            agent = _PlainAgent()
        self.session.input.audio = self.mic
        self.session.output.audio = self.ear
        self.started_at = time.monotonic()
        await self.session.start(agent=agent, record=False)
        if self.keeper is not None:
            self.keeper.call.answered()
            self.keeper.start()
        if wait_greeting:
            await self.wait_idle(first=True)

    async def close(self) -> None:
        self.mic.close()
        if self.session is not None:
            # seen hanging with a 16 kHz microphone (bench/compare.py children); never block the run on it
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.aclose(), 10)
        if self.keeper is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.keeper.closed.wait(), 5)
        if self.model is not None:
            with contextlib.suppress(Exception):
                await self.model.aclose()

    # ---- the caller's side ---------------------------------------------------------------------

    async def say(
        self, text: str, pcm: bytes, *, answer_within: float = 10.0, parts: list[tuple[str, float]] | None = None
    ) -> Turn:
        """Speak one turn and wait for the first agent audio after it (not for the reply to end); with
        `parts` (words, end of their audio from the first voice), it is transcribed as it is committed."""
        self.simt.sim.queue_transcript(text, key=self.key, parts=parts)
        # a session that stopped reading its microphone must fail the turn, not hang the benchmark
        spoken = self.mic.say(pcm)
        start, end = await asyncio.wait_for(spoken, len(pcm) / 2 / self.mic_rate + 10)
        turn = Turn(self.key, text, start, end)
        self.turns.append(turn)
        deadline = time.monotonic() + answer_within
        while time.monotonic() < deadline:
            seg = next((s for s in reversed(self.ear.segments) if s.started >= end - 0.02), None)
            if seg is not None and seg.first_voice is not None:
                turn.heard_start, turn.heard_voice = seg.started, seg.first_voice
                break
            await asyncio.sleep(0.005)
        return turn

    def busy(self) -> bool:
        """Is the agent thinking or speaking, or is its voice still reaching the caller?"""
        s = self.session
        assert s is not None
        return (
            s.agent_state in ("thinking", "speaking", "initializing")
            or (s.current_speech is not None and not s.current_speech.done())
            or self.ear.speaking
        )

    async def wait_idle(self, *, first: bool = False, settle: float | None = None, within: float = 30.0) -> None:
        """Until the agent has nothing left to say (greeting included on the first call)."""
        settle = self.settle_s if settle is None else settle
        deadline = time.monotonic() + within
        quiet_since: float | None = None
        spoke = not first
        while time.monotonic() < deadline:
            if self.busy():
                spoke, quiet_since = True, None
            elif spoke:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return
            await asyncio.sleep(0.02)

    async def wait_speaking(self, within: float = 10.0) -> float | None:
        """Until the caller hears agent voice; returns when it started."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            seg = self.ear.segments[-1] if self.ear.segments else None
            if self.ear.speaking and seg is not None and seg.first_voice is not None:
                return seg.first_voice
            await asyncio.sleep(0.005)
        return None


def script(n_replies: int, *, long_every: int = 0) -> list[dict[str, Any]]:
    """Greeting, then short replies (every `long_every`-th a long one), plus slack for extra turns."""
    steps: list[dict[str, Any]] = [{"say": GREETING}]
    for i in range(n_replies):
        long = long_every and i % long_every == 0
        steps.append({"say": LONG_REPLY if long else SHORT_REPLIES[i % len(SHORT_REPLIES)]})
    return steps


def all_model_lines() -> list[str]:
    return [GREETING, LONG_REPLY, "Sorry, go ahead.", *SHORT_REPLIES]


# ---- reading the simulator's record -----------------------------------------------------------

@dataclass
class KeyTimeline:
    """The wire events of one call, as the simulator recorded them (monotonic)."""

    commits: list[float] = field(default_factory=list)
    creates: list[float] = field(default_factory=list)
    cancels: list[float] = field(default_factory=list)
    first_audio: list[float] = field(default_factory=list)  # first audio delta of each response


def timelines(events: list[Any]) -> dict[str, KeyTimeline]:
    out: dict[str, KeyTimeline] = defaultdict(KeyTimeline)
    seen: set[tuple[str, str]] = set()
    for e in events:
        tl = out[e.key]
        if e.direction == "client":
            if e.type == "input_audio_buffer.commit":
                tl.commits.append(e.t)
            elif e.type == "response.create":
                tl.creates.append(e.t)
            elif e.type == "response.cancel":
                tl.cancels.append(e.t)
        elif e.type == "response.output_audio.delta":
            rid = e.event.get("response_id", "")
            if (e.key, rid) not in seen:
                seen.add((e.key, rid))
                tl.first_audio.append(e.t)
    return out


def after(times: list[float], t: float) -> float | None:
    return next((x for x in times if x >= t), None)


@dataclass
class TurnBreakdown:
    gap_ms: float  # caller voice end -> first agent voice, minus the model delay
    endpoint_ms: float | None  # caller voice end -> input_audio_buffer.commit
    commit_to_create_ms: float | None
    model_ms: float | None  # response.create -> first audio delta (simulator: delay + rendering)
    ours_ms: float | None  # first audio delta sent (or, if later, adoption) -> first frame at the output
    ours_voice_ms: float | None  # the same -> first voiced frame heard
    held_ms: float | None = None  # speculative reply: its first audio delta -> end-of-turn adoption
    speculative: bool = False  # the reply was requested before the end-of-turn decision


def breakdown(
    turn: Turn, tl: KeyTimeline, model_delay_ms: float, adoptions: list[float] | None = None
) -> TurnBreakdown | None:
    """Where one turn's gap went. With a speculative reply the audio waits for the end-of-turn
    decision (`adoptions`, monotonic); our code's share then starts at whichever came last."""
    if turn.heard_voice is None:
        return None
    commit = after(tl.commits, turn.start)
    create = after(tl.creates, commit) if commit is not None else None
    audio = after(tl.first_audio, create) if create is not None else None
    if audio is not None and turn.heard_start is not None and audio > turn.heard_start:
        audio = None  # a delta of some other response; do not guess
    adopted = after(adoptions or [], create) if create is not None else None
    if adopted is not None and turn.heard_start is not None and adopted > turn.heard_start:
        adopted = None
    release = max(audio, adopted) if audio is not None and adopted is not None else audio
    ms = lambda a, b: None if a is None or b is None else round((b - a) * 1000, 2)  # noqa: E731
    return TurnBreakdown(
        gap_ms=round((turn.heard_voice - turn.end) * 1000 - model_delay_ms, 2),
        endpoint_ms=ms(turn.end, commit),
        commit_to_create_ms=ms(commit, create),
        model_ms=ms(create, audio),
        ours_ms=ms(release, turn.heard_start),
        ours_voice_ms=ms(release, turn.heard_voice),
        held_ms=ms(audio, adopted),
        speculative=adopted is not None,
    )


def speculation_counts(bench_calls: list[BenchCall], turns: int) -> dict[str, Any]:
    """Speculative replies requested, played and cancelled, over all the calls' caller turns."""
    stats = [c.model.stats for c in bench_calls if getattr(c.model, "stats", None) is not None]
    if not stats:
        return {}
    started = sum(s.started for s in stats)
    return {
        "started": started,
        "adopted": sum(s.adopted for s in stats),
        "abandoned": sum(s.abandoned for s in stats),
        "requests_per_caller_turn": round(started / turns, 2) if turns else None,
    }


def adoptions(call: BenchCall) -> list[float]:
    stats = getattr(call.model, "stats", None)
    return list(stats.adopted_at) if stats is not None else []


# ---- what a run costs -------------------------------------------------------------------------

class ResourceMeter:
    """Process CPU (all threads) minus the simulator thread's, and resident memory sampled each 0.5 s."""

    def __init__(self, simt: SimulatorThread) -> None:
        self.simt = simt
        self.proc = psutil.Process()
        self.rss_samples: list[tuple[float, int]] = []
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def _cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.cpu0 = self._cpu()
        self.sim0 = self.simt.cpu_seconds()
        self.rss0 = self.proc.memory_info().rss
        self.lags: list[float] = []
        self._task = asyncio.create_task(self._sample())
        self._lag_task = asyncio.create_task(self._lag())

    async def _sample(self) -> None:
        while True:
            self.rss_samples.append((time.monotonic(), self.proc.memory_info().rss))
            await asyncio.sleep(0.5)

    async def _lag(self) -> None:
        # how late a 10 ms timer fires: any stall here delays every call's audio by as much
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            self.lags.append((time.monotonic() - t - 0.01) * 1000)

    def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
            self._lag_task.cancel()
        wall = time.monotonic() - self.t0
        cpu = self._cpu() - self.cpu0
        sim = self.simt.cpu_seconds() - self.sim0
        peak = max((r for _, r in self.rss_samples), default=self.rss0)
        return {
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu - sim, 3),
            "sim_cpu_s": round(sim, 3),
            "cpu_cores": round((cpu - sim) / wall, 3) if wall else 0.0,
            "rss_start_mb": round(self.rss0 / 2**20, 1),
            "rss_peak_mb": round(peak / 2**20, 1),
            "loop_lag_ms": stats(self.lags),
        }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 1)


def stats(values: list[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": round(max(values), 1) if values else None,
    }


def quiet_logs() -> None:
    """LiveKit logs a line per turn at INFO; the tables are what we want on screen."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("livekit", "livekit.agents", "livekit.plugins", "simulator", "receptionist"):
        logging.getLogger(name).setLevel(logging.ERROR)
