"""Backchannels: a caller's "mhm", "okay" or "right" over the agent's reply tells it to go on, not to stop.

Left to LiveKit, any sound the VAD hears for MIN_INTERRUPTION_DURATION pauses the reply, and the end
of turn that follows commits it as the caller's turn: the reply is cut where it was and the model
answers "mhm". Here a caller turn that began while the agent's reply was audible and holds less than
BACKCHANNEL_SECONDS of speech is no turn, and the paused reply resumes where it stopped. A real
barge-in pauses the reply just as fast as before; it is only longer than a backchannel.

Its words then decide. The sound is committed as an item of its own with no reply asked for (when the
reply has finished generating; otherwise its audio is cleared, unread), and once transcribed: an
"mhm", "okay" or "I see" (every word one a listener says to let the speaker go on) leaves the model's
conversation and the call's transcript; a "no", a "stop", a "wait" or the end of the caller's sentence
said late stops the agent, and the model answers it. That takes the transcriber's time (about 0.5 s
with the Realtime API), during which the reply plays on.

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
from livekit.agents.voice.events import UserInputTranscribedEvent, UserStateChangedEvent

from agent.audible_reply import AudibleReply
from agent.brain.languages import words_of
from agent.livekit_internals import drop_turns_when, measure_caller_speech
from agent.model_link import live_session

log = logging.getLogger("receptionist.backchannel")

# what a caller says to tell the agent to go on (English, Spanish, French); a short sound whose words
# are all among these is a backchannel, any other word (a "no", a "wait", a day) makes it a turn
_GO_ON = frozenset("""
mhm mm mmm hmm mhmm mmhmm mm-hmm uh-huh uh huh um ah oh ooh okay ok k right yeah yes yep yup ya sure i see got
it gotcha alright all great cool nice good fine perfect wow thanks thank you
si sí vale claro aja ajá bueno ya entiendo oui ouais d'accord bon ah
""".split())


def backchannel_words(transcript: str) -> bool:
    """Whether every word of a transcript is one a listener says to let the speaker go on (an empty
    transcript too: a cough, a breath)."""
    return all(w in _GO_ON for w in words_of(transcript))


class Backchannels:
    """Lets the caller's short sounds over the agent's audible reply through, so the reply plays on,
    and answers those whose words were no backchannel."""

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
        session.on("user_input_transcribed", self._on_transcript)
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
        # its words are read once transcribed; it must not become the start of the caller's next turn
        if live is not None and not live.commit_aside(backchannel_words):
            log.debug("a reply is still being generated: the sound is cleared, its words unread")
            live.clear_audio()
        self.heard += 1
        log.info("backchannel (%.0f ms of speech) over the reply: it goes on", speech_s * 1000)
        return True

    def _on_transcript(self, ev: UserInputTranscribedEvent) -> None:
        """The words of a short sound let through as a backchannel, which were none (an "mhm" never
        surfaces: agent/model_link.py deletes it): a "no", a "wait" or the end of the caller's
        sentence stops the agent, and the model answers it."""
        live = live_session(self.session.llm)
        if not ev.is_final or live is None or ev.item_id not in live.asides:
            return
        log.info("the caller's short sound over the reply was %d words, not a backchannel: answered",
                 len(ev.transcript.split()))  # fmt: skip
        if self.session.user_state == "speaking":
            return  # the caller goes on: the end of this turn is answered, with these words before it
        speech = self.session.current_speech
        if speech is not None and not speech.done() and speech.allow_interruptions:
            speech.interrupt()
        try:
            self.session.generate_reply()
        except RuntimeError:
            log.debug("the session is closing: the caller's words are kept, unanswered")
