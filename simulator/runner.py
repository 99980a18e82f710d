"""Runs one call scenario offline through the real AgentSession, the real OpenAI plugin and our
Realtime simulator, then grades it: what was said, which tools ran, and what landed in Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import yaml
from livekit.agents import AgentSession
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from agent.brain import Brain, load_brain, load_brains
from agent.brain.loader import parse_brain
from agent.call import CallContext
from agent.call_start import answer, open_call
from agent.call_summary import add_prose_summary
from agent.fallback_audio import FallbackLibrary
from agent.live.admission import RATE_WINDOW_S, Admission
from agent.receptionist import brain_for_call
from agent.session import realtime_model
from agent.settings import Settings, load_settings
from simulator.line import CallerEar, CallerMicrophone, SimulatedLine
from simulator.recordings import recorded_speech, recording
from simulator.scenario import Scenario
from simulator.server import RealtimeSimulator
from simulator.speech import render_speech, silence, voiced_only

log = logging.getLogger("receptionist.simulate")

TURN_TIMEOUT_S = 60.0
CALLER_RATE = 48000


def _speculation(model: Any) -> dict[str, Any]:
    stats = getattr(model, "stats", None)
    if stats is None:
        return {}
    return {"started": stats.started, "adopted": stats.adopted, "abandoned": stats.abandoned,
            "reasons": dict(stats.reasons)}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class CallReport:
    scenario: str
    mode: str  # "text" | "audio"
    business: str
    transcript: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    # the instructions of every response.create the model received, in order (the guard's correction...)
    model_told: list[str] = field(default_factory=list)
    # the agent's instructions as each session.update carried them to the model, in order
    instructed: list[str] = field(default_factory=list)
    outcome: str | None = None
    end_reason: str | None = None
    ended_by: str | None = None
    violations: list[dict[str, Any]] = field(default_factory=list)
    line_actions: list[tuple[str, str]] = field(default_factory=list)
    timings: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    db: dict[str, Any] | None = None
    sim_key: str = ""
    heard: list[dict[str, Any]] = field(default_factory=list)  # audio runs: agent audio as played
    spoken: list[dict[str, float]] = field(default_factory=list)  # audio runs: each caller turn as said
    speculation: dict[str, Any] = field(default_factory=dict)  # speculative replies started/adopted/abandoned
    call_report: dict[str, Any] | None = None  # the report the call stored (calls.summary), as read back
    error: str | None = None  # the scenario could not run to the end (its checks were never graded)

    @classmethod
    def crashed(cls, scenario: Scenario, mode: str, exc: Exception) -> CallReport:
        return cls(scenario=scenario.name, mode=mode, business="", error=f"{type(exc).__name__}: {exc}")

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.ok for c in self.checks)

    @property
    def caller_said(self) -> list[str]:
        """What the caller said, turn by turn (see `caller_turns`)."""
        return caller_turns(self.transcript)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def scenario_brain(scenario: Scenario, overrides: dict[str, Any] | None = None) -> tuple[Brain, bool]:
    """The brain answering the scenario's call, picked as the worker picks it (and whether it is known)."""
    path = scenario.brain_path()
    if path.is_dir():
        return brain_for_call(load_brains(path), scenario.dialed_number)
    return _brain_file(path, overrides), True


def _brain_file(path: Any, overrides: dict[str, Any] | None) -> Brain:
    if not overrides:
        return load_brain(path)
    raw = yaml.safe_load(path.read_text())
    merged = _deep_merge(copy.deepcopy(raw), overrides)
    return parse_brain(yaml.safe_dump(merged), path)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_merge(base[k], v)
        else:
            base[k] = v
    return base


class _ScenarioCall:
    """One simulated call in progress."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        audio: bool,
        settings: Settings,
        sim: RealtimeSimulator,
        stores: Any | None,
        caller_rate: int = CALLER_RATE,
    ) -> None:
        self.caller_rate = caller_rate
        self.scenario = scenario
        self.audio = audio
        # a scenario scripts the model's greeting: it is asked of the model on every run, never replayed
        # from a greeting an earlier run kept (agent/kept_greeting.py)
        self.settings = settings.model_copy(update={"greeting_audio": False})
        self.sim = sim
        self.stores = stores
        self.key = uuid.uuid4().hex[:12]
        self.t0 = time.monotonic()
        self.ended = asyncio.Event()
        self.ended_by: str | None = None
        self.model: Any = None
        self.mic: CallerMicrophone | None = None
        self.ear: CallerEar | None = None
        self.timings: dict[str, list[float]] = {"response_gap_ms": [], "barge_in_ms": []}
        self.spoken: list[dict[str, float]] = []

    def clock(self) -> datetime:
        return self.scenario.clock + timedelta(seconds=time.monotonic() - self.t0)

    async def run(self) -> CallReport:
        sc = self.scenario
        brain, known = scenario_brain(sc, sc.brain_overrides)
        # what the worker renders at start: the brain's lines for when the model is down (cached)
        fallback = await asyncio.to_thread(FallbackLibrary, [brain], self.settings.fallback_audio_dir)
        self.sim.add_script(self.key, sc.model_steps()).voice = sc.model_voice
        self.sim.set_fault(self.key, sc.fault)
        line = SimulatedLine(transfer_accepts=sc.transfer_accepts, on_end=self._line_ended)
        call = CallContext(
            brain=brain,
            room=f"sim-{sc.name}",
            caller_number=sc.caller_number,
            dialed_number=sc.dialed_number or (brain.business.numbers[0] if brain.business.numbers else None),
            clock=self.clock,
            line=line,
        )
        if self.stores is not None:
            call.journal, call.pool, call.live = self.stores.journal, self.stores.pool, self.stores.live
            await self.stores.seed(call, [a for a in sc.seed.appointments if a.at_turn == 0])
        call.start()

        vad_model = None
        if self.audio:
            from livekit.plugins import silero

            vad_model = silero.VAD.load(min_silence_duration=self.settings.vad_min_silence_duration)

        def model(settings: Settings) -> Any:
            self.model = realtime_model(settings, text_only=not self.audio, base_url=self.sim.url_for(self.key))
            return self.model

        # the worker's own start, with a simulated line and model (agent/call_start.py)
        opened = open_call(call, self.settings, model=model, vad_model=vad_model, fallback=fallback)
        session, keeper = opened.session, opened.keeper
        self.session, self.keeper = session, keeper
        if self.audio:
            self.mic = CallerMicrophone(sample_rate=self.caller_rate)
            self.ear = CallerEar()
            session.input.audio = self.mic
            # as in a room (RoomIO): the agent's transcript is paced to its audio, so an interrupted
            # turn is recorded as far as the caller heard it, not as far as the model had written
            synchronizer = TranscriptSynchronizer(next_in_chain_audio=self.ear, next_in_chain_text=None)
            session.output.audio = synchronizer.audio_output
            session.output.transcription = synchronizer.text_output

        admission = await self._admission(call)
        await answer(opened, known=known, admit=admission.admit if admission else None)
        try:
            await self._wait_idle(first=True)
            for n, turn in enumerate(sc.turns, start=1):
                if self.ended.is_set():
                    break
                due = [a for a in sc.seed.appointments if a.at_turn == n]
                if due and self.stores is not None:
                    await self.stores.seed(call, due)  # another caller books meanwhile
                if turn.dtmf is not None:
                    for digit in turn.dtmf:
                        keeper.on_dtmf(SimpleNamespace(digit=digit))  # as livekit-sip reports a key
                    await self._wait_idle()
                    continue
                if self.audio:
                    following = sc.turns[n] if n < len(sc.turns) else None
                    await self._audio_turn(turn, barge_in_next=bool(following and following.barge_in_ms is not None))
                else:
                    await self._text_turn(turn)
                if turn.hangup:
                    self._caller_hangs_up(call)
                    break
            if not self.ended.is_set():
                self._caller_hangs_up(call)
        finally:
            if self.mic is not None:
                self.mic.close()
            with contextlib.suppress(Exception):
                await session.aclose()
            await asyncio.wait_for(keeper.closed.wait(), 10)
            await self.model.aclose()
            if admission is not None:
                await admission.release(call)
        # after the hang-up, as the worker's release does: the summary model is the simulator too
        await add_prose_summary(call, self.settings, base_url=self.sim.api_base_for(self.key))
        report = CallReport(
            scenario=sc.name,
            mode="audio" if self.audio else "text",
            business=brain.business.name,
            transcript=[
                {
                    "t": round(t.started_at - (time.time() - (time.monotonic() - self.t0)), 3),
                    "role": t.role,
                    "text": t.text,
                    "interrupted": t.interrupted,
                }
                for t in call.transcript
            ],
            tool_calls=[
                {"name": c.name, "arguments": c.arguments, "result": c.result, "error": c.error,
                 "latency_ms": round(c.latency_ms, 2)}
                for c in call.tool_log
            ],
            model_told=[
                e.event["response"]["instructions"]
                for e in self.sim.recorded(key=self.key, direction="client", type="response.create")
                if (e.event.get("response") or {}).get("instructions")
            ],
            instructed=[
                e.event["session"]["instructions"]
                for e in self.sim.recorded(key=self.key, direction="client", type="session.update")
                if (e.event.get("session") or {}).get("instructions")
            ],
            outcome=call.outcome,
            end_reason=call.end_reason,
            ended_by=self.ended_by,
            violations=list(call.violations),
            line_actions=list(line.actions),
            timings={k: [round(x, 1) for x in v] for k, v in self.timings.items() if v},
            problems=self.sim.script_problems(self.key),
            sim_key=self.key,
            heard=[
                {"started": seg.started, "ended": seg.ended, "played_ms": round(seg.played_s * 1000, 1),
                 "interrupted": seg.interrupted, "first_voice": seg.first_voice, "stops": list(seg.stops)}
                for seg in (self.ear.segments if self.ear else [])
            ],
            spoken=list(self.spoken),
            speculation=_speculation(self.model),
        )
        report.call_report = call.report
        if self.stores is not None:
            report.db = await self.stores.snapshot(call)
            stored = (report.db.get("calls") or [{}])[0].get("summary")
            report.call_report = stored  # graded as stored, not as kept in memory
        return report

    async def _admission(self, call: CallContext) -> Admission | None:
        """The worker's gate when the stores have live state (Redis), with the caller's earlier calls
        this hour counted first, as the rate limit would have counted them."""
        live = self.stores.live if self.stores is not None else None
        earlier = self.scenario.seed.calls_this_hour
        if live is None:
            if earlier:
                raise ValueError(f"{self.scenario.name}: seed.calls_this_hour needs live state (Redis)")
            return None
        for _ in range(earlier if call.caller_number else 0):
            await live.allow_call(call.caller_number, earlier + 1, RATE_WINDOW_S)
        return Admission(live, self.settings.caller_rate_limit)

    # -- ending ---------------------------------------------------------------------------------
    async def _line_ended(self, by: str) -> None:
        if not self.ended.is_set():
            self.ended_by = by
            self.ended.set()
            # the far end is gone: the session ends as a room would close
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.session.aclose()))

    def _caller_hangs_up(self, call: CallContext) -> None:
        if not self.ended.is_set():
            self.ended_by = "caller"
            call.end_reason = call.end_reason or "caller_hangup"
            self.ended.set()
            if self.mic is not None:
                self.mic.stop_talking()

    # -- waiting on the agent -------------------------------------------------------------------
    async def _wait_idle(self, *, first: bool = False, settle: float = 0.3) -> None:
        """Until the agent has finished everything it was doing (speech, tools, corrections)."""
        session: AgentSession = self.session
        deadline = time.monotonic() + TURN_TIMEOUT_S
        quiet_since: float | None = None
        spoke = not first
        while time.monotonic() < deadline and not self.ended.is_set():
            busy = session.agent_state in ("thinking", "speaking", "initializing") or (
                session.current_speech is not None and not session.current_speech.done()
            )
            if self.ear is not None and self.ear.speaking:
                busy = True
            if busy:
                spoke = True
                quiet_since = None
            elif spoke:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return
            await asyncio.sleep(0.02)

    async def _text_turn(self, turn: Any) -> None:
        if turn.silence_s is not None and turn.caller is None:
            await self._sleep_unless_ended(turn.silence_s)
            await self._wait_idle()
            return
        if turn.caller is None or (turn.hangup and not turn.model):
            return  # a caller who hangs up as they speak is never answered
        try:
            await asyncio.wait_for(self.session.run(user_input=turn.words), TURN_TIMEOUT_S)
        except RuntimeError:
            # the session closed under us (agent hung up / transferred mid-turn)
            if not self.ended.is_set():
                raise
        await self._wait_idle()

    async def _audio_turn(self, turn: Any, *, barge_in_next: bool = False) -> None:
        assert self.mic is not None and self.ear is not None
        if turn.caller is None:
            if turn.silence_s is not None:
                await self._sleep_unless_ended(turn.silence_s)
                await self._wait_idle()
            return
        if turn.after_tone:
            # a caller waits for the beep before leaving a message
            failover = self.keeper.failover
            assert failover is not None, "after_tone: this call has no model-free path"
            ended = asyncio.ensure_future(self.ended.wait())
            tone = asyncio.ensure_future(failover.message_started.wait())
            await asyncio.wait({ended, tone}, timeout=TURN_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel(), tone.cancel()
            if not failover.message_started.is_set():
                return
            await asyncio.sleep(turn.pause_before_ms / 1000)
        elif turn.barge_in_ms is not None:
            # speak over the agent: wait until its reply is audible, then talk this far into it
            await self._wait_for(lambda: self.ear.speaking)
            await asyncio.sleep(turn.barge_in_ms / 1000)
        else:
            await asyncio.sleep(turn.pause_before_ms / 1000)
        speaking_at_start = self.ear.speaking
        segments_before = len(self.ear.segments)
        pieces = await asyncio.to_thread(self._caller_phrases, turn)
        gaps = [silence(ms, self.caller_rate) for ms in turn.pauses]
        pcm = pieces[0] + b"".join(gap + p for gap, p in zip(gaps, pieces[1:], strict=True))
        self.sim.queue_transcript(turn.words, key=self.key, parts=_parts(turn.phrases, pieces, gaps, self.caller_rate))
        start_end = await self.mic.say(pcm)
        self.spoken.append({"started": start_end[0], "ended": start_end[1]})
        if turn.hangup and not turn.model:
            return  # they hang up as they finish the sentence; nobody answers

        if speaking_at_start and segments_before:
            # barge-in cut-off: caller speech onset -> the agent's audio falls silent (pause or stop)
            seg = self.ear.segments[segments_before - 1]
            stopped = seg.stopped_after(start_end[0])
            if stopped is not None:
                self.timings["barge_in_ms"].append((stopped - start_end[0]) * 1000)
        speech_end = start_end[1]
        # the response gap: caller stops talking -> first agent voice they hear
        first = await self._first_voice_after(speech_end)
        if first is not None:
            self.timings["response_gap_ms"].append((first - speech_end) * 1000)
        if not barge_in_next:
            await self._wait_idle()

    def _caller_phrases(self, turn: Any) -> list[bytes]:
        """Each phrase of the turn as PCM16 at the caller's rate (blocking: renders or reads files)."""
        if turn.audio is not None:
            return [recording(self.scenario.file(p), self.caller_rate) for p in turn.audio]
        if turn.voice == "recorded":
            # spliced from recordings without the silence around each word, in the caller's language
            return [recorded_speech(p, self.caller_rate, self.scenario.caller_voice) for p in turn.phrases]
        pieces = [render_speech(p, self.caller_rate, voice=self.scenario.caller_voice) for p in turn.phrases]
        if len(pieces) > 1:
            # a pause of exactly the scenario's length between phrases, not espeak's padding on top of it
            pieces = [voiced_only(p, self.caller_rate) for p in pieces]
        return pieces

    async def _first_voice_after(self, t: float) -> float | None:
        assert self.ear is not None
        deadline = time.monotonic() + TURN_TIMEOUT_S
        while time.monotonic() < deadline and not self.ended.is_set():
            for seg in self.ear.segments:
                if seg.first_voice is not None and seg.first_voice >= t:
                    return seg.first_voice
            if self.session.agent_state == "listening" and time.monotonic() - t > 15:
                return None
            await asyncio.sleep(0.01)
        return None

    async def _wait_for(self, predicate: Any, timeout: float = TURN_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline and not self.ended.is_set():
            await asyncio.sleep(0.01)

    async def _sleep_unless_ended(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.ended.wait(), seconds)


def grade(scenario: Scenario, report: CallReport) -> list[Check]:
    """The scenario's expectations against what happened."""
    exp = scenario.expect
    checks: list[Check] = []
    agent_lines = [t["text"] for t in report.transcript if t["role"] == "agent"]
    said = " ".join(agent_lines).lower()
    for phrase in exp.said:
        checks.append(Check(f"said {phrase!r}", phrase.lower() in said))
    for phrase in exp.not_said:
        checks.append(Check(f"never said {phrase!r}", phrase.lower() not in said))
    if exp.greeting_discloses_ai:
        first = agent_lines[0] if agent_lines else ""
        first_sentence = first.split(".")[0] + "." if first else ""
        ok = " ai " in f" {first_sentence.lower().replace(',', ' ')} " and report.business.lower() in first.lower()
        checks.append(Check("greeting discloses AI and names the business", ok, first_sentence))
    if exp.tools:
        names = [c["name"] for c in report.tool_calls]
        it = iter(names)
        in_order = all(any(n == want for n in it) for want in exp.tools)
        checks.append(Check(f"tools {exp.tools}", in_order, f"called {names}"))
    told = " ".join(report.model_told).lower()
    for phrase in exp.model_told:
        checks.append(Check(f"model told {phrase!r}", phrase.lower() in told, f"told, each ending: {[t[-200:] for t in report.model_told]}"))
    for phrase in exp.instructed:
        checks.append(Check(f"instructed {phrase!r}", any(phrase.lower() in i.lower() for i in report.instructed),
                            f"{len(report.instructed)} session.update(s) with instructions"))
    for name in exp.tool_errors:
        refused = any(c["name"] == name and c["error"] for c in report.tool_calls)
        checks.append(Check(f"{name} refused", refused))
    if exp.outcome is not None:
        checks.append(Check(f"outcome {exp.outcome}", report.outcome == exp.outcome, f"got {report.outcome}"))
    if exp.ended_by is not None:
        checks.append(Check(f"ended by {exp.ended_by}", report.ended_by == exp.ended_by, f"got {report.ended_by}"))
    if exp.transferred_to is not None:
        referred = [dest for kind, dest in report.line_actions if kind == "transfer"]
        checks.append(Check(f"transferred to {exp.transferred_to}", referred == exp.transferred_to, f"got {referred}"))
    if exp.db is not None:
        checks.extend(_grade_db(exp.db.model_dump(exclude_none=True), report.db))
    if exp.flags or exp.no_flags or exp.report is not None:
        checks.extend(_grade_call_report(exp.flags, exp.no_flags, exp.report, report.call_report))
    checks.append(Check("script followed without problems", not report.problems, "; ".join(report.problems)))
    return checks


def _grade_call_report(
    flags: list[str], no_flags: list[str], fields: dict[str, Any] | None, stored: dict[str, Any] | None
) -> list[Check]:
    if stored is None:
        return [Check("call report stored", False, "the call left no report")]
    raised = {f["flag"]: f for f in stored.get("flags", [])}
    checks = [Check(f"flag {name}", name in raised, f"raised {sorted(raised)}") for name in flags]
    checks += [Check(f"no flag {name}", name not in raised, f"raised {raised.get(name)}") for name in no_flags]
    if fields is not None:
        checks.append(Check(f"report {fields}", _contains(stored, fields), json.dumps(stored, default=str)[:600]))
    return checks


_BOUND = re.compile(r"^\s*([<>]=?)\s*(-?\d+(?:\.\d+)?)\s*$")


def _contains(have: Any, want: Any) -> bool:
    """`want` is a subset of `have`: dicts by the keys `want` names, lists item by item, a bound such
    as "> 0" against a number (costs vary with timing), the rest equal."""
    bound = _BOUND.match(want) if isinstance(want, str) else None
    if bound is not None and isinstance(have, (int, float)) and not isinstance(have, bool):
        op, limit = bound.group(1), float(bound.group(2))
        return {">": have > limit, ">=": have >= limit, "<": have < limit, "<=": have <= limit}[op]
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and _contains(have[k], v) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(have, list) and len(have) == len(want) and all(map(_contains, have, want))
    return have == want


def _grade_db(expected: dict[str, list[dict[str, Any]]], actual: dict[str, Any] | None) -> list[Check]:
    if actual is None:
        return [Check("database state", False, "no database configured (set DATABASE_URL)")]
    checks = []
    for table, rows in expected.items():
        got = actual.get(table, [])
        if len(got) != len(rows):
            checks.append(Check(f"{table}: {len(rows)} row(s)", False, f"found {len(got)}: {got}"))
            continue
        unmatched = list(got)
        for want in rows:
            match = next((r for r in unmatched if _row_matches(want, r)), None)
            if match is None:
                checks.append(Check(f"{table} row {want}", False, f"rows: {got}"))
            else:
                unmatched.remove(match)
                checks.append(Check(f"{table} row {want}", True))
    return checks


def _row_matches(want: dict[str, Any], row: dict[str, Any]) -> bool:
    for k, v in want.items():
        have = row.get(k)
        if isinstance(have, datetime) and isinstance(v, (str, datetime)):
            v = datetime.fromisoformat(v) if isinstance(v, str) else v
        if isinstance(v, str) and isinstance(have, str):
            if v.lower() != have.lower():
                return False
        elif have != v:
            return False
    return True


async def simulate(
    scenario: Scenario,
    *,
    audio: bool = False,
    settings: Settings | None = None,
    sim: RealtimeSimulator | None = None,
    stores: Any | None = None,
    caller_rate: int = CALLER_RATE,
) -> CallReport:
    """Run and grade one scenario. Pass `sim` to share a simulator; `stores` (ScenarioStores) to record."""
    settings = settings or load_settings(openai_api_key="simulator")
    owned = sim is None
    if sim is None:
        sim = RealtimeSimulator(model_delay_ms=scenario.model_delay_ms)
        await sim.start()
    else:
        sim.model_delay_ms = scenario.model_delay_ms
    try:
        report = await _ScenarioCall(
            scenario, audio=audio, settings=settings, sim=sim, stores=stores, caller_rate=caller_rate
        ).run()
    finally:
        if owned:
            await sim.stop()
    report.checks = grade(scenario, report)
    return report


def format_report(report: CallReport) -> str:
    about = ", ".join(x for x in (report.mode, report.business) if x)
    lines = [f"Scenario: {report.scenario}  ({about})", ""]
    if report.error is not None:
        return "\n".join([*lines, f"ERROR  {report.error}", "", "RESULT: FAIL"])
    for t in report.transcript:
        who = "AGENT " if t["role"] == "agent" else "CALLER"
        cut = "  [interrupted]" if t["interrupted"] else ""
        lines.append(f"  {t['t']:7.2f}s  {who}  {t['text']}{cut}")
    if report.tool_calls:
        lines += ["", "Tool calls:"]
        for c in report.tool_calls:
            outcome = f"ERROR {c['error']}" if c["error"] else (c["result"] or "")
            lines.append(f"  {c['name']}({json.dumps(c['arguments'])}) -> {outcome[:160]}  [{c['latency_ms']} ms]")
    if report.violations:
        lines += ["", "Grounding guard:"]
        lines += [f"  caught: {v['claim']!r} -> {v['correction']}" for v in report.violations]
    if report.timings:
        lines += ["", "Timings (ms): " + json.dumps(report.timings)]
    lines += ["", f"Outcome: {report.outcome}   ended by: {report.ended_by}   reason: {report.end_reason}"]
    if report.call_report is not None:
        flags = [f"{f['flag']}{f['turns'] or ''}" for f in report.call_report.get("flags", [])]
        gap = report.call_report.get("timing", {}).get("response_gap_s", {})
        lines.append(f"Report: flags {flags or 'none'}   response gap p50 {gap.get('p50')} s, max {gap.get('max')} s")
        cost = report.call_report.get("cost")
        if cost:
            lines.append(f"Cost: {cost['total']:.4f} {cost['currency']} (model {cost['model']:.4f}, "
                         f"telephony {cost['telephony']:.4f}, speculative share {cost['speculative_share']})")  # fmt: skip
    if report.db is not None:
        counts = {k: len(v) for k, v in report.db.items() if isinstance(v, list)}
        lines.append(f"Database: {counts}")
    lines += ["", "Checks:"]
    for c in report.checks:
        mark = "PASS" if c.ok else "FAIL"
        detail = f"  ({c.detail})" if c.detail and not c.ok else ""
        lines.append(f"  {mark}  {c.name}{detail}")
    lines.append("")
    lines.append("RESULT: " + ("PASS" if report.passed else "FAIL"))
    return "\n".join(lines)


def _parts(phrases: list[str], pieces: list[bytes], gaps: list[bytes], rate: int) -> list[tuple[str, float]] | None:
    """A turn said in phrases with pauses, as the simulator transcribes it: each phrase's words and the
    end of its audio from the turn's first voice (each piece is voiced from its first sample); None
    for a turn said in one breath."""
    if len(pieces) < 2:
        return None
    parts, at = [], 0
    for i, (words, piece) in enumerate(zip(phrases, pieces, strict=True)):
        at += len(piece) + (len(gaps[i - 1]) if i else 0)
        parts.append((words, at / 2 / rate))
    return parts


def caller_turns(rows: list[dict[str, Any]]) -> list[str]:
    """The caller's words turn by turn, from transcript rows in order: consecutive caller rows are one
    turn committed in parts at its pauses (the Realtime API transcribes each part on its own)."""
    turns: list[str] = []
    previous = None
    for row in rows:
        if row["role"] == "caller":
            if previous == "caller":
                turns[-1] = f"{turns[-1]} {row['text']}"
            else:
                turns.append(row["text"])
        previous = row["role"]
    return turns
