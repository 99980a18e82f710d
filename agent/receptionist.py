"""The receptionist itself: the brain rendered into instructions, the business tools, and a greeting
that says up front it is an AI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterable
from typing import Any

from livekit import rtc
from livekit.agents import Agent, ModelSettings, llm
from livekit.agents.voice import SpeechHandle
from livekit.agents.voice.io import PlaybackFinishedEvent

from agent.brain import Brain, BrainDirectory, greeting_instructions, render_instructions
from agent.flows.appointments import manage_appointment
from agent.flows.booking import start_booking
from agent.kept_greeting import GreetingTake, KeptLine, LineShelf, greeting_cut_short
from agent.playout_guard import GuardedVoice
from agent.tools import common_tools
from agent.tools.call_control import end_call
from agent.tools.leads import take_message

LINE_READY_TIMEOUT_S = 30.0
log = logging.getLogger("receptionist.greeting")


async def _line_ready(agent: Agent) -> None:
    """Wait until the caller's leg is up; bounded, because the session cannot close while on_enter runs."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(agent.session.userdata.line_ready.wait(), LINE_READY_TIMEOUT_S)


def receptionist_tools(brain: Brain) -> list[Any]:
    """What the receptionist offers before any flow starts: the facts, a message, a person, goodbye,
    and the ways into the flows."""
    return [*common_tools(brain), start_booking, manage_appointment]


class Receptionist(GuardedVoice):
    def __init__(self, brain: Brain, greeting: LineShelf | None = None) -> None:
        # rendered once per call: the prompt stays byte-stable, volatile facts come through tools
        super().__init__(instructions=render_instructions(brain), tools=receptionist_tools(brain))
        self.brain = brain
        self.greeting = greeting  # where the model's audio of the greeting is kept (agent/kept_greeting.py)
        self._take: GreetingTake | None = None
        self._greeting_speech: SpeechHandle | None = None
        self._keeping: asyncio.Task[None] | None = None

    async def on_enter(self) -> None:
        # greet only once the caller can hear it, in the model's voice: its own audio of the greeting
        # when a call before this one kept it, else through the model (and kept, when whole)
        kept = await self.greeting.find() if self.greeting is not None else None
        await _line_ready(self)
        if kept is not None:
            self._keeping = asyncio.create_task(self._play_kept(kept))
            return
        link = getattr(self.session.llm, "link", None)
        faults = (link.late_replies, link.reconnects) if link is not None else None
        handle = self.session.generate_reply(instructions=greeting_instructions(self.brain))
        if self.greeting is not None:
            self._take, self._greeting_speech = GreetingTake(), handle
            self._keeping = asyncio.create_task(self._keep(self.greeting, handle, self._take, faults))

    async def _play_kept(self, kept: KeptLine) -> None:
        """The kept greeting, played without the model, and recorded as the agent's first turn.

        It is not put in the model's conversation: an assistant message given as text can turn the
        Realtime model to answering in text, which the caller never hears (openai/openai-realtime-api-
        beta#72, livekit/agents#2471). The instructions say every call opens with the greeting; a
        caller who talked over it is named in them, with what they heard."""
        audio = self.session.output.audio
        finished: asyncio.Future[PlaybackFinishedEvent | None] = asyncio.get_running_loop().create_future()

        def on_finished(ev: PlaybackFinishedEvent) -> None:
            if not finished.done():
                finished.set_result(ev)

        if audio is not None:
            audio.on("playback_finished", on_finished)
        started = time.time()
        try:
            handle = self.session.say(kept.text, audio=kept.frames(), add_to_chat_ctx=False)
            # its end as the caller heard it: a caller who talks over it stops the audio at once, and
            # is a turn before the speech itself is done (which waits on their turn to end)
            handle.add_done_callback(lambda _: finished.done() or finished.set_result(None))
            ev = await finished
        except RuntimeError:  # the session is closing: the caller has gone
            return
        finally:
            if audio is not None:
                audio.off("playback_finished", on_finished)
        cut = ev.interrupted if ev is not None else handle.interrupted
        heard = kept.text
        if cut:
            heard = (ev.synchronized_transcript if ev is not None and ev.synchronized_transcript is not None
                     else kept.words_in(ev.playback_position if ev is not None else 0.0))  # fmt: skip
        self.session.userdata.record_turn(role="agent", text=heard, started_at=started, ended_at=time.time(),
                                          interrupted=cut)  # fmt: skip
        if cut:
            await self.update_instructions(self.instructions + "\n\n" + greeting_cut_short(heard))

    def realtime_audio_output_node(
        self, audio: AsyncIterable[rtc.AudioFrame], model_settings: ModelSettings
    ) -> Any:
        take = self._take
        if take is not None and not take.started and self.session.current_speech is self._greeting_speech:
            audio = take.tee(audio)
        return super().realtime_audio_output_node(audio, model_settings)

    async def _keep(
        self, shelf: LineShelf, handle: SpeechHandle, take: GreetingTake, faults: tuple[int, int] | None
    ) -> None:
        """Once the model's greeting has been heard: keep its audio if it was heard whole, and all of it
        was the model's (no hold line played into it for a late first audio, no reconnect cutting it)."""
        await handle.wait_for_playout()
        self._take = None
        said = " ".join(m.text_content or "" for m in handle.chat_items
                        if isinstance(m, llm.ChatMessage) and m.role == "assistant")  # fmt: skip
        if handle.interrupted or not take.whole or not take.frames:
            return
        link = getattr(self.session.llm, "link", None)
        if link is not None and faults != (link.late_replies, link.reconnects):
            log.info("the greeting's audio had a hold line or a reconnect in it; not kept")
            return
        await shelf.keep(said, take.frames)


class RepeatCaller(Agent):
    """Answers a number that is over its hourly call limit: one polite sentence, then hang up."""

    def __init__(self, brain: Brain) -> None:
        super().__init__(instructions=render_instructions(brain), tools=[])
        self.brain = brain

    async def on_enter(self) -> None:
        await _line_ready(self)
        self.session.userdata.hang_up_after_reply = "rate_limited"
        self.session.generate_reply(
            instructions=(
                f"Say you are the AI assistant for {self.brain.business.name}, that this number has called "
                "many times in the last hour so you can't take another call from it right now, and ask "
                "them to call back later. Then say goodbye."
            ),
            tool_choice="none",
        )


UNKNOWN_NUMBER_INSTRUCTIONS = """You are an AI phone assistant answering a number that is not set up
for any business yet. Say up front that you are an AI assistant, apologise that you can't help with
bookings or questions on this line, and offer to take a message with the caller's name, number and
what they need (take_message). Never invent a business name, hours, prices or services.
Keep sentences short; then say goodbye and end the call (end_call)."""


class UnknownNumber(Agent):
    """Answers a dialed number no brain claims: never a crash, always a message taken."""

    def __init__(self) -> None:
        super().__init__(instructions=UNKNOWN_NUMBER_INSTRUCTIONS, tools=[take_message, end_call])

    async def on_enter(self) -> None:
        await _line_ready(self)
        self.session.generate_reply(
            instructions="Greet the caller: say you are an AI assistant, and offer to take a message."
        )


def brain_for_call(
    brains: BrainDirectory, dialed: str | None, business_id: str | None = None
) -> tuple[Brain, bool]:
    """The brain answering this call, and whether it is a configured business.

    The dialed number decides; the dispatch rule's business id (sip.provision) is the fallback, then
    the only brain there is. A number nobody claims gets the stand-in brain: it takes a message.
    """
    brain = brains.for_number(dialed) or brains.by_business_id(business_id) or brains.default
    if brain is None:
        return brains.unknown_number_brain(), False
    return brain, True
