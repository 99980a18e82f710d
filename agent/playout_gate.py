"""One agent message's audio on its way from the model to the playout, with a gate the grounding
guard works: the model streams audio faster than it plays, so the gate knows where each sentence
starts in it before that sentence is heard, can hold the start of a sentence whose words are still
arriving, and never passes audio beyond a point the guard has cut at."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice.events import AgentStateChangedEvent

# The longest silence the gate may put before a sentence whose words are still arriving when its
# audio is due. After a one-word opener ("Sure.") the words that make the next sentence false arrive
# while it starts to play (audio streams ~4x faster than it plays, so a sentence's text is complete
# once three times its opener has played): "Okay. Water heater installation is around $500." needs
# 0.38 s. A pause of up to half a second between two sentences is an ordinary one in speech. A
# sentence whose words arrived in time (every one after the first second or so of a reply), or whose
# words so far make no claim the guard judges (`may_claim`), is not held.
HOLD_MAX_S = 0.5
# how long audio stopped at a cut waits for the guard's interrupt after the model's audio has ended
STOPPED_WAIT_S = 10.0


def _ms(frame: rtc.AudioFrame) -> float:
    return frame.samples_per_channel * 1000 / frame.sample_rate


def _split(frame: rtc.AudioFrame, at_ms: float) -> tuple[rtc.AudioFrame | None, rtc.AudioFrame | None]:
    """`frame` cut `at_ms` into it: the part before and the part from there (None when empty)."""
    cut = max(0, min(frame.samples_per_channel, round(at_ms * frame.sample_rate / 1000)))
    data = frame.data.cast("B")
    width = len(data) // frame.samples_per_channel

    def part(start: int, end: int) -> rtc.AudioFrame | None:
        if end <= start:
            return None
        return rtc.AudioFrame(bytes(data[start * width : end * width]), frame.sample_rate, frame.num_channels, end - start)

    return part(0, cut), part(cut, frame.samples_per_channel)


class PlayoutGate:
    """Counts the message's audio as it arrives (`received_ms`: where a sentence starts is where the
    audio stood when its first word arrived, as the model sends a word with its audio), holds the
    start of a sentence still arriving (`hold_at`) for up to HOLD_MAX_S past when it would
    have played, and passes nothing past `stop_at`. The playout runs in real time from its first
    frame: when the agent's state turns to speaking (`session`'s event) once frames have been passed
    on, as the frames take a while to get there (resampling, 50 ms frames); without a session, or
    when the agent is already speaking, at the first frame passed on."""

    def __init__(
        self, session: AgentSession[Any] | None = None, on_hold: Callable[[float], None] | None = None
    ) -> None:
        self.received_ms = 0.0
        self._on_hold = on_hold  # given each hold's silence, in seconds
        self.held_s = 0.0  # the silence the holds put into this message's playout so far
        self._session = session
        self._passed_on = False
        self._playing_since: float | None = None
        self._open_at: float | None = None  # where the sentence whose words are still arriving starts
        self._stop_ms: float | None = None
        self._changed = asyncio.Event()

    def hold_at(self, starts_at_ms: float | None) -> None:
        """Hold the audio where the sentence whose words are still arriving starts, until this is
        called again with None (its words are in, or none of them could make it false)."""
        self._open_at = starts_at_ms
        self._changed.set()

    def stop_at(self, ms: float) -> None:
        """Nothing of the message from `ms` on is played."""
        self._stop_ms = ms if self._stop_ms is None else min(ms, self._stop_ms)
        self._changed.set()

    def plays_at(self, ms: float) -> float | None:
        """When (time.monotonic) the audio `ms` into the message plays, or None before any has."""
        since = self._playing_since
        return None if since is None else since + self.held_s + ms / 1000

    async def pass_on(self, audio: AsyncIterable[rtc.AudioFrame]) -> AsyncIterator[rtc.AudioFrame]:
        arrived: asyncio.Queue[rtc.AudioFrame | None] = asyncio.Queue()

        async def receive() -> None:
            try:
                async for frame in audio:
                    self.received_ms += _ms(frame)
                    arrived.put_nowait(frame)
            finally:
                arrived.put_nowait(None)

        def on_state(ev: AgentStateChangedEvent) -> None:
            if ev.new_state == "speaking" and self._passed_on and self._playing_since is None:
                self._playing_since = time.monotonic()

        if self._session is not None:
            self._session.on("agent_state_changed", on_state)
        receiving = asyncio.create_task(receive())
        sent = 0.0
        held: set[float] = set()
        try:
            while (frame := await arrived.get()) is not None:
                while frame is not None:
                    end = sent + _ms(frame)
                    stop, hold = self._stop_ms, self._open_at
                    if stop is not None and end > stop:
                        head, _ = _split(frame, stop - sent)
                        if head is not None:
                            self._passing_on()
                            yield head
                        # the guard interrupts the message once what came before has played; ending the
                        # audio sooner would let it finish as if whole
                        await receiving
                        await asyncio.sleep(STOPPED_WAIT_S)
                        return
                    if hold is not None and hold > 0 and sent <= hold < end and hold not in held:
                        head, frame = _split(frame, hold - sent)
                        if head is not None:
                            self._passing_on()
                            yield head
                        sent = hold
                        held.add(hold)
                        await self._hold(hold)
                        continue
                    self._passing_on()
                    yield frame
                    sent, frame = end, None
        finally:
            if self._session is not None:
                self._session.off("agent_state_changed", on_state)
            receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await receiving

    def _passing_on(self) -> None:
        if not self._passed_on and (self._session is None or self._session.agent_state == "speaking"):
            self._playing_since = time.monotonic()  # no state change to wait for
        self._passed_on = True

    async def _hold(self, at_ms: float) -> None:
        """Hold the audio at `at_ms`, where a sentence still arriving starts, until its words are all in
        or the guard cut it, for at most HOLD_MAX_S past when it would have played."""
        while self._open_at == at_ms and self._stop_ms is None:
            due = self.plays_at(at_ms)
            wait = 0.02 if due is None else due + HOLD_MAX_S - time.monotonic()
            if wait <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)
        due = self.plays_at(at_ms)
        if due is not None:
            pause = max(0.0, time.monotonic() - due)
            self.held_s += pause
            if self._on_hold is not None:
                self._on_hold(pause)
