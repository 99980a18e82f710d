"""Builds one call's AgentSession and keeps the call's record while it runs.

Shared by the worker (real rooms) and the scenario runner (simulated line), so a simulated call
exercises the same session, tools, recording and guards as a phone call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from livekit import rtc
from livekit.agents import AgentSession, APIConnectionError, APIConnectOptions, llm, vad
from livekit.agents.metrics import RealtimeModelMetrics
from livekit.agents.voice.events import (
    AgentStateChangedEvent,
    CloseEvent,
    ConversationItemAddedEvent,
    ErrorEvent,
    MetricsCollectedEvent,
    UserStateChangedEvent,
)
from livekit.plugins import openai

from agent.brain.grounding import (
    Violation,
    check_latest_sentence,
    check_sentence_under_way,
    check_turn,
    sentences,
)
from agent.brain.schema import Brain
from agent.call import CallContext, TransferFailed
from agent.fallback import FallbackAudio, ModelFailover
from agent.livekit_internals import own_vad
from agent.metrics import realtime_error
from agent.model_link import LinkedRealtimeModel
from agent.recording import CallRecording
from agent.settings import Settings
from agent.speculation import SpeculativeRealtimeModel, Speculator
from agent.yield_on_resume import ReplyYield

log = logging.getLogger("receptionist.session")

# the agent just asked for something callers say in groups, with pauses between them
_DICTATION = re.compile(
    r"\b(phone|number|digits?|address|zip|postcode|postal code|spell|spelling|email|"
    r"confirmation code|code|date of birth|card)\b[^.!]*\?|\bspell\b",
    re.IGNORECASE,
)


def invites_dictation(text: str) -> bool:
    """Did this agent turn ask the caller for a number, an address, a code or a spelling?"""
    return bool(_DICTATION.search(text))


Text = TypeVar("Text", bound=str)


class AudioReceived:
    """How much of one agent message's audio has arrived from the model so far, in ms."""

    def __init__(self) -> None:
        self.ms = 0.0

    async def count(self, audio: AsyncIterable[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
        async for frame in audio:
            self.ms += frame.samples_per_channel * 1000 / frame.sample_rate
            yield frame


async def watch_sentences(
    text: AsyncIterable[Text],
    on_sentence: Callable[[list[str], str, float], None],
    audio_ms: Callable[[], float] = lambda: 0.0,
) -> AsyncIterator[Text]:
    """One agent message's transcript, passed on untouched and unhurried as it streams. Each time a
    sentence in it is complete (the next one has begun, or the message ended) `on_sentence` gets the
    sentences so far, "" and where in the message's audio the last one starts (`audio_ms()` when its
    first word arrived: the model sends words and their audio together); each time the sentence still
    streaming gains a word, it gets the complete sentences before it, that sentence's text so far and
    where it starts. The transcript runs ahead of the playout, so whatever `on_sentence` does happens
    before the caller hears that sentence, beside the playout rather than in front of it."""
    so_far = ""
    done = 0
    starts: list[float] = []
    words_seen = 0  # of the sentence under way
    async for delta in text:
        yield delta
        so_far += delta
        said = sentences(so_far)
        starts += [audio_ms()] * (len(said) - len(starts))
        while done < len(said) - 1:
            done += 1
            words_seen = 0
            on_sentence(said[:done], "", starts[done - 1])
        if len(said) > done and len(said[-1].split()) > words_seen:
            words_seen = len(said[-1].split())
            on_sentence(said[:-1], said[-1], starts[-1])
    said = sentences(so_far)
    if done < len(said):
        on_sentence(said, "", starts[-1] if len(starts) == len(said) else audio_ms())


@dataclass
class _Stopped:
    """A false claim the guard caught while its message was still streaming."""

    violations: list[Violation]
    said_before: str  # the message's sentences before the claim


def settings_for_brain(settings: Settings, brain: Brain) -> Settings:
    """The worker's settings with this business's turn-taking choices (brain `calls:`) applied."""
    c = brain.calls
    chosen = {
        "min_endpointing_delay": c.endpointing_seconds,
        "dictation_endpointing_delay": c.dictation_endpointing_seconds,
        "min_interruption_duration": c.interruption_seconds,
        "speculative_reply": c.speculative_reply,
    }
    update = {k: v for k, v in chosen.items() if v is not None}
    return settings.model_copy(update=update) if update else settings


def realtime_model(
    settings: Settings, *, text_only: bool = False, base_url: str | None = None
) -> openai.realtime.RealtimeModel:
    """OpenAI Realtime, speech to speech, with turn taking left to our local VAD (and speculative
    replies unless SPECULATIVE_REPLY is off); a lost connection is retried MODEL_MAX_RETRIES times
    with the conversation replayed, then reported to the call (agent/model_link.py)."""
    kwargs: dict[str, Any] = {}
    url = base_url or settings.openai_base_url
    if url:
        kwargs["base_url"] = url
    if text_only:
        kwargs["modalities"] = ["text"]
    cls = SpeculativeRealtimeModel if settings.speculative_reply else LinkedRealtimeModel
    if settings.speculative_reply:
        kwargs["max_wait"] = settings.max_endpointing_delay + 1.0
    return cls(
        model=settings.openai_realtime_model,
        voice=settings.openai_voice,
        api_key=settings.openai_api_key.get_secret_value(),
        turn_detection=None,
        conn_options=APIConnectOptions(
            max_retry=settings.model_max_retries,
            retry_interval=settings.model_retry_interval,
            timeout=settings.model_connect_timeout,
        ),
        **kwargs,
    )


def _own_vad(shared: vad.VAD | None) -> vad.VAD | None:
    """This call's own VAD object over the process's one loaded Silero model.

    Every session listens to its VAD's once-a-second metrics event; with one VAD object shared by N
    calls in a process, each of the N streams' events reached all N sessions (N^2 callbacks a second:
    a third of a core at 40 calls, measured with py-spy). The ONNX session, the costly part, is shared.
    """
    from livekit.plugins import silero

    if isinstance(shared, silero.VAD):
        return own_vad(shared)
    return shared


def build_session(
    settings: Settings,
    call: CallContext,
    *,
    model: llm.RealtimeModel,
    vad_model: vad.VAD | None,
) -> AgentSession[CallContext]:
    calls = call.brain.calls
    session = AgentSession[CallContext](
        llm=model,
        vad=_own_vad(vad_model),
        userdata=call,
        turn_handling={
            # explicit, so turn taking is deterministic and local (Silero), never the server's;
            # text-only sessions (console --text, text scenarios) have no audio to detect turns in
            "turn_detection": "vad" if vad_model is not None else "manual",
            "endpointing": {
                "min_delay": settings.min_endpointing_delay,
                "max_delay": settings.max_endpointing_delay,
            },
            "interruption": {
                "enabled": True,
                "mode": "vad",
                "min_duration": settings.min_interruption_duration,
                "resume_false_interruption": True,
            },
        },
        user_away_timeout=float(calls.silence_prompt_seconds),
    )
    if isinstance(model, SpeculativeRealtimeModel) and vad_model is not None:
        Speculator(
            session, model, lead=settings.speculation_lead, vad_silence=settings.vad_min_silence_duration
        )
    return session


# stop this much before the false sentence's first word: an interrupt takes effect ~0.1 s after it is
# asked for (measured by bench/grounding_playout.py), and the word's place is that of its arrival;
# wait at most CUT_WAIT_S for a reply's audio to start playing before cutting it anyway
CUT_EARLY_S = 0.2
CUT_WAIT_S = 5.0


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


class CallKeeper:
    """Journals every finished turn, runs the grounding guard, handles caller silence and the call's
    time limit, sums the model's usage, and finalises the call row however the call ends."""

    def __init__(
        self,
        session: AgentSession[CallContext],
        call: CallContext,
        settings: Settings | None = None,
        *,
        fallback: FallbackAudio | None = None,
    ) -> None:
        self.session = session
        self.call = call
        self.settings = settings
        self._dictating = False
        self.closed = asyncio.Event()
        self._silence_task: asyncio.Task[None] | None = None
        self._limit_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._acting = False
        self._stopped: _Stopped | None = None
        self._speaking = asyncio.Event()  # the agent's audio is playing, since _speaking_since
        self._speaking_since = 0.0
        call.on_agent_sentence = self._check_sentence
        session.on("agent_state_changed", self._on_agent_state)
        session.on("conversation_item_added", self._on_item)
        session.on("user_state_changed", self._on_user_state)
        session.on("close", self._on_close)
        session.on("metrics_collected", self._on_metrics)
        session.on("error", self._on_error)
        if settings is not None:
            call.prices = settings.price_table()
        if isinstance(session.llm, SpeculativeRealtimeModel):
            call.usage.speculation = session.llm.stats
        # a caller who goes on just after the reply began: stopped, dropped, their whole turn answered
        self.reply_yield: ReplyYield | None = None
        if settings is not None and settings.yield_window > 0:
            self.reply_yield = ReplyYield(session, window=settings.yield_window)
        # a failing model: the hold line, the lost reply asked again, and the model-free path
        self.failover: ModelFailover | None = None
        if settings is not None and isinstance(session.llm, LinkedRealtimeModel):
            self.failover = ModelFailover(
                session, call, session.llm.link, fallback,
                voicemail_dir=settings.voicemail_dir, hold_after=settings.hold_after,
                max_reply_retries=settings.model_max_retries,
                retry_interval=settings.model_retry_interval,
            )  # fmt: skip

    @property
    def model_lost(self) -> bool:
        return self.failover is not None and self.failover.link.lost

    async def start_recording(self) -> None:
        """Record the call when its brain says so: after `session.start()` has put the line's audio in
        place, before the greeting (which waits for `line_ready`), so the consent line is on the file."""
        if self.settings is not None:
            await CallRecording.start(self.session, self.call, self.settings.recordings_dir)

    def start(self) -> None:
        if self.failover is not None:
            self.failover.attach()
        limit = self.call.brain.calls.max_duration_minutes * 60.0
        self._limit_task = asyncio.create_task(self._enforce_time_limit(limit))

    # -- transcript and grounding -------------------------------------------------------------
    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
            return
        text = item.text_content or ""
        if not text.strip():
            return
        metrics = item.metrics or {}
        started = metrics.get("started_speaking_at") or item.created_at
        ended = metrics.get("stopped_speaking_at") or time.time()
        role = "caller" if item.role == "user" else "agent"
        seq = self.call.record_turn(
            role=role, text=text, started_at=started, ended_at=ended, interrupted=item.interrupted
        )
        if role == "agent":
            if self.failover is not None and not item.interrupted:
                self.failover.reply_arrived()
            if self.reply_yield is None or not self.reply_yield.dropped(item):
                # a reply the caller cut off as it began set no pace: their turn goes on
                self._pace_next_turn(text)
            self._guard(text, seq)
            if self.call.pending_action is not None:
                # the sentence before the hand-off (or the goodbye) has been said: act now
                self._spawn(self._carry_out_pending())

    def _pace_next_turn(self, agent_text: str) -> None:
        """Let a caller who dictates a phone number, an address or a spelling pause between groups
        without being answered mid-way (measured: every 600-900 ms pause was cut at 0.5 s).

        The agent's last words set the pace until it says something else. The caller's transcript is
        no sign that their turn is over: a speculative reply commits the audio at a pause, and the
        transcript of the first groups arrives while the caller is still dictating."""
        if self.settings is None:
            return
        dictation = invites_dictation(agent_text)
        if dictation == self._dictating:
            return
        self._dictating = dictation
        delay = self.settings.dictation_endpointing_delay if dictation else self.settings.min_endpointing_delay
        self.session.update_options(endpointing_opts={"min_delay": delay})

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            self._speaking_since = time.monotonic()
            self._speaking.set()
        else:
            self._speaking.clear()

    def _check_sentence(self, said: list[str], under_way: str, starts_at_ms: float) -> None:
        """A sentence of the message being spoken is complete (`under_way` is "") or has gained a word:
        if it contradicts the brain, cut the audio where that sentence starts, before it plays (the
        plugin truncates the item to what was heard), and say the correction instead."""
        if self._stopped is not None:
            return  # this message is already being cut
        if under_way:
            found = check_sentence_under_way(self.call.brain, said, under_way, self.call.now())
            before = said
        else:
            found = check_latest_sentence(self.call.brain, said, self.call.now())
            before = said[:-1]
        if not found:
            return
        self._stopped = _Stopped(found, " ".join(before))
        speech = self.session.current_speech
        if speech is not None and not speech.done():
            self._spawn(self._cut(speech, starts_at_ms))
        self._correct(found)

    async def _cut(self, speech: Any, at_ms: float) -> None:
        """Let the true sentences before the claim finish playing, then stop the audio."""
        if at_ms > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._speaking.wait(), CUT_WAIT_S)
            # the playout runs in real time from its first frame; this waits on that clock
            left = self._speaking_since + at_ms / 1000 - CUT_EARLY_S - time.monotonic()
            if left > 0:
                await asyncio.sleep(left)
        if not speech.done():
            speech.interrupt(force=True)  # a false claim is cut even where the caller may not cut in

    def _guard(self, text: str, seq: int) -> None:
        violations = check_turn(self.call.brain, text, self.call.now())
        stopped, self._stopped = self._stopped, None
        if stopped is not None:
            # heard: the caller got past the sentences before the claim (into the claim itself)
            heard = len(_letters(text)) > len(_letters(stopped.said_before))
            for v in stopped.violations:
                self.call.record_violation(
                    turn_seq=seq, kind=v.kind, claim=v.claim, correction=v.correction, heard=heard
                )
            log.warning("grounding guard: stopped a false claim %s it was heard: %s",
                        "after" if heard else "before", [v.correction for v in stopped.violations])  # fmt: skip
            known = {v.correction for v in stopped.violations}
            violations = [v for v in violations if v.correction not in known]
        if not violations:
            return
        for v in violations:
            self.call.record_violation(turn_seq=seq, kind=v.kind, claim=v.claim, correction=v.correction)
        log.warning("grounding guard: agent contradicted the brain: %s", [v.correction for v in violations])
        self._correct(violations)

    def _correct(self, violations: list[Violation]) -> None:
        corrections = " ".join(dict.fromkeys(v.correction for v in violations))
        # the next thing the caller hears is the correction, in the same voice
        self.session.generate_reply(
            instructions=(
                "You just told the caller something that contradicts the business's facts. "
                f"Correct yourself now, briefly and plainly, starting with 'Sorry, correction:'. "
                f"The facts: {corrections}"
            ),
            tool_choice="none",
        )

    def _on_metrics(self, ev: MetricsCollectedEvent) -> None:
        # one per Realtime response, cancelled ones too: what the call is billed for (an empty
        # request id is the plugin reporting its connection, not a response)
        if isinstance(ev.metrics, RealtimeModelMetrics) and ev.metrics.request_id:
            self.call.usage.record(ev.metrics)

    def _on_error(self, ev: ErrorEvent) -> None:
        # counted for the operator (README "Operator metrics"); what the caller hears is failover's job
        if isinstance(ev.error, llm.RealtimeModelError):
            cause = ev.error.error
            code = getattr(getattr(cause, "body", None), "code", None)
            realtime_error(code or ("connection" if isinstance(cause, APIConnectionError) else "other"))

    # -- hand-offs and hang-ups ----------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _carry_out_pending(self) -> None:
        action = self.call.pending_action
        if action is None or self._acting:
            return
        self._acting = True
        self.call.pending_action = None
        try:
            await self._wait_for_playout()
            kind, target = action
            line = self.call.line
            if line is None:
                return
            if kind == "hang_up":
                self.call.end_reason = self.call.end_reason or target
                await line.hang_up(target)
                return
            try:
                await line.transfer(target)
            except TransferFailed as e:
                log.warning("transfer to %s failed: %s", target, e)
                self.call.extras["transfer_failed"] = str(e)
                self.session.generate_reply(
                    instructions=(
                        "The transfer did not go through; nobody could pick up. Apologise briefly and "
                        "offer to take a message with a callback request."
                    )
                )
                return
            self.call.set_outcome("escalated")
            self.call.end_reason = "transferred"
        finally:
            self._acting = False

    async def _wait_for_playout(self) -> None:
        speech = self.session.current_speech
        if speech is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(speech.wait_for_playout(), timeout=20)

    def on_dtmf(self, ev: Any) -> None:
        """Pressing 0 asks for a person, as on any phone menu."""
        digit = getattr(ev, "digit", "")
        if digit == "0":
            self.session.generate_reply(
                instructions=(
                    "The caller pressed 0 to reach a person. Call escalate_to_human with reason "
                    "explicit_request."
                )
            )

    # -- silence and time limit ---------------------------------------------------------------
    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if self.model_lost:
            return  # the model-free path hangs up by itself, and a voicemail has pauses
        if ev.new_state == "away":
            if self._silence_task is None or self._silence_task.done():
                self._silence_task = asyncio.create_task(self._handle_silence())
        elif ev.new_state == "speaking" and self._silence_task is not None:
            self._silence_task.cancel()
            self._silence_task = None

    async def _handle_silence(self) -> None:
        calls = self.call.brain.calls
        self.session.generate_reply(
            instructions="The caller has gone quiet. Gently ask whether they are still there.",
            tool_choice="none",
        )
        await asyncio.sleep(calls.silence_hangup_seconds)
        if self.session.user_state == "speaking":
            return
        self.call.end_reason = "caller_silent"
        await self.say_goodbye_and_hang_up(
            "The caller has not answered. Say a short, warm goodbye and that they can call back any time.",
            reason="caller_silent",
        )

    async def _enforce_time_limit(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self.say_goodbye_and_hang_up(
            "The call has reached its time limit. Apologise, offer that a person will call back, and say goodbye.",
            reason="max_duration",
        )

    async def say_goodbye_and_hang_up(self, instructions: str, *, reason: str) -> None:
        handle = self.session.generate_reply(instructions=instructions, tool_choice="none")
        try:
            await asyncio.wait_for(handle.wait_for_playout(), timeout=20)
        except (TimeoutError, RuntimeError):
            pass
        self.call.end_reason = self.call.end_reason or reason
        if self.call.line is not None:
            await self.call.line.hang_up(reason)

    # -- the end ------------------------------------------------------------------------------
    def _on_close(self, ev: CloseEvent) -> None:
        for task in (self._silence_task, self._limit_task):
            if task is not None:
                task.cancel()
        if self.failover is not None:
            self.failover.on_call_ended()  # a caller who hangs up mid-message: keep what they said
        if ev.error is not None:
            self.call.set_outcome("error")
            self.call.end_reason = self.call.end_reason or f"error: {ev.error}"
        self.call.finish(reason=self.call.end_reason or str(ev.reason.value))
        if self.call.recording is None:
            self.closed.set()
            return
        # closed once the recording is on disk and on the call row's way to Postgres
        saved = asyncio.ensure_future(self.call.recording.finish())
        saved.add_done_callback(lambda _: self.closed.set())
        self._tasks.add(saved)
        saved.add_done_callback(self._tasks.discard)
