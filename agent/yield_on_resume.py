"""Yield on resume: a caller who speaks again just after the agent began its reply had not finished
their turn. The agent stops at once, its reply leaves the conversation (the model's copy too), and the
model answers the whole turn: what the caller said before the reply and what they went on to say.

Left to LiveKit's barge-in, the reply plays on until MIN_INTERRUPTION_DURATION of caller speech has
been heard (a short "oh" never stops it), is then paused, and at the end of the caller's turn is
truncated to what was heard and kept: the model answers "five oh three, five five five" + its own cut
"Thanks, I have" + "oh one eight seven" rather than the number. Inside YIELD_WINDOW seconds of the
reply's first audio, the first sound the VAD hears is enough; after it, the usual barge-in applies.
Only replies to a caller's turn yield, and only before they call a tool: the greeting, a correction
or a check on a quiet caller are the agent's own (their start is not the caller's turn going on), and
a reply that has begun to act is not taken back.
"""

from __future__ import annotations

import logging
from typing import Any

from livekit.agents import AgentSession, llm
from livekit.agents.voice import SpeechHandle
from livekit.agents.voice.events import ConversationItemAddedEvent, UserStateChangedEvent

from agent.audible_reply import AudibleReply
from agent.livekit_internals import forget_chat_item
from agent.model_link import live_session

log = logging.getLogger("receptionist.yield")


class ReplyYield:
    """Stops a reply the caller talks into within `window` seconds of its first audio, and drops it
    from the conversation, so the caller's next end of turn is answered with their whole turn."""

    def __init__(self, session: AgentSession[Any], *, window: float) -> None:
        self.session = session
        self.window = window
        self.yielded = 0  # replies stopped this call
        self.replies = AudibleReply(session)
        self._dropping: SpeechHandle | None = None
        self._dropped: set[str] = set()  # ids of the messages of stopped replies
        session.on("user_state_changed", self._on_user_state)
        session.on("conversation_item_added", self._on_item)

    def dropped(self, item: llm.ChatItem) -> bool:
        """Was this message part of a reply the caller cut off as it began (and the model forgot)?"""
        return item.id in self._dropped or self._of_stopped_reply(item)

    def _of_stopped_reply(self, item: llm.ChatItem) -> bool:
        speech = self._dropping
        return speech is not None and any(i.id == item.id for i in speech.chat_items)

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        heard = self.replies.answer(ev.created_at) if ev.new_state == "speaking" else None
        if heard is None:
            return
        speech, after_s = heard
        if speech.interrupted or not speech.allow_interruptions or after_s > self.window:
            return
        if any(isinstance(item, llm.FunctionCall) for item in speech.chat_items):
            return  # it has begun acting (a booking, a transfer): not taken back, the usual barge-in
        self._stop(speech, after_s)

    def _stop(self, speech: SpeechHandle, after_s: float) -> None:
        live = live_session(self.session.llm)
        if live is not None:
            live.dropping_reply = True  # its truncation becomes a deletion
        self._dropping = speech
        self.yielded += 1
        log.info("caller resumed %.0f ms into the reply: stopped, dropped, the whole turn answered next",
                 after_s * 1000)  # fmt: skip
        speech.interrupt()
        speech.add_done_callback(self._stopped)

    def _stopped(self, speech: SpeechHandle) -> None:
        live = live_session(self.session.llm)
        if live is not None:
            live.dropping_reply = False
        if self._dropping is speech:
            self._dropping = None

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        # LiveKit adds what the caller heard of the stopped reply to the agent's conversation; the
        # model's copy is already deleted, so this one goes too
        item = ev.item
        if not self._of_stopped_reply(item):
            return
        self._dropped.add(item.id)
        forget_chat_item(self.session.current_agent, item.id)
