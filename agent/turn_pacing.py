"""Dictation pacing: after the agent asks for a phone number, an address, a code or a spelling, the
caller's pauses between the groups they say it in are not taken for the end of their turn.

Street addresses get a longer end-of-turn silence (DICTATION_ENDPOINTING_DELAY), and so do spellings of a
name the call has not heard. A phone number, a confirmation code, an email address or the spelling of a
name the agent's question or the caller's last turns said has a known shape, so the call listens for it: each
pause commits the caller's audio so far (no reply asked for), and its transcript says whether the value
is whole yet. Until it is, a pause may last DICTATION_HOLD_SECONDS; once it is, the turn ends at the
usual delay, at once if that much silence has passed already (agent/dictated.py judges the words).

Any other turn is paced by its words too, the other way round. The speculative reply asked for at a
pause commits it (SPECULATIVE_REPLY; without it no pause is transcribed before the turn ends), and the
turn may wait up to WORDS_WAIT_S past the usual delay for the pause's transcript, and in any case until
that reply could be heard (its first audio has come): ending the turn sooner would bring it no sooner.
Words that stop where
a sentence cannot end ("I'm calling about, um", "a quote for"; in English, Spanish and French,
agent/unfinished.py) hold the turn open
for up to UNFINISHED_HOLD_SECONDS of silence; any others end it at the usual delay, at once if that
much has passed. The reply asked for at the pause is under way all the while, so a transcript that
comes before the reply's first audio costs the caller nothing."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from livekit.agents import AgentSession
from livekit.agents.voice.events import UserInputTranscribedEvent, UserStateChangedEvent

from agent.audible_reply import AudibleReply
from agent.brain.languages import guess_language
from agent.dictated import Asked, Heard, asked_for, judge, names_heard
from agent.livekit_internals import recheck_end_of_turn
from agent.model_link import live_session
from agent.settings import Settings
from agent.speculation import SpeculativeRealtimeModel
from agent.turn_model import vad_silence
from agent.unfinished import sounds_unfinished

log = logging.getLogger("receptionist.turns")

_RECENT_PARTS = 6  # the caller's transcripts a name to spell is looked for in: their last turn or two
# How much longer than the usual delay a pause may wait for its transcript. The Realtime API transcribes
# a commit while it generates the reply asked for with it, so a transcript that takes no longer than
# the model's first audio delays nothing; a slow transcriber costs a finished turn at most this.
WORDS_WAIT_S = 0.4
# A caller answered mid-sentence gets their pause then, plus this, before their next turns end
PATIENCE_MARGIN_S = 0.2


class DictationPacing:
    """The endpointing delay of one call, set by what the agent last asked for and, for a number, a code
    or an email, by how much of it the caller has said."""

    def __init__(
        self, session: AgentSession[Any], settings: Settings, *, region: str = "US",
        languages: Sequence[str] = ("en",),
    ) -> None:  # fmt: skip
        self.session = session
        self.settings = settings
        self.region = region
        self.languages = list(languages) or ["en"]  # the business's, its first the one it answers in
        self.asked: Asked | None = None
        self.heard = Heard.PART  # of the value asked for, in the caller's turn so far
        self._parts: list[str] = []  # the transcripts of the value dictated in the caller's turn, part by part
        self._said: list[str] = []  # the transcripts of the caller's turn since the agent last spoke
        self._recent: deque[str] = deque(maxlen=_RECENT_PARTS)  # the caller's last words, for names
        self.names: frozenset[str] = frozenset()  # what a spelling asked for may be of
        self._spoke_since_asked = False
        # what the transcript of the caller's pause says, in a turn not dictating a value: None (they
        # are talking, or the pause was not committed), "awaited", "unfinished" or "finished"
        self.pause_words: str | None = None
        # the end-of-turn delay this caller has shown they need, once answered mid-sentence (0: the usual)
        self.patience = 0.0
        self._speech_ended: float | None = None  # when the caller's latest speech ended
        self._vad_silence = vad_silence(settings)  # the session's VAD runs with it (a turn model raises it)
        self._replies = AudibleReply(session) if settings.cut_off_patience_seconds > 0 else None
        session.on("user_state_changed", self._on_user_state)
        session.on("user_input_transcribed", self._on_transcript)
        if isinstance(session.llm, SpeculativeRealtimeModel):
            session.llm.on_reply_ready = self._on_reply_ready

    @property
    def listening_for_value(self) -> bool:
        """A number, a code, an email or a name the call has heard is being dictated, and its end decides
        the end of the turn."""
        if self.settings.dictation_hold_seconds <= 0:
            return False
        return self.asked in (Asked.PHONE, Asked.CODE, Asked.EMAIL) or (self.asked is Asked.SPELLING and bool(self.names))

    def pace_next_turn(self, agent_text: str) -> None:
        """Let a caller who dictates a phone number, an address or a spelling pause between groups
        without being answered mid-way (measured: every 600-900 ms pause was cut at 0.5 s).

        The agent's last words set the pace until it says something else. A transcript ends the turn
        early only when it shows the whole number, code, email or spelled name: a commit at a pause returns the
        transcript of the first groups while the caller is still dictating."""
        self.asked = asked_for(agent_text)
        self.names = names_heard(agent_text, list(self._recent)) if self.asked is Asked.SPELLING else frozenset()
        self.heard = Heard.PART
        self._parts = []
        self._said = []
        self._spoke_since_asked = False
        self.pause_words = None
        self._set_delay()

    def _set_delay(self) -> None:
        """The endpointing delays for the caller's next pause. An audio turn model (TURN_MODEL) may
        stretch the wait from the min to the max delay when it hears the caller unfinished; while a
        number, code, email or named spelling is dictated, both are the same delay, so its transcript
        alone decides (both models read a whole phone number as unfinished). An address or a spelling
        of a name not heard has no end to judge: there the model may stretch the 1.2 s dictation delay.
        Without a model, only the min counts."""
        s = self.settings
        if self.listening_for_value:
            delay = {
                Heard.PART: s.dictation_hold_seconds,
                Heard.WHOLE: s.min_endpointing_delay,
                Heard.OTHER: s.dictation_endpointing_delay,
            }[self.heard]
        elif self.asked is not None:
            delay = s.dictation_endpointing_delay
        elif self.pause_words == "awaited" and not self._reply_ready():
            # ending the turn before the reply can be heard brings it no sooner, and its words may yet come
            delay = max(self._usual_delay + WORDS_WAIT_S, s.unfinished_hold_seconds)
        elif self.pause_words == "awaited":
            delay = self._usual_delay + WORDS_WAIT_S
        elif self.pause_words == "unfinished":
            delay = max(self._usual_delay, s.unfinished_hold_seconds)
        else:
            delay = self._usual_delay
        longest = delay if self.listening_for_value else max(delay, s.max_endpointing_delay)
        now = self.session.options.endpointing
        if (delay, longest) != (now.get("min_delay"), now.get("max_delay")):
            self.session.update_options(endpointing_opts={"min_delay": delay, "max_delay": longest})

    @property
    def _usual_delay(self) -> float:
        """The silence that ends a turn that is not a dictated value: MIN_ENDPOINTING_DELAY, or this
        caller's own pauses once the agent has answered one of them."""
        return max(self.settings.min_endpointing_delay, self.patience)

    def _answered_mid_sentence(self, at: float) -> None:
        """The caller spoke again as the reply to their turn began (within BACKCHANNEL_AFTER_SECONDS of
        its first audio, the window in which a short sound is taken for their sentence going on): the
        reply came in a pause of theirs. Their next turns wait that pause plus a margin, up to
        CUT_OFF_PATIENCE_SECONDS. A caller who came back later than that would not have been spared by
        it, and a sound that soon after the reply's first audio is too quick to be a reaction to it."""
        if self._replies is None or self._speech_ended is None or self.asked is not None:
            return  # a dictated value's pauses have their own pacing
        answer = self._replies.answer(at)
        if answer is None or answer[1] >= self.settings.backchannel_after_seconds:
            return
        pause = at - self._speech_ended
        wanted = pause + PATIENCE_MARGIN_S
        if wanted > self.settings.cut_off_patience_seconds or wanted <= self._usual_delay:
            return
        self.patience = wanted
        log.info("answered %.0f ms into a %.0f ms pause of the caller's: their turns now end after %.0f ms",
                 answer[1] * 1000, pause * 1000, wanted * 1000)  # fmt: skip
        self._set_delay()

    @property
    def _paced_by_words(self) -> bool:
        """A turn that is not a dictated value, and whose pauses' words may hold it open."""
        return self.asked is None and self.settings.unfinished_hold_seconds > 0

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.old_state == "speaking" and ev.new_state == "listening":
            # the VAD says so once its silence has passed
            self._speech_ended = ev.created_at - self._vad_silence
        if ev.new_state == "speaking":
            self._answered_mid_sentence(ev.created_at)
            self._spoke_since_asked = True
            if self.pause_words is not None:
                self.pause_words = None
                self._set_delay()
        if ev.old_state == "speaking" and ev.new_state == "listening" and self._paced_by_words:
            # after the speculator's own call_soon (its handler is registered first, with the session):
            # a reply asked for at once commits the pause before the wait for its words begins
            asyncio.get_running_loop().call_soon(self._await_words)
            return
        if not (self.listening_for_value and self.heard is Heard.PART):
            return
        if ev.old_state != "speaking" or ev.new_state != "listening":
            return
        if self.session.agent_state in ("speaking", "thinking"):
            return
        live = live_session(self.session.llm)
        if live is not None:
            live.commit_heard()  # its transcript decides whether this pause ends the turn

    def _await_words(self) -> None:
        """Wait for the words of the pause that has just begun, once it is committed."""
        if self.session.user_state == "speaking" or not self._paced_by_words:
            return
        if self.session.agent_state in ("speaking", "thinking"):
            return  # the caller talked over the agent: backchannels and barge-in decide
        live = live_session(self.session.llm)
        if live is None:
            return
        if not getattr(live, "speculating", False):
            return  # no reply was asked for at this pause, so nothing of it is being transcribed
        self.pause_words = "awaited"
        self._set_delay()
        recheck_end_of_turn(self.session)

    def _reply_ready(self) -> bool:
        """Whether the reply asked for at this pause could be heard now (its first audio has come, or it
        is not under way)."""
        live = live_session(self.session.llm)
        return bool(getattr(live, "reply_ready", True))

    def _on_reply_ready(self) -> None:
        """The reply asked for at the pause can be heard now: a pause whose words have not come waits
        for them only WORDS_WAIT_S past the usual delay, and ends at once if that has passed."""
        if self.pause_words != "awaited" or self.session.user_state == "speaking":
            return
        self._set_delay()
        recheck_end_of_turn(self.session)

    def _before_the_pause(self, item_id: str | None) -> bool:
        """Whether a transcript is of audio committed before the caller's latest pause: a short pause's
        words may be transcribed after the caller has gone on and paused again, and then they say
        nothing of how the latest pause ends."""
        live = live_session(self.session.llm)
        if not item_id or live is None:
            return False
        said = [i.id for i in live.chat_ctx.items if i.type == "message" and i.role == "user"]
        return item_id in said and item_id != said[-1]

    def _callers_language(self) -> str:
        """The business's language the caller's recent words are in; its first when they do not say."""
        if len(self.languages) == 1:
            return self.languages[0]
        return guess_language(" ".join(self._recent), among=self.languages) or self.languages[0]

    def _on_transcript(self, ev: UserInputTranscribedEvent) -> None:
        if not ev.is_final or not ev.transcript.strip():
            return
        self._recent.append(ev.transcript.strip())
        self._said.append(ev.transcript.strip())
        if (
            self.pause_words is not None
            and self.session.user_state != "speaking"
            and not self._before_the_pause(ev.item_id)
        ):
            # the turn so far, not this pause's part alone: "Hi," then "yeah," has not begun to say anything
            so_far = " ".join(self._said)
            words = "unfinished" if sounds_unfinished(so_far, self._callers_language()) else "finished"
            if words != self.pause_words:
                self.pause_words = words
                log.debug("the caller's pause ends %s: %r", words, ev.transcript[-40:])
                self._set_delay()
                recheck_end_of_turn(self.session)
        if self.asked is Asked.SPELLING and not self._spoke_since_asked:
            # the turn before the question, transcribed after it: the name may be in it
            self.names |= names_heard("", [ev.transcript])
            self._set_delay()
            return
        if not self.listening_for_value:
            return
        self._parts.append(ev.transcript.strip())
        heard = judge(self.asked, " ".join(self._parts), self.region, self.names)  # type: ignore[arg-type]
        if heard is self.heard:
            return
        self.heard = heard
        log.debug("dictated %s heard %s after %d parts", self.asked, heard.value, len(self._parts))
        self._set_delay()
        recheck_end_of_turn(self.session)
