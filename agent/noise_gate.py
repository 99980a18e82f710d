"""The caller's VAD hears only sound well above the line's own background: a café, an open office or a
TV behind the caller is speech to Silero (it takes background voices for speech at any activation
threshold, measured on babble 10-20 dB below the caller), so without this the agent is paused by the
room and, while the babble lasts, never hears the caller's turn end.

The background is the 25th percentile of the caller's 20 ms frame levels over the last 3 s; a frame
less than NOISE_GATE_DB above it reaches the VAD as silence, unless it comes within HANGOVER_S of the
caller's voice above it. The caller's voice, nearer the microphone, has its vowels well above it, but on a line with
car noise or hiss 15-20 dB under the caller the softer half of their speech is not (the gate's
threshold is then about their average level): without the hangover the VAD heard a sentence as
scattered vowels, and a 0.2 s pause between words as one long enough to end the turn (18 of 20 open
sentences cut, against 10 on a quiet line). Over car noise, where the caller's voice clears that
threshold only a frame or two at a time, even the hangover left 15-17 of 20 cut; but a steady noise (car,
hiss, a fan, continuous music) is no speech to Silero, which hears it with the gate off as on a quiet
line. So the gate stands aside while the line's background is steady, its quieter frames within
STEADY_DB of each other, and gates only an uneven one: voices, a TV, a clatter. Over a steady noise
Silero still misses the caller's soft sounds however loud they are (a spelled "u" after a pause), so
there, as the caller goes on after a pause, a stretch of the line NOISE_GATE_DB above the noise is
their voice, whatever Silero makes of it (VOICE_OVER_STEADY_NOISE_P). Only what the VAD hears changes: the model receives the caller's
audio untouched. The VAD object that applies it is made in agent/livekit_internals.py (`own_vad`).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
from livekit import rtc

BACKGROUND_WINDOW_S = 3.0  # a background that starts mid-call is learnt within it; a caller talking on keeps pauses in it
BACKGROUND_PERCENTILE = 25.0  # the 10th let espeak babble's quiet moments set it, and babble through
ABOVE_BACKGROUND_WEIGHT = 8
QUIETEST_BACKGROUND_RMS = 10.0  # about -70 dBFS: a silent line's floor (a higher one delayed speech onsets)
# the caller's speech between two loud frames: syllables come 4-5 a second, so a word's softer sounds
# and the gaps between words fall within it, and a pause longer than it still reaches the VAD as silence
HANGOVER_S = 0.25
# ... once the line's background has been heard this long: at a call's first moment every frame is above
# a background not yet learnt, and a café's first 0.16 s, held open, interrupted the greeting. (Opening
# it only after 40 ms of loud frames as well undid most of what it does over car noise, where the
# caller's voice clears the threshold a frame or two at a time: 18 of 20 open sentences cut again.)
LEARNT_S = 0.2
# A background whose 25th percentile of levels is within this of its 5th is steady. Measured over 3 s
# windows through the phone channel, caller speech included: car noise 15 dB and hiss 20 dB under the
# caller 0.3-1.8 dB, hold music 0.3-1.6, background voices 20 dB and 10 dB under 3.3 and above.
STEADY_DB = 2.5
STEADY_LOW_PERCENTILE = 5.0
# ... judged on at least this much of the line: a café's first fraction of a second can look steady
STEADY_LEARNT_S = 1.0
_STEADY_RATIO = 10 ** (STEADY_DB / 20)
# Over a steady noise a caller's soft sound is no speech to Silero however loud it is: a spelled "u"
# after a pause, 25 dB above hiss 20 dB under the caller, scored 0.06-0.2, and the VAD heard the pause
# go on to the next letter (0.7 s longer: past the 3 s a dictated code's pause may last). There, a
# window of the caller's line NOISE_GATE_DB above the background is speech at this probability, the
# noise itself never being that far above its own level. Only on a noise the caller has to talk over:
# a quiet line's floor (comfort noise, a room) is under NOISY_LINE_RMS, and there a breath or a click
# NOISE_GATE_DB above it is still Silero's to judge.
VOICE_OVER_STEADY_NOISE_P = 0.6
NOISY_LINE_RMS = 100.0  # about -50 dBFS; car noise and hiss 15-20 dB under a caller at -20 dBFS: -34 to -39
# ... and only as the caller goes on: within this long (a dictated code's longest pause, the dictation
# hold) of Silero itself hearing their voice. A cough or a bump is as loud as a voice over the noise:
# read at any time, coughs over hiss paused the agent's replies 13 times a minute (bench.barge_in).
RESUME_S = 3.0
MARKS_KEPT = 1000  # 10-20 s of frames
_FLUSHED = (0.0, False)  # a mark of its own: where the stream was flushed


class LineBackground:
    """Tracks the level of one caller's line and tells a frame above its background from one in it."""

    def __init__(self, margin_db: float) -> None:
        self.ratio = 10 ** (margin_db / 20)
        # the last window's frame levels, a ring: `_count` of them so far, the next one at `_next`
        self._levels: np.ndarray | None = None
        self._count = 0
        self._next = 0
        self._above = 0  # frames above the background so far
        self._hangover = 0.0  # seconds of frames still passed after the last one above the background
        self._learnt_for = 0.0  # seconds of the line's background heard so far
        self.steady = False  # the background as of the last frame: steady noise, or a quiet line's floor?
        self.level = QUIETEST_BACKGROUND_RMS  # the background's level as of the last frame (RMS, int16 units)
        # each frame heard, (seconds, the caller's voice above a steady noise?), until Silero's loop reads
        # it (voice_over_steady_noise); bounded, should the loop ever stop reading
        self._marks: deque[tuple[float, bool]] = deque(maxlen=MARKS_KEPT)
        self._into_mark = 0.0  # seconds of the oldest mark already read
        self._read_s = 0.0  # seconds of the line read back so far
        self._voice_read_at = -math.inf  # ... when Silero last heard the caller's voice in it

    def audible(self, pcm: np.ndarray, duration_s: float) -> bool:
        rms = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64)))) if pcm.size else 0.0
        if self._levels is None:
            self._levels = np.empty(max(1, round(BACKGROUND_WINDOW_S / max(duration_s, 1e-3))))
        low, background = self._background()
        # a silent line's floor (digital zeros) is no steady noise: the gate keeps the VAD from its
        # clicks and breaths as before
        self.steady = (self._count * duration_s >= STEADY_LEARNT_S - 1e-9 and low >= QUIETEST_BACKGROUND_RMS
                       and background <= low * _STEADY_RATIO)  # fmt: skip
        background = max(background, QUIETEST_BACKGROUND_RMS)
        self.level = background
        audible = rms >= background * self.ratio
        # a caller talking on must not become their own background (it split a 10 s monologue into
        # five turns): a frame above it counts once in ABOVE_BACKGROUND_WEIGHT, enough for a noise that
        # starts mid-call to be learnt within a few windows
        self._above += audible
        if not audible or self._above % ABOVE_BACKGROUND_WEIGHT == 0:
            self._levels[self._next] = rms
            self._next = (self._next + 1) % self._levels.size
            self._count = min(self._count + 1, self._levels.size)
        return audible

    def _background(self) -> tuple[float, float]:
        """The 5th and the BACKGROUND_PERCENTILE of the window's levels, as np.percentile ("linear")
        gives them to the bit, from one partial sort: ~3 us a frame instead of ~48 each, on every frame
        of every call."""
        n = self._count
        if not n:
            return 0.0, 0.0
        assert self._levels is not None
        positions = [q / 100 * (n - 1) for q in (STEADY_LOW_PERCENTILE, BACKGROUND_PERCENTILE)]
        kth = sorted({k for p in positions for k in (math.floor(p), min(math.floor(p) + 1, n - 1))})
        ordered = np.partition(self._levels[:n], kth)

        def at(position: float) -> float:
            lo = math.floor(position)
            a, b, t = float(ordered[lo]), float(ordered[min(lo + 1, n - 1)]), position - lo
            return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t  # numpy's own interpolation

        return at(positions[0]), at(positions[1])

    def voice_over_steady_noise(self, window_s: float, silero_heard_voice: bool) -> bool:
        """Is the next `window_s` seconds of the line the caller going on after a pause, over a steady
        noise: a frame in it stood NOISE_GATE_DB above that noise, and Silero itself heard their voice
        within RESUME_S before it? Frames are marked as they are heard and read back here in order,
        window after window, as Silero's loop takes them (later, and in windows of its own length)."""
        self._read_s += window_s
        if silero_heard_voice:
            self._voice_read_at = self._read_s
        voiced, left = False, window_s
        while self._marks and left > 1e-9 and self._marks[0] is not _FLUSHED:
            duration, mark = self._marks[0]
            voiced |= mark
            taken = min(left, duration - self._into_mark)
            self._into_mark += taken
            left -= taken
            if self._into_mark >= duration - 1e-9:
                self._marks.popleft()
                self._into_mark = 0.0
        return voiced and self._read_s - self._voice_read_at <= RESUME_S

    def mark_flush(self) -> None:
        """The stream was flushed here: Silero's loop drops the frames it has not read yet, up to this
        point, and starts again (forget_unread, as it does)."""
        self._marks.append(_FLUSHED)

    def forget_unread(self) -> None:
        """Silero's loop reached a flush: the marks of the frames it dropped go with them."""
        while self._marks and self._marks.popleft() is not _FLUSHED:
            pass
        self._into_mark = 0.0

    def heard(self, frame: rtc.AudioFrame) -> rtc.AudioFrame:
        """The frame as the VAD should hear it: itself, or silence of its length."""
        pcm = np.frombuffer(frame.data, dtype=np.int16)
        audible = self.audible(pcm, frame.duration)
        self._marks.append((frame.duration, audible and self.steady and self.level >= NOISY_LINE_RMS))
        if audible:
            if self._learnt_for >= LEARNT_S - 1e-9:
                self._hangover = HANGOVER_S
            return frame
        self._learnt_for += frame.duration
        if self._hangover > 1e-9:
            self._hangover -= frame.duration
            return frame
        if self.steady and self._learnt_for >= LEARNT_S - 1e-9:
            return frame
        return rtc.AudioFrame(bytes(len(pcm) * 2), frame.sample_rate, frame.num_channels, frame.samples_per_channel)
