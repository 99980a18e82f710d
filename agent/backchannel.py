"""Backchannels: a caller's "mhm", "okay" or "right" over the agent's reply tells it to go on, not to stop.

Left to LiveKit, any sound the VAD hears for MIN_INTERRUPTION_DURATION pauses the reply, and the end
of turn that follows commits it as the caller's turn: the reply is cut where it was and the model
answers "mhm". Here a caller turn that began while the agent's reply was audible and holds less than
BACKCHANNEL_SECONDS of speech is no turn: nothing is committed to the model (its buffered audio is
cleared), and the paused reply resumes where it stopped. A real barge-in pauses the reply just as fast
as before; it is only longer than a backchannel. The price: a one-word "stop" or "no" said over the
agent is taken for a backchannel too.

The speech is the VAD's own measure, counted in audio windows. The times of the caller's state changes
measured it before: on a busy worker, whose event loop reads the caller's audio late, an "mhm" grew
past the bound and cut the reply. That measure also read about 0.15 s short on an idle one (the VAD
reports speech a few windows after it begins), so the bound moved from 0.6 to 0.8 s with the measure:
the VAD hears a 0.6 s "mhm" as 0.74 s of speech.

A short sound in the first BACKCHANNEL_AFTER_SECONDS of a reply to the caller's turn is no backchannel: it is the caller
finishing the sentence they paused in ("...fix my water heater" - the agent answers - "Tuesday"), too
late for the reply to be taken back (agent/yield_on_resume.py) and as short as an "mhm". Dropped, the
caller's words would be lost; as a turn, the agent stops and the model hears them. A listener
acknowledges what they have heard, and the agent has said two or three words by then.
"""

from __future__ import annotations

import logging
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.voice.events import UserStateChangedEvent

from agent.audible_reply import AudibleReply
from agent.livekit_internals import drop_turns_when, measure_caller_speech
from agent.model_link import live_session

log = logging.getLogger("receptionist.backchannel")


class Backchannels:
    """Drops the caller's short turns over the agent's audible reply, so the reply plays on."""

    def __init__(self, session: AgentSession[Any], *, max_seconds: float, after: float) -> None:
        self.session = session
        self.max_seconds = max_seconds
        self.after = after  # before this (s) into a reply to the caller's turn, a short sound is their sentence
        self.heard = 0  # backchannels let through this call
        self.replies = AudibleReply(session)
        self._over_reply = False  # the caller's open turn began while the agent's reply was audible
        self._into_answer: float | None = None  # ... this far (s) into a reply to their turn
        self._turn_open = False
        self._speech_s = 0.0  # the caller's speech in the open turn, as the VAD measured it
        session.on("user_state_changed", self._on_user_state)
        measure_caller_speech(session, self._on_speech)
        drop_turns_when(session, self._backchannel)

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.new_state == "speaking" and not self._turn_open:
            self._turn_open, self._speech_s = True, 0.0
            self._over_reply = self.session.agent_state == "speaking" and self._reply_playing()
            answer = self.replies.answer(ev.created_at)
            self._into_answer = None if answer is None else answer[1]

    def _on_speech(self, seconds: float) -> None:
        if self._turn_open:
            self._speech_s += seconds

    def _reply_playing(self) -> bool:
        speech = self.session.current_speech
        return speech is not None and not speech.interrupted and not speech.done() and speech.allow_interruptions

    def _backchannel(self) -> bool:
        """At the end of the caller's turn: was it only a backchannel over a reply still to be resumed?"""
        over_reply, into_answer, speech_s = self._over_reply, self._into_answer, self._speech_s
        self._turn_open, self._over_reply, self._into_answer, self._speech_s = False, False, None, 0.0
        if not (over_reply and speech_s < self.max_seconds and self._reply_playing()):
            log.debug("a turn (%.0f ms of speech, over the reply: %s)", speech_s * 1000, over_reply)
            return False
        if into_answer is not None and into_answer < self.after:
            log.info("a short turn (%.0f ms of speech) %.0f ms into the reply: the caller's sentence going on",
                     speech_s * 1000, into_answer * 1000)  # fmt: skip
            return False
        live = live_session(self.session.llm)
        if live is not None:
            live.clear_audio()  # the sound must not become the start of the caller's next turn
        self.heard += 1
        log.info("backchannel (%.0f ms of speech) over the reply: it goes on", speech_s * 1000)
        return True
