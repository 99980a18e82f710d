"""Backchannels: a caller's "mhm", "okay" or "right" over the agent's reply tells it to go on, not to stop.

Left to LiveKit, any sound the VAD hears for MIN_INTERRUPTION_DURATION pauses the reply, and the end
of turn that follows commits it as the caller's turn: the reply is cut where it was and the model
answers "mhm". Here a caller turn that began while the agent's reply was audible and holds less than
BACKCHANNEL_SECONDS of speech is no turn: nothing is committed to the model (its buffered audio is
cleared), and the paused reply resumes where it stopped. A real barge-in pauses the reply just as fast
as before; it is only longer than a backchannel. The price: a one-word "stop" or "no" said over the
agent is taken for a backchannel too.
"""

from __future__ import annotations

import logging
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.voice.events import UserStateChangedEvent

from agent.livekit_internals import drop_turns_when
from agent.model_link import live_session

log = logging.getLogger("receptionist.backchannel")


class Backchannels:
    """Drops the caller's short turns over the agent's audible reply, so the reply plays on."""

    def __init__(self, session: AgentSession[Any], *, max_seconds: float, vad_silence: float) -> None:
        self.session = session
        self.max_seconds = max_seconds
        self.vad_silence = vad_silence  # the VAD reports the end of speech this long after the last sound
        self.heard = 0  # backchannels let through this call
        self._over_reply = False  # the caller's open turn began while the agent's reply was audible
        self._turn_open = False
        self._speaking_since: float | None = None
        self._speech_s = 0.0  # the caller's speech in the open turn
        session.on("user_state_changed", self._on_user_state)
        drop_turns_when(session, self._backchannel)

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            if not self._turn_open:
                self._turn_open, self._speech_s = True, 0.0
                self._over_reply = self.session.agent_state == "speaking" and self._reply_playing()
            self._speaking_since = ev.created_at
        elif ev.old_state == "speaking" and self._speaking_since is not None:
            self._speech_s += max(0.0, ev.created_at - self._speaking_since - self.vad_silence)
            self._speaking_since = None

    def _reply_playing(self) -> bool:
        speech = self.session.current_speech
        return speech is not None and not speech.interrupted and not speech.done() and speech.allow_interruptions

    def _backchannel(self) -> bool:
        """At the end of the caller's turn: was it only a backchannel over a reply still to be resumed?"""
        over_reply, speech_s = self._over_reply, self._speech_s
        self._turn_open, self._over_reply, self._speech_s = False, False, 0.0
        if not (over_reply and speech_s <= self.max_seconds and self._reply_playing()):
            log.debug("a turn (%.0f ms of speech, over the reply: %s)", speech_s * 1000, over_reply)
            return False
        live = live_session(self.session.llm)
        if live is not None:
            live.clear_audio()  # the sound must not become the start of the caller's next turn
        self.heard += 1
        log.info("backchannel (%.0f ms of speech) over the reply: it goes on", speech_s * 1000)
        return True
