"""Keeps one call while it runs: journals every finished turn (through the playout guard and the
dictation pacing), hangs up once the goodbye is heard, handles caller silence and the call's time
limit, sums the model's usage, and finalises the call row however it ends.

Shared by the worker (real rooms) and the scenario runner (simulated line), like `session.build_session`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from livekit.agents import AgentSession, APIConnectionError, llm
from livekit.agents.metrics import RealtimeModelMetrics
from livekit.agents.voice.events import (
    CloseEvent,
    CloseReason,
    ConversationItemAddedEvent,
    ErrorEvent,
    MetricsCollectedEvent,
    UserStateChangedEvent,
)

from agent.call import CALLER_HANGUP, CallContext
from agent.call_end import finish_call
from agent.fallback import FallbackAudio, ModelFailover, error_name
from agent.metrics import realtime_error
from agent.model_link import LinkedRealtimeModel
from agent.playout_guard import PlayoutGuard
from agent.recording import CallRecording
from agent.settings import Settings
from agent.speculation import SpeculativeRealtimeModel
from agent.tools.spoken import region_of
from agent.turn_pacing import DictationPacing
from agent.yield_on_resume import ReplyYield

# why LiveKit closed a call's session, in the call row's words, when nothing of ours had said why: the
# caller's leg left; or the job was shut down from outside (its room deleted or closed, the worker told
# to stop), which LiveKit reports as "user_initiated", though no user asked
CLOSED_BY = {
    CloseReason.PARTICIPANT_DISCONNECTED: CALLER_HANGUP,
    CloseReason.USER_INITIATED: "job_shutdown",
}


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
        self.closed = asyncio.Event()
        self.caller_left = False  # the caller's leg went (their hang-up, or their line lost)
        self.session_running = False  # set by call_start.answer once session.start() has returned
        self._silence_task: asyncio.Task[None] | None = None
        self._limit_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hanging_up = False
        # what the agent says is checked against the brain as it streams, ahead of its audio
        self.guard = PlayoutGuard(session, call)
        self.pacing = (
            DictationPacing(
                session, settings, region=region_of(call.brain.business.phone), languages=call.brain.languages
            )
            if settings is not None
            else None
        )
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
        if role == "caller" and self.session.input.audio is None:
            self.call.caller_turns += 1  # a typed turn (a spoken one counts as it starts)
        seq = self.call.record_turn(
            role=role, text=text, started_at=started, ended_at=ended, interrupted=item.interrupted
        )
        if role == "agent":
            if self.failover is not None and not item.interrupted:
                self.failover.reply_arrived()
            if self.pacing is not None and (self.reply_yield is None or not self.reply_yield.dropped(item)):
                # a reply the caller cut off as it began set no pace: their turn goes on
                self.pacing.pace_next_turn(text)
            self.guard.judge_turn(text, seq)
            if self.call.hang_up_after_reply is not None:
                # the goodbye has been said: hang up once it has been heard
                self._spawn(self._hang_up_after_reply())

    def _on_metrics(self, ev: MetricsCollectedEvent) -> None:
        # one per Realtime response, cancelled ones too: what the call is billed for (an empty
        # request id is the plugin reporting its connection, not a response)
        if isinstance(ev.metrics, RealtimeModelMetrics) and ev.metrics.request_id:
            self.call.usage.record(ev.metrics)

    def _on_error(self, ev: ErrorEvent) -> None:
        # counted for the operator (README "Operator metrics"); what the caller hears is failover's job
        if isinstance(ev.error, llm.RealtimeModelError):
            cause = ev.error.error
            code = error_name(cause)
            realtime_error(code or ("connection" if isinstance(cause, APIConnectionError) else "other"))

    # -- hang-ups ----------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _hang_up_after_reply(self) -> None:
        reason = self.call.hang_up_after_reply
        if reason is None or self._hanging_up:
            return
        self._hanging_up = True
        self.call.hang_up_after_reply = None
        line = self.call.line
        if line is None:
            return
        await self._wait_for_playout()
        self.call.end_reason = self.call.end_reason or reason
        await line.hang_up(reason)

    async def _wait_for_playout(self) -> None:
        speech = self.session.current_speech
        if speech is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(speech.wait_for_playout(), timeout=20)

    def on_dtmf(self, ev: Any) -> None:
        """Pressing 0 asks for a person, as on any phone menu."""
        digit = getattr(ev, "digit", "")
        self._cancel_silence()  # a key pressed is a caller still there
        if digit == "0":
            self.session.generate_reply(
                instructions=(
                    "The caller pressed 0 to reach a person. Call escalate_to_human with reason "
                    "explicit_request."
                )
            )

    # -- silence and time limit ---------------------------------------------------------------
    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            self.call.caller_turns += 1
        if self.model_lost:
            self._cancel_silence()  # the model-free path hangs up by itself, and a voicemail has pauses
            return
        if ev.new_state == "away":
            if self._silence_task is None or self._silence_task.done():
                self._silence_task = asyncio.create_task(self._handle_silence())
        elif ev.new_state == "speaking":
            self._cancel_silence()

    def _cancel_silence(self) -> None:
        if self._silence_task is not None:
            self._silence_task.cancel()
            self._silence_task = None

    async def _handle_silence(self) -> None:
        """Ask once whether the caller is still there; `silence_hangup_seconds` after they have heard
        it (not after it was asked for: a slow model or a long line would eat their time to answer),
        say goodbye. Speaking at any point cancels this (`_on_user_state`)."""
        calls = self.call.brain.calls
        check_in = self.session.generate_reply(
            instructions="The caller has gone quiet. Gently ask whether they are still there.",
            tool_choice="none",
        )
        with contextlib.suppress(TimeoutError, RuntimeError):
            await asyncio.wait_for(check_in.wait_for_playout(), timeout=20)
        await asyncio.sleep(calls.silence_hangup_seconds)
        if self.session.user_state == "speaking" or self.model_lost:
            return  # the model lost meanwhile: its own path ends the call
        # the end reason is set once the goodbye is heard: a caller who speaks over it goes on talking
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
    def caller_departed(self, why: str) -> None:
        """The caller's leg left the room (`why`: agent.telephony.why_the_caller_left). Unless the call
        was ending already (the agent's goodbye, a transfer), that is its end reason, whichever of
        LiveKit's events closes the session first; and the session closes now even where LiveKit would
        keep it open (a leg that left other than as a client) until the emptied room closes 20 s later."""
        self.caller_left = True
        self.call.end_reason = self.call.end_reason or why
        if self.session_running:  # before it starts, a shutdown would leave it unable ever to close
            self.session.shutdown(drain=False)

    def _on_close(self, ev: CloseEvent) -> None:
        self.caller_left = self.caller_left or ev.reason is CloseReason.PARTICIPANT_DISCONNECTED
        for task in (self._silence_task, self._limit_task):
            if task is not None:
                task.cancel()
        if self.failover is not None:
            self.failover.on_call_ended()  # a caller who hangs up mid-message: keep what they said
        if ev.error is not None:
            self.call.set_outcome("error")
            self.call.end_reason = self.call.end_reason or f"error: {ev.error}"
        finish_call(self.call, reason=self.call.end_reason or CLOSED_BY.get(ev.reason, ev.reason.value))
        if self.call.recording is None:
            self.closed.set()
            return
        # closed once the recording is on disk and on the call row's way to Postgres
        saved = asyncio.ensure_future(self.call.recording.finish())
        saved.add_done_callback(lambda _: self.closed.set())
        self._tasks.add(saved)
        saved.add_done_callback(self._tasks.discard)
