"""A message taken without the model: one of the brain's pre-rendered lines, the tone, the caller's words
recorded to a WAV file under VOICEMAIL_DIR and a `messages` row pointing at it, notified like any
message. Taken when the model cannot be reached (agent/fallback.py) and when every line is busy
(agent/overflow.py).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

from livekit import rtc
from livekit.agents import AgentSession, io

from agent.call import CallContext
from agent.fallback_audio import FallbackAudio, Line, pcm_frames, write_wav

_VOICE_RMS = 500.0  # a 20 ms frame louder than this is the caller talking (telephone speech: 1000+)
_MESSAGE_ENDS_AFTER_S = 2.0  # the caller's silence that ends a voicemail
# a caller who has said nothing this long after the tone leaves none: their line (and a worker's slot)
# is not held for the brain's longest message
_NOTHING_SAID_AFTER_S = 10.0


def _tone(rate: int, seconds: float = 0.4, hz: float = 880.0) -> bytes:
    """The voicemail beep."""
    n = int(rate * seconds)
    return array.array(
        "h", (int(0.25 * 32767 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n))
    ).tobytes()


def _rms(pcm: bytes) -> float:
    samples = (
        memoryview(pcm).cast("h") if len(pcm) % 2 == 0 and pcm else memoryview(b"\0\0").cast("h")
    )
    return math.sqrt(sum(s * s for s in samples) / len(samples))


class CallerTap(io.AudioInput):
    """The caller's audio on its way to the session: passed through while the model listens, and once
    the model is gone, kept from it (silence goes on instead) and recorded when a voicemail is taken."""

    def __init__(self, source: io.AudioInput) -> None:
        super().__init__(label="caller-tap", source=source)
        self.muted = False
        self._recording: bytearray | None = None
        self.rate = 0
        self.voiced_s = 0.0
        self.last_voice: float | None = None

    def start_recording(self) -> None:
        self._recording = bytearray()
        self.voiced_s, self.last_voice = 0.0, None

    def stop_recording(self) -> bytes:
        pcm, self._recording = bytes(self._recording or b""), None
        return pcm

    @property
    def recording(self) -> bool:
        return self._recording is not None

    async def __anext__(self) -> rtc.AudioFrame:
        frame = await super().__anext__()
        if not self.muted:
            return frame
        pcm = bytes(frame.data)
        if self._recording is not None and frame.num_channels == 1:
            self.rate = frame.sample_rate
            self._recording.extend(pcm)
            if _rms(pcm) > _VOICE_RMS:
                self.voiced_s += frame.duration
                self.last_voice = time.monotonic()
        return rtc.AudioFrame(
            bytes(len(pcm)), frame.sample_rate, frame.num_channels, frame.samples_per_channel
        )


class Voicemail:
    """Plays a call's pre-rendered lines on its session and takes the caller's message, without the
    model. `taken_while` finishes the message's text: "taken while <it>"."""

    def __init__(
        self,
        session: AgentSession[CallContext],
        call: CallContext,
        audio: FallbackAudio | None,
        *,
        voicemail_dir: Path,
        taken_while: str,
    ) -> None:
        self.session = session
        self.call = call
        self.audio = audio
        self.voicemail_dir = voicemail_dir
        self.taken_while = taken_while
        self.tap: CallerTap | None = None
        self.call_ended = False
        # the tone has played: the caller's message is being recorded
        self.message_started = asyncio.Event()

    def attach(self) -> None:
        """Once the session has its caller audio (after session.start)."""
        source = self.session.input.audio
        if source is not None and not isinstance(source, CallerTap):
            self.tap = CallerTap(source)
            self.session.input.audio = self.tap

    async def take_message(self, line: Line) -> None:
        """`line` (it asks for a message after the tone), the tone, then the caller's words until they
        fall silent, hang up, or the brain's longest message is reached (or nothing for 10 s); the
        goodbye once kept."""
        assert self.audio is not None and self.tap is not None
        await self.play(line)
        await self._play_pcm(_tone(self.audio.rate))
        self.tap.start_recording()
        self.message_started.set()
        started = time.monotonic()
        limit = self.call.brain.calls.model_down.message_seconds
        while time.monotonic() - started < limit and not self.call_ended:
            last = self.tap.last_voice
            if last is not None and time.monotonic() - last >= _MESSAGE_ENDS_AFTER_S:
                break
            if last is None and time.monotonic() - started >= _NOTHING_SAID_AFTER_S:
                break
            await asyncio.sleep(0.1)  # noqa: ASYNC110 - the caller's silence has no event of its own
        said = self._stop_recording()
        if said is not None:
            path = await asyncio.to_thread(self._write_wav, *said)
            self._keep_message(path, len(said[0]) / 2 / said[1])
            await self.play("goodbye")

    def on_call_ended(self) -> None:
        """The session closed (the caller hung up, or our hang-up): keep what a voicemail holds."""
        self.call_ended = True
        said = self._stop_recording()
        if said is not None:
            # the call is over: a short blocking write here holds up no one's audio
            self._keep_message(self._write_wav(*said), len(said[0]) / 2 / said[1])

    def _stop_recording(self) -> tuple[bytes, int] | None:
        """The message's audio and rate, once: None when none was being recorded or the caller said
        nothing in it."""
        if self.tap is None or not self.tap.recording:
            return None
        voiced, pcm, rate = self.tap.voiced_s, self.tap.stop_recording(), self.tap.rate
        return (pcm, rate) if voiced > 0 and pcm and rate else None

    def _write_wav(self, pcm: bytes, rate: int) -> Path:
        self.voicemail_dir.mkdir(parents=True, exist_ok=True)
        path = (self.voicemail_dir / f"{self.call.call_id}.wav").resolve()
        write_wav(str(path), pcm, rate)
        return path

    def _keep_message(self, path: Path, seconds: float) -> None:
        """A `messages` row pointing at the recording: the owner sees and is told of it like any message."""
        from agent.store.journal.events import MessageRecord

        self.call.record(
            MessageRecord(
                call_id=self.call.call_id, business=self.call.brain.business.name,
                body=f"Voicemail ({seconds:.0f} s, taken while {self.taken_while}):"
                " play it on the call's page in the console",
                phone=self.call.caller_number, callback_requested=self.call.caller_number is not None,
                urgency="soon", audio_path=str(path),
            )
        )  # fmt: skip
        self.call.extras["voicemail"] = {"path": str(path), "seconds": round(seconds, 1)}
        self.call.set_outcome("message")

    # -- playing pre-rendered audio ----------------------------------------------------------------
    async def play(self, line: Line) -> None:
        if self.audio is None:
            return
        started = time.time()
        await self._play_frames(self.audio.lines[line], self.audio.frames(line))
        self.call.record_turn(
            role="agent",
            text=self.audio.lines[line],
            started_at=started,
            ended_at=time.time(),
            interrupted=False,
        )

    async def _play_pcm(self, pcm: bytes) -> None:
        assert self.audio is not None
        await self._play_frames("", pcm_frames(pcm, self.audio.rate))

    async def _play_frames(self, text: str, frames: AsyncIterator[rtc.AudioFrame]) -> None:
        try:
            handle = self.session.say(
                text, audio=frames, add_to_chat_ctx=False, allow_interruptions=False
            )
        except RuntimeError:  # the session is closing: the caller has gone
            return
        with contextlib.suppress(Exception):
            await handle.wait_for_playout()
