"""A caller the full fleet left ringing (agent/live/waiting_calls.py): answered without the model, with
the brain's busy line, the tone, and their message kept like any voicemail (outcome `message`, the
owner told at once: agent/notify/at_once.py), then a hang-up. No model, no VAD and no recording beside
the message. Per second it costs its worker about what a call does (LiveKit's audio path); it is
short, about 20 s, so a few slots for it beside a full worker's calls let the caller leave their name
and number instead of hearing busy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from livekit.agents import NOT_GIVEN, Agent, AgentSession, room_io
from livekit.agents.voice.events import CloseEvent, CloseReason

from agent.call import CallContext
from agent.call_end import finish_call
from agent.call_keeper import CLOSED_BY
from agent.call_start import Admit
from agent.fallback_audio import FallbackAudio
from agent.live.waiting_calls import ALL_LINES_BUSY
from agent.settings import Settings
from agent.voicemail import Voicemail

log = logging.getLogger("receptionist.overflow")


class BusyLine:
    """One caller's message, taken while every line is busy. Has what the worker's entrypoint uses of
    a CallKeeper: `caller_departed`, `closed` and `caller_left`."""

    def __init__(self, call: CallContext, settings: Settings, audio: FallbackAudio) -> None:
        self.call = call
        # no model, no VAD, no turns: the session only plays the lines and hands over the caller's audio
        self.session: AgentSession[CallContext] = AgentSession(
            userdata=call,
            turn_handling={"turn_detection": "manual", "interruption": {"enabled": False}},
            user_away_timeout=None,
        )
        self.voicemail = Voicemail(
            self.session, call, audio, voicemail_dir=settings.voicemail_dir, taken_while="every line was busy"
        )
        self.closed = asyncio.Event()
        self.caller_left = False
        self._running = False
        self._taking: asyncio.Task[None] | None = None
        self.session.on("close", self._on_close)

    async def answer(
        self,
        *,
        admit: Admit | None,
        room: Any = None,
        room_options: Any = NOT_GIVEN,
        line_up: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Answer the line and start taking the message (the worker's call_start.answer, without the
        model); returns once the caller can hear the busy line."""
        call = self.call
        if admit is not None and not await admit(call):
            # over the caller's hourly limit: no message either (a call would take none), and no word
            # to the owner of a caller the limit is there to stop
            call.set_outcome("error")
            call.end_reason = "rate_limited"
            if call.line is not None:
                await call.line.hang_up("rate_limited")
            return
        call.extras[ALL_LINES_BUSY] = True
        if isinstance(room_options, room_io.RoomOptions):
            # no transcript to the room: LiveKit would time it to the audio, a conversation's cost
            room_options = dataclasses.replace(room_options, text_output=False)
        log.info("every line was busy: answering without the model to take a message")
        start: dict[str, Any] = {"room": room, "room_options": room_options} if room is not None else {}
        await self.session.start(agent=Agent(instructions="Every line is busy."), record=False, **start)
        self._running = True
        call.line_ready.set()
        if line_up is not None:
            await line_up()
        call.answered()
        self.voicemail.attach()
        if self.voicemail.tap is not None:
            self.voicemail.tap.muted = True  # nobody listens: the tap only keeps the message
        self._taking = asyncio.create_task(self._take_message(), name="busy-line")

    async def _take_message(self) -> None:
        try:
            await self.voicemail.take_message("busy")
        except Exception:  # a voicemail that cannot be kept (a full disk): the caller is not left in silence
            log.exception("taking the message of a caller to a busy fleet failed")
        finally:
            if not self.voicemail.call_ended:
                self.call.end_reason = self.call.end_reason or ALL_LINES_BUSY  # the call's end reason too
                if self.call.line is not None:
                    await self.call.line.hang_up(ALL_LINES_BUSY)

    def caller_departed(self, why: str) -> None:
        """The caller's leg left the room (as CallKeeper.caller_departed)."""
        self.caller_left = True
        self.call.end_reason = self.call.end_reason or why
        if self._running:
            self.session.shutdown(drain=False)

    def _on_close(self, ev: CloseEvent) -> None:
        self.caller_left = self.caller_left or ev.reason is CloseReason.PARTICIPANT_DISCONNECTED
        self.voicemail.on_call_ended()  # a caller who hangs up mid-message: keep what they said
        if ev.error is not None:
            self.call.set_outcome("error")
            self.call.end_reason = self.call.end_reason or f"error: {ev.error}"
        finish_call(self.call, reason=self.call.end_reason or CLOSED_BY.get(ev.reason, ev.reason.value))
        self.closed.set()
