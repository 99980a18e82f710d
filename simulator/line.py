"""A simulated phone line for offline calls: the caller's microphone and ear as AgentSession audio I/O,
paced in real time, plus a PhoneLine that records hang-ups and transfers instead of sending SIP."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np
from livekit import rtc
from livekit.agents.voice import io

from agent.call import TransferFailed
from simulator.speech import VOICE_RMS, rms


class CallerMicrophone(io.AudioInput):
    """Feeds the session what the caller says, 20 ms at a time in real time (silence in between), as a
    phone line would: frames never stop while the call is up."""

    def __init__(self, *, sample_rate: int = 48000, frame_ms: int = 20, background: bytes = b"") -> None:
        super().__init__(label="caller-microphone")
        self.sample_rate = sample_rate
        self.frame_bytes = sample_rate * frame_ms // 1000 * 2
        self.frame_s = frame_ms / 1000
        # the line's own sound (a car, a café), PCM16 at `sample_rate`, looped under everything sent
        self._background = np.frombuffer(background[: len(background) - len(background) % 2], dtype=np.int16)
        self._background_at = 0
        self._pending = bytearray()
        self._utterances: deque[tuple[int, asyncio.Future[tuple[float, float]]]] = deque()
        self._sent = 0  # bytes of caller speech already sent from the current utterance
        self._speech_started: float | None = None
        self._next_due: float | None = None
        self._closed = False

    def say(self, pcm: bytes) -> asyncio.Future[tuple[float, float]]:
        """Queue an utterance (PCM16 mono at `sample_rate`); resolves to its (start, end) monotonic times."""
        fut: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        pcm = pcm[: len(pcm) - len(pcm) % 2]
        self._utterances.append((len(pcm), fut))
        self._pending.extend(pcm)
        return fut

    def stop_talking(self) -> None:
        """The caller stops mid-sentence (e.g. hangs up): drop what was not said yet."""
        self._pending.clear()
        now = time.monotonic()
        while self._utterances:
            _, fut = self._utterances.popleft()
            if not fut.done():
                fut.set_result((self._speech_started or now, now))
        self._sent = 0
        self._speech_started = None

    def close(self) -> None:
        self._closed = True

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        now = time.monotonic()
        if self._next_due is None:
            self._next_due = now
        if self._next_due > now:
            await asyncio.sleep(self._next_due - now)
        self._next_due += self.frame_s
        chunk = bytes(self._pending[: self.frame_bytes])
        del self._pending[: self.frame_bytes]
        if chunk and self._utterances:
            if self._speech_started is None:
                self._speech_started = time.monotonic()
            self._sent += len(chunk)
            length, fut = self._utterances[0]
            if self._sent >= length:
                self._utterances.popleft()
                self._sent -= length
                if not fut.done():
                    fut.set_result((self._speech_started, time.monotonic()))
                self._speech_started = time.monotonic() if self._sent else None
        if len(chunk) < self.frame_bytes:
            chunk += bytes(self.frame_bytes - len(chunk))
        samples = self.frame_bytes // 2
        if self._background.size:
            chunk = self._under(chunk, samples)
        return rtc.AudioFrame(chunk, self.sample_rate, 1, samples)

    def _under(self, chunk: bytes, samples: int) -> bytes:
        """The frame with the next stretch of the background added under it."""
        bed = np.take(self._background, np.arange(self._background_at, self._background_at + samples), mode="wrap")
        self._background_at = (self._background_at + samples) % self._background.size
        mixed = np.frombuffer(chunk, dtype=np.int16).astype(np.int32) + bed
        return np.clip(mixed, -32768, 32767).astype(np.int16).tobytes()


@dataclass
class HeardSegment:
    """One stretch of agent audio as the caller heard it."""

    started: float  # monotonic time the first frame played
    ended: float | None = None
    played_s: float = 0.0
    interrupted: bool = False
    first_voice: float | None = None  # first frame above VOICE_RMS
    stops: list[float] = field(default_factory=list)  # when it fell silent: each pause, and the end

    def stopped_after(self, t: float) -> float | None:
        return next((s for s in self.stops if s >= t), None)


class CallerEar(io.AudioOutput):
    """Plays the agent's audio to the simulated caller in real time and remembers what was heard when."""

    def __init__(self) -> None:
        super().__init__(
            label="caller-ear", capabilities=io.AudioOutputCapabilities(pause=True), sample_rate=None
        )
        self.segments: list[HeardSegment] = []
        self.audio = bytearray()  # everything heard, 24 kHz PCM16 (for saving / inspection)
        self._frames: deque[rtc.AudioFrame] = deque()
        self._flushed = False
        self._open = False  # a segment was captured and has not been reported finished
        self._playing = asyncio.Event()
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._current: HeardSegment | None = None
        self.on_first_voice: Callable[[HeardSegment], None] | None = None

    @property
    def speaking(self) -> bool:
        return self._open

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._open:
            self._open = True
            self._flushed = False
        self._frames.append(frame)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._play())

    def flush(self) -> None:
        super().flush()
        self._flushed = True
        self._wake.set()

    def clear_buffer(self) -> None:
        self._frames.clear()
        if self._open:
            self._finish(interrupted=True)

    def pause(self) -> None:
        super().pause()
        self._resumed.clear()
        if self._current is not None:
            self._current.stops.append(time.monotonic())

    def resume(self) -> None:
        super().resume()
        self._resumed.set()

    def _finish(self, *, interrupted: bool) -> None:
        seg = self._current
        position = seg.played_s if seg else 0.0
        if seg is not None:
            seg.ended = time.monotonic()
            seg.interrupted = interrupted
            if not self._resumed.is_set() and seg.stops:
                pass  # already silent since the pause
            else:
                seg.stops.append(seg.ended)
        self._current = None
        self._open = False
        self._flushed = False
        self.on_playback_finished(playback_position=position, interrupted=interrupted)

    async def _play(self) -> None:
        next_due = time.monotonic()
        while self._open:
            await self._resumed.wait()
            if not self._frames:
                if self._flushed:
                    self._finish(interrupted=False)
                    return
                self._wake.clear()
                await self._wake.wait()
                next_due = max(next_due, time.monotonic())
                continue
            frame = self._frames.popleft()
            now = time.monotonic()
            if self._current is None:
                self._current = HeardSegment(started=now)
                self.segments.append(self._current)
                self.on_playback_started(created_at=time.time())
            pcm = bytes(frame.data)
            self.audio.extend(pcm)
            if self._current.first_voice is None and rms(pcm) > VOICE_RMS:
                self._current.first_voice = now
                if self.on_first_voice is not None:
                    self.on_first_voice(self._current)
            next_due = max(next_due, now) + frame.duration
            await asyncio.sleep(max(0.0, next_due - time.monotonic()))
            if self._current is not None:
                self._current.played_s += frame.duration


@dataclass
class SimulatedLine:
    """PhoneLine for offline calls: a hang-up or transfer is recorded and ends the session."""

    transfer_accepts: bool = True
    on_end: Callable[[str], Awaitable[None]] | None = None
    actions: list[tuple[str, str]] = field(default_factory=list)  # ("hang_up", reason) / ("transfer", dest)

    async def hang_up(self, reason: str) -> None:
        self.actions.append(("hang_up", reason))
        if self.on_end is not None:
            await self.on_end("agent")

    async def transfer(self, destination: str) -> None:
        self.actions.append(("transfer", destination))
        if not self.transfer_accepts:
            raise TransferFailed("the destination declined the transfer (SIP 486 Busy Here)")
        if self.on_end is not None:
            await self.on_end("transfer")
