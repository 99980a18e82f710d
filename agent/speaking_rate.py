"""LiveKit's speaking-rate estimate of the agent's audio, computed once per sample instead of ten times.

LiveKit's transcript synchronizer paces the agent's words to its audio by a speaking rate: the mean
spectral flux of 25 ms frames over a 1 s window, re-estimated every 100 ms. Its stream computes every
window afresh, so each frame's spectrum is taken ten times, in a Python loop of one FFT per frame: about
6% of the job processes' CPU in a profiled burst of calls. Here the frames of the stream are one grid (a window starts
every 100 ms, a whole number of 12.5 ms hops), so each spectrum and each flux is computed once, all of a
chunk's frames in one FFT, and a window's rate is the mean of the fluxes inside it. Same events, same
values (tests/agent/test_speaking_rate.py holds them against LiveKit's own stream).

Only what the synchronizer uses is supported: mono or downmixed input at its own sample rate."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import numpy as np
from livekit import rtc
from livekit.agents.utils import aio

from agent.livekit_internals import SpeakingRateEvent, use_speaking_rate_detector

log = logging.getLogger("receptionist.speaking_rate")

WINDOW_S = 1.0  # as LiveKit's SpeakingRateDetector defaults
STEP_S = 0.1
FRAME_S = 0.025
SILENCE_RMS = 0.005
_INT16_MAX = float(np.iinfo(np.int16).max)


class SpeakingRateDetector:
    """Drop-in for livekit.agents' SpeakingRateDetector as the transcript synchronizer builds it."""

    def __init__(self, *, window_size: float = WINDOW_S, step_size: float = STEP_S, sample_rate: int | None = None):
        if (window_size, step_size, sample_rate) != (WINDOW_S, STEP_S, None):
            raise ValueError("only LiveKit's defaults are supported: a 1 s window, 0.1 s steps, the input's rate")

    def stream(self) -> SpeakingRateStream:
        return SpeakingRateStream()


def install() -> None:
    """Every session built from now on in this process paces its transcript with this estimate."""
    use_speaking_rate_detector(SpeakingRateDetector)


class _Flush:
    pass


class SpeakingRateStream:
    """One segment's audio in, SpeakingRateEvents out, as LiveKit's stream."""

    def __init__(self) -> None:
        self._input_ch = aio.Chan[rtc.AudioFrame | _Flush]()
        self._event_ch = aio.Chan[SpeakingRateEvent]()
        self._task = asyncio.create_task(self._main_task())
        self._task.add_done_callback(lambda _: self._event_ch.close())

    def push_frame(self, frame: rtc.AudioFrame) -> None:
        self._input_ch.send_nowait(frame)

    def flush(self) -> None:
        self._input_ch.send_nowait(_Flush())

    def end_input(self) -> None:
        self.flush()
        self._input_ch.close()

    async def aclose(self) -> None:
        self._input_ch.close()
        await aio.cancel_and_wait(self._task)
        self._event_ch.close()

    def __aiter__(self) -> AsyncIterator[SpeakingRateEvent]:
        return self._event_ch

    async def _main_task(self) -> None:
        try:
            rates = _Rates()
            async for item in self._input_ch:
                if isinstance(item, _Flush):
                    for ev in rates.flush():
                        self._event_ch.send_nowait(ev)
                    continue
                if not rates.rate:
                    rates.start(item.sample_rate)
                elif item.sample_rate != rates.rate:
                    log.error("a frame with different sample rate was pushed", extra={"sample_rate": item.sample_rate})
                    continue
                for ev in rates.push(_mono(item)):
                    self._event_ch.send_nowait(ev)
        except Exception:
            log.exception("speaking rate estimate failed")


def _mono(frame: rtc.AudioFrame) -> np.ndarray:
    data = np.frombuffer(frame.data, dtype=np.int16)
    if frame.num_channels > 1:
        data = data.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
    return data.astype(np.float32) / np.float32(_INT16_MAX)


class _Rates:
    """The windows of one stream: samples since the current window's start, each 25 ms frame's
    spectrum and its flux against the one before, kept until no window needs them."""

    rate = 0  # the input's, from its first frame (start)

    def start(self, rate: int) -> None:
        self.rate = rate
        self.window = int(WINDOW_S * rate)
        self.step = int(STEP_S * rate)
        self.frame = int(rate * FRAME_S)
        self.hop = self.frame // 2
        w = np.hanning(self.frame)
        self.win = w * (1.0 / np.sqrt(np.sum(w**2)))
        self.samples = np.empty(0, dtype=np.float32)  # from the current window's start
        self.mags: np.ndarray | None = None  # spectra of the frames that start in `samples`, in order
        self.timestamp = WINDOW_S / 2
        self.aligned = self.step % self.hop == 0

    def push(self, data: np.ndarray) -> list[SpeakingRateEvent]:
        self.samples = np.concatenate([self.samples, data])
        out = []
        while len(self.samples) >= self.window:
            sr = self._window_rate(self.samples[: self.window])
            out.append(SpeakingRateEvent(timestamp=self.timestamp, speaking=sr > 0, speaking_rate=sr))
            self.timestamp += STEP_S
            self._advance(self.step)
        return out

    def flush(self) -> list[SpeakingRateEvent]:
        out = []
        if len(self.samples) > self.window * 0.5:
            sr = _silent_or(self.samples, lambda: _flux_mean(self._spectra(self.samples, len(self.samples))))
            self.timestamp += len(self.samples) / self.rate
            out.append(SpeakingRateEvent(timestamp=self.timestamp, speaking=sr > 0, speaking_rate=sr))
        self.samples = self.samples[:0]
        self.mags = None
        return out

    def _window_rate(self, audio: np.ndarray) -> float:
        return _silent_or(audio, lambda: _flux_mean(self._spectra(audio, self.window)))

    def _spectra(self, audio: np.ndarray, length: int) -> np.ndarray:
        """The magnitude spectra of the frames in audio[:length] on the hop grid, reusing those known."""
        n = (length - self.frame) // self.hop + 1
        if n <= 0:
            return np.zeros((0, self.frame // 2 + 1))
        have = 0 if self.mags is None or not self.aligned else min(len(self.mags), n)
        if have < n:
            starts = np.arange(have, n) * self.hop
            idx = starts[:, None] + np.arange(self.frame)[None, :]
            new = np.abs(np.fft.rfft(audio[idx].astype(np.float64) * self.win, axis=1))
            self.mags = new if have == 0 else np.concatenate([self.mags[:have], new])  # type: ignore[index]
        return self.mags[:n]  # type: ignore[index]

    def _advance(self, step: int) -> None:
        self.samples = self.samples[step:]
        if self.mags is not None and self.aligned:
            self.mags = self.mags[step // self.hop :]
        else:
            self.mags = None


def _flux_mean(mags: np.ndarray) -> float:
    if len(mags) < 2:
        return 0.0
    return float(np.mean(np.sum(np.abs(np.diff(mags, axis=0)), axis=1)))


def _silent_or(audio: np.ndarray, rate) -> float:  # noqa: ANN001
    """LiveKit's silence rule: the window, or its last 30%, too quiet to be speech, has no rate."""
    sq = audio.astype(np.float32) ** 2
    if np.sqrt(np.mean(sq)) < SILENCE_RMS:
        return 0.0
    tail = sq[int(len(sq) * 0.7) :]
    if len(tail) > 0 and np.sqrt(np.mean(tail)) < SILENCE_RMS * 0.5:
        return 0.0
    return rate()
