"""Speculative replies: ask the model for its answer while we are still deciding whether the caller
has finished, and play it only once they have.

A caller's turn ends when they have been silent for the endpointing delay (0.45 s by default). The
model then needs its own time before the first audio arrives (300 ms in the benchmarks, more on the
real API). Both waits are dead air, one after the other. Here they overlap: as soon as the VAD hears
the caller stop, the audio so far is committed and a response requested. LiveKit's end-of-turn
decision is left exactly as it was; when it comes, LiveKit asks for a reply and receives the one
already under way (its audio buffered, never played early). If the caller speaks again first, the
speculative response is cancelled and anything it put in the conversation is deleted, so the model
later answers the whole turn; the audio committed so far stays, as the first part of the caller's
turn. Its transcript arrives at that commit too, while the caller may still be talking: nothing may
take a caller's transcript for the end of their turn (the dictation pacing in agent/session.py once
did, and a caller dictating a number heard the agent in their next pause).

What it costs: one extra response request for each pause the caller resumes after (billed by
OpenAI, though cancelled within the model's latency it produces little output). What it does not
change: when the agent starts speaking relative to the end-of-turn decision, so it cuts off no more
callers than the same endpointing without it.

LiveKit Agents' own preemptive generation only covers STT + LLM pipelines (it returns early for a
RealtimeModel), which is why this lives here, as a subclass of the plugin's session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import AgentSession, llm
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given
from livekit.agents.voice.events import UserStateChangedEvent
from openai.types.realtime import (
    ConversationItemDeleteEvent,
    ResponseCancelEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
)

from agent.livekit_internals import (
    DiscardedGeneration,
    current_generation,
    generation_done,
    new_generation,
    set_current_generation,
)
from agent.model_link import MIN_COMMIT_S, LinkedRealtimeModel, LinkedSession

log = logging.getLogger("receptionist.speculation")

_RECHECK_S = 0.1  # how often a pause's wait is checked against the endpointing delay as it is now


@dataclass
class SpeculationStats:
    started: int = 0
    adopted: int = 0
    abandoned: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    adopted_at: list[float] = field(default_factory=list)  # time.monotonic() of each adoption
    # Realtime response ids, for the call's usage: every speculative response, and those abandoned
    # (billed, never played), whether cancelled in time or already complete
    response_ids: set[str] = field(default_factory=set)
    abandoned_response_ids: set[str] = field(default_factory=set)


@dataclass
class _Speculation:
    fut: asyncio.Future[llm.GenerationCreatedEvent]
    started_at: float
    event_id: str | None  # the response.create's id, echoed back in the response's metadata
    expiry: asyncio.TimerHandle | None = None
    ready: bool = False  # its first audio came, or it ended without any (a tool call)

    @property
    def failed(self) -> bool:
        """The request ended without a response to hand over (cancelled, timed out, refused)."""
        return self.fut.done() and (self.fut.cancelled() or self.fut.exception() is not None)


class SpeculativeSession(LinkedSession):
    """The plugin's session, plus `speculate()` / `abandon()` and adoption in `generate_reply()`."""

    def __init__(self, model: SpeculativeRealtimeModel, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self.stats = model.stats
        self._spec_model = model
        self._spec: _Speculation | None = None
        self._max_wait = model.max_wait
        self._cleanups: set[asyncio.Task[None]] = set()
        # response.create ids of speculative requests, and of those abandoned before the server
        # named the response
        self._speculative_events: set[str] = set()
        self._abandoned_events: set[str] = set()

    @property
    def speculating(self) -> bool:
        return self._spec is not None

    @property
    def reply_ready(self) -> bool:
        """Whether ending the caller's turn now would let them hear the speculative reply now: its first
        audio has come, or it ended without any (a tool call), or it failed; True with none under way."""
        spec = self._spec
        return spec is None or spec.ready or spec.failed

    def _spec_response(self, response_id: str | None) -> _Speculation | None:
        """The speculation under way, if `response_id` is its response."""
        spec = self._spec
        if spec is None or not spec.fut.done() or spec.failed or not response_id:
            return None
        return spec if spec.fut.result().response_id == response_id else None

    def _reply_now_ready(self) -> None:
        listener = self._spec_model.on_reply_ready
        if listener is not None:
            # never inside the plugin's or LiveKit's own handling of the event
            asyncio.get_running_loop().call_soon(listener)

    def _heard_from_now(self, spec: _Speculation | None) -> None:
        """The speculative reply `spec` (when it is one) could be heard from now on: said once."""
        if spec is not None and not spec.ready:
            spec.ready = True
            self._reply_now_ready()

    def speculate(self) -> bool:
        """Commit the caller's audio so far and request a response that nobody plays yet."""
        if self._spec is not None or self.has_active_generation:
            return False
        if self._pushed_duration_s < MIN_COMMIT_S:
            return False
        super().commit_audio()
        fut = super().generate_reply()
        event_id = next((k for k, f in self._response_created_futures.items() if f is fut), None)
        if event_id is not None:
            self._speculative_events.add(event_id)
        spec = _Speculation(fut=fut, started_at=time.time(), event_id=event_id)
        # a speculation LiveKit never asks for (the turn was skipped, the session moved on) must
        # not linger in the conversation
        spec.expiry = asyncio.get_running_loop().call_later(
            self._max_wait, self.abandon, "not adopted in time"
        )
        self._spec = spec
        self.stats.started += 1
        return True

    def commit_heard(self) -> bool:
        # a speculation committed the caller's audio already; what came since is silence
        return self._spec is None and super().commit_heard()

    def abandon(self, reason: str = "caller resumed") -> None:
        """Cancel the speculative response and remove whatever it added to the conversation."""
        spec, self._spec = self._spec, None
        if spec is None:
            return
        if spec.expiry is not None:
            spec.expiry.cancel()
        if not spec.ready:
            self._reply_now_ready()  # none is under way now
        self.stats.abandoned += 1
        self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        if spec.event_id is not None:
            self._abandoned_events.add(spec.event_id)
        if spec.fut.done() and not spec.failed:
            self.stats.abandoned_response_ids.add(spec.fut.result().response_id)
        if not spec.fut.done():
            # the plugin sends response.cancel and discards the response if it arrives later
            spec.fut.cancel()
            return
        if spec.failed:
            return
        generation = current_generation(self)
        if isinstance(generation, DiscardedGeneration):
            return
        ev = spec.fut.result()
        if generation is not None and not generation_done(generation):
            self.send_event(ResponseCancelEvent(type="response.cancel", response_id=ev.response_id))
        task = asyncio.create_task(self._delete_outputs(ev, generation))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _delete_outputs(self, ev: llm.GenerationCreatedEvent, generation: Any) -> None:
        """Once the cancelled response is done, delete its messages and tool calls."""
        item_ids: list[str] = []

        async def drain_messages() -> None:
            async for msg in ev.message_stream:
                item_ids.append(msg.message_id)

        async def drain_calls() -> None:
            async for call in ev.function_stream:
                item_ids.append(call.id)

        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(drain_messages(), drain_calls()), timeout=10)
        if generation is not None:
            item_ids.extend(i for i in generation.messages if i not in item_ids)
        for item_id in item_ids:
            self.send_event(
                ConversationItemDeleteEvent(type="conversation.item.delete", item_id=item_id)
            )

    # -- the response's id and usage ------------------------------------------------------------
    def _handle_response_created(self, event: ResponseCreatedEvent) -> None:
        metadata = event.response.metadata
        event_id = metadata.get("client_event_id") if isinstance(metadata, dict) else None
        if event_id in self._speculative_events and event.response.id:
            self.stats.response_ids.add(event.response.id)
            if event_id in self._abandoned_events:
                self.stats.abandoned_response_ids.add(event.response.id)
        super()._handle_response_created(event)

    def _handle_response_audio_delta(self, event: Any) -> None:
        super()._handle_response_audio_delta(event)
        self._heard_from_now(self._spec_response(getattr(event, "response_id", None)))

    def _hold_if_silent(self, item_id: str) -> None:
        voiced = item_id in self._voiced
        super()._hold_if_silent(item_id)
        if not voiced and item_id in self._voiced:
            # the hold line went ahead of a speculative reply still silent: it is heard from now on
            self._heard_from_now(self._spec)

    def _handle_response_done(self, event: ResponseDoneEvent) -> None:
        self._heard_from_now(self._spec_response(event.response.id))
        if isinstance(current_generation(self), DiscardedGeneration):
            # a response abandoned before the server named it is still billed: the plugin skips its
            # response.done, so it runs through as an empty generation and its usage is reported
            set_current_generation(self, new_generation(created_at=time.time()))
        super()._handle_response_done(event)

    # -- what LiveKit calls ---------------------------------------------------------------------
    def commit_audio(self) -> None:
        if self._spec is not None:
            # the turn's audio was committed when speculating; what came since is silence
            super().clear_audio()
            return
        super().commit_audio()

    def clear_audio(self) -> None:
        self.abandon("turn dropped")
        super().clear_audio()

    def generate_reply(
        self,
        *,
        instructions: NotGivenOr[str] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        tools: NotGivenOr[list[llm.Tool]] = NOT_GIVEN,
    ) -> asyncio.Future[llm.GenerationCreatedEvent]:
        spec = self._spec
        if spec is not None and spec.failed:
            # the speculative request itself failed (timed out, refused): ask again rather than hand
            # LiveKit a failure and leave the caller unanswered
            self.abandon("speculative request failed")
        elif spec is not None and not (is_given(instructions) or is_given(tool_choice) or is_given(tools)):
            self._spec = None
            if spec.expiry is not None:
                spec.expiry.cancel()
            self.stats.adopted += 1
            self.stats.adopted_at.append(time.monotonic())
            log.debug("speculative reply adopted, %.0f ms ahead", (time.time() - spec.started_at) * 1000)
            return spec.fut
        self.abandon("other reply requested")
        return super().generate_reply(instructions=instructions, tool_choice=tool_choice, tools=tools)

    def interrupt(self) -> None:
        if self._spec is not None:
            # the only active generation is the speculative one
            self.abandon("interrupted")
            return
        super().interrupt()

    async def update_instructions(self, instructions: str) -> None:
        if instructions != self._sent_instructions:  # the same words (a hand-over) change no reply
            self.abandon("instructions changed")
        await super().update_instructions(instructions)

    async def update_chat_ctx(self, chat_ctx: llm.ChatContext) -> None:
        self.abandon("conversation changed")
        await super().update_chat_ctx(chat_ctx)

    async def update_tools(self, tools: list[llm.Tool]) -> None:
        self.abandon("tools changed")
        await super().update_tools(tools)

    async def aclose(self) -> None:
        self.abandon("session closed")
        await super().aclose()


class SpeculativeRealtimeModel(LinkedRealtimeModel):
    """OpenAI Realtime whose sessions can answer speculatively; one model per call."""

    def __init__(self, *args: Any, max_wait: float = 4.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_wait = max_wait
        self.stats = SpeculationStats()
        self.live: SpeculativeSession | None = None
        # told (soon after) when a speculative reply could first be heard, or none is under way any more
        self.on_reply_ready: Callable[[], None] | None = None

    def session(self, *, turn_detection_disabled: bool = False) -> SpeculativeSession:
        sess = SpeculativeSession(self, turn_detection_disabled=turn_detection_disabled)
        self._sessions.add(sess)
        self.live = sess
        return sess


class Speculator:
    """Starts a speculative reply when the caller falls silent and abandons it if they go on.

    It fires `lead` seconds before the end-of-turn decision is due (at once with the defaults; after
    0.9 s of silence while a caller dictates, 2.7 s inside a number not yet whole), so only the pauses
    that come that close to the decision cost a request.
    """

    def __init__(
        self, session: AgentSession[Any], model: SpeculativeRealtimeModel, *, lead: float, vad_silence: float
    ) -> None:
        self.session = session
        self.model = model
        self.lead = lead
        # the VAD reports the end of speech this long after the caller's last sound
        self.vad_silence = vad_silence
        self._pending: asyncio.Handle | None = None
        self._stopped_at = 0.0  # time.monotonic() when the VAD last heard the caller stop
        session.on("user_state_changed", self._on_user_state)
        session.on("close", lambda _ev: self._cancel_pending())

    def _cancel_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        live = self.model.live
        if ev.new_state == "speaking":
            self._cancel_pending()
            if live is not None:
                live.abandon("caller resumed")
            return
        if ev.new_state != "listening" or ev.old_state != "speaking":
            return
        self._stopped_at = time.monotonic()
        self._cancel_pending()
        self._pending = asyncio.get_running_loop().call_soon(self._schedule)

    def _schedule(self) -> None:
        """Fire when the decision is `lead` away, by the endpointing delay as it is now: the dictation
        pacing may shorten it during the pause, once the caller's words show their number whole."""
        self._pending = None
        if self.session.user_state == "speaking":
            return
        endpointing = self.session.options.endpointing.get("min_delay", 0.5)
        wait = self._stopped_at + max(0.0, endpointing - self.lead - self.vad_silence) - time.monotonic()
        if wait <= 0:
            self._fire()
            return
        self._pending = asyncio.get_running_loop().call_later(min(wait, _RECHECK_S), self._schedule)

    def _fire(self) -> None:
        live = self.model.live
        if live is None or self.session.user_state == "speaking":
            return
        if self.session.current_speech is not None or self.session.agent_state in ("speaking", "thinking"):
            return
        live.speculate()
