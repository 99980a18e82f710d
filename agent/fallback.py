"""What the caller hears when the model fails, and the call's path when it cannot be reached at all.

A failing model (a dropped socket, a rate limit, an expired session) gets the brain's hold line at once
and, once the plugin has reconnected with the conversation replayed, the lost reply asked for again.
When the plugin's reconnects are spent, the call goes on without the model: the brain's apology, then
a transfer to the business's people when they are available, otherwise a voicemail (the caller's words
recorded to a WAV file under VOICEMAIL_DIR, and a `messages` row pointing at it), then a hang-up.

Every line it plays is rendered to audio at worker start (agent/fallback_audio.py): nothing on this
path needs the network.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, APIConnectionError, APIError, io, llm
from livekit.agents.voice.events import ErrorEvent

from agent.brain import departments
from agent.call import CallContext, TransferFailed
from agent.fallback_audio import FallbackAudio, Line, pcm_frames, write_wav
from agent.model_link import ModelLink

log = logging.getLogger("receptionist.fallback")

# errors after which the caller's reply will not come on its own, by their code or, failing that,
# their type: OpenAI ends a reply its server failed with the type `server_error` and no code, and
# a rate limit that strikes a started reply with the code `inference_rate_limit_exceeded`
_LOST_REPLY_CODES = ("rate_limit_exceeded", "inference_rate_limit_exceeded", "server_error", "session_expired")
_VOICE_RMS = 500.0  # a 20 ms frame louder than this is the caller talking (telephone speech: 1000+)
_MESSAGE_ENDS_AFTER_S = 2.0  # the caller's silence that ends a voicemail


def error_name(cause: object) -> str | None:
    """A Realtime error's name: its code, or its type where it has no code (LiveKit's plugin puts the
    event's error object in an APIError's `body`)."""
    body = getattr(cause, "body", None)
    code, type_ = getattr(body, "code", None), getattr(body, "type", None)
    if isinstance(code, str) and code:
        return code
    return type_ if isinstance(type_, str) and type_ else None


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


class ModelFailover:
    """Keeps the caller from dead air while the model fails, and runs the model-free path once it is
    unreachable (see the module's docstring)."""

    def __init__(
        self,
        session: AgentSession[CallContext],
        call: CallContext,
        link: ModelLink,
        audio: FallbackAudio | None,
        *,
        voicemail_dir: Path,
        hold_after: float,
        max_reply_retries: int,
        retry_interval: float,
    ) -> None:
        self.session = session
        self.call = call
        self.link = link
        self.audio = audio
        self.voicemail_dir = voicemail_dir
        link.hold_after = hold_after
        self.max_reply_retries = max_reply_retries
        self.retry_interval = retry_interval
        self.tap: CallerTap | None = None
        self.reply_lost = False  # a reply the caller is waiting for will not come on its own
        self.reply_retries = 0
        self.holding = False
        self.held = False  # the hold line has played since the model last spoke or reconnected
        self.call_ended = False
        # the tone has played: the caller's message is being recorded
        self.message_started = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        if audio is not None:
            link.hold_pcm = audio.pcm["hold"]
        link.on_lost(self._on_lost)
        link.on_reconnected(self._on_reconnected)
        session.on("error", self._on_error)

    def attach(self) -> None:
        """Once the session has its caller audio (after session.start)."""
        source = self.session.input.audio
        if source is not None and not isinstance(source, CallerTap):
            self.tap = CallerTap(source)
            self.session.input.audio = self.tap

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- while the model fails -------------------------------------------------------------------
    def _on_error(self, ev: ErrorEvent) -> None:
        err = ev.error
        if not isinstance(err, llm.RealtimeModelError) or self.link.lost:
            return
        cause = err.error
        code = error_name(cause)
        dropped = isinstance(cause, APIConnectionError)
        if not dropped and not (isinstance(cause, APIError) and code in _LOST_REPLY_CODES):
            return  # a refused request of ours (a stale truncate, say): nothing the caller waits for
        log.warning("model failure mid-call (%s): %s", code or "connection", cause)
        self.call.extras.setdefault("model_failures", []).append(code or "connection_lost")
        self.reply_lost = True
        self._spawn(self._hold())
        if not dropped and code != "session_expired":
            # the socket is fine and nothing will come: ask again, a bounded number of times
            self._spawn(self._ask_again_later(cause))

    async def _hold(self) -> None:
        """The hold line, at once, instead of the silence of a reply that is not coming."""
        if self.holding or self.held or self.audio is None or self.link.lost:
            return  # once per outage: a string of failed reconnects is not a string of hold lines
        self.holding = self.held = True
        try:
            speech = self.session.current_speech
            if speech is not None and not speech.done():
                # the reply in progress is dead (its socket is gone or it was refused)
                with contextlib.suppress(RuntimeError):
                    self.session.interrupt(force=True)
            await self._play("hold")
        finally:
            self.holding = False

    async def _ask_again_later(self, cause: Exception) -> None:
        self.reply_retries += 1
        if self.reply_retries > self.max_reply_retries:
            self.link.report_lost(cause)
            return
        await asyncio.sleep(self.retry_interval * self.reply_retries)
        self._ask_again()

    def _on_reconnected(self) -> None:
        self.held = False
        if self.reply_lost:
            self._ask_again()

    def _ask_again(self) -> None:
        if self.link.lost or not self.reply_lost:
            return
        self.reply_lost = False
        with contextlib.suppress(RuntimeError):
            self.session.generate_reply(
                instructions=(
                    "Your connection dropped while the caller was waiting for your answer. Answer "
                    "their last request now, briefly, without mentioning any technical problem."
                )
            )

    def reply_arrived(self) -> None:
        """The model spoke again: the failures so far are behind us."""
        self.reply_retries = 0
        self.held = False

    # -- without the model ------------------------------------------------------------------------
    def _on_lost(self, error: Exception) -> None:
        self.call.extras["model_unreachable"] = str(error)[:300]
        self.call.end_reason = "model_unreachable"
        if self.call.outcome in (None, "answered", "abandoned"):
            # nothing done yet; a transfer or a voicemail below raises it
            self.call.outcome = "error"
        if self.tap is not None:
            self.tap.muted = True  # the caller's audio no longer goes to a model that is not there
        self._spawn(self._run_without_model())

    async def _run_without_model(self) -> None:
        call, brain = self.call, self.call.brain
        line = call.line
        speech = self.session.current_speech
        if speech is not None and not speech.done():
            with contextlib.suppress(RuntimeError):
                self.session.interrupt(force=True)
        # the department a caller asking for a person would reach, if one is open now
        open_now = departments.route(brain, "explicit_request", call.now()).department
        destination = open_now.transfer_to if open_now is not None else None
        if line is not None and destination:
            await self._play("transfer")
            if self.call_ended:
                return
            try:
                await line.transfer(destination)
                call.set_outcome("escalated")
                return
            except TransferFailed as e:
                log.warning("model down and the transfer to %s failed: %s", destination, e)
                call.extras["transfer_failed"] = str(e)
        if self.audio is not None and self.tap is not None and not self.call_ended:
            await self._take_voicemail()
        if line is not None and not self.call_ended:
            await line.hang_up("model_unreachable")

    async def _take_voicemail(self) -> None:
        assert self.audio is not None and self.tap is not None
        await self._play("message")
        await self._play_pcm(_tone(self.audio.rate))
        self.tap.start_recording()
        self.message_started.set()
        started = time.monotonic()
        limit = self.call.brain.calls.model_down.message_seconds
        while time.monotonic() - started < limit and not self.call_ended:
            last = self.tap.last_voice
            if last is not None and time.monotonic() - last >= _MESSAGE_ENDS_AFTER_S:
                break
            await asyncio.sleep(0.1)  # noqa: ASYNC110 - the caller's silence has no event of its own
        if self.tap.recording:
            voiced, pcm, rate = self.tap.voiced_s, self.tap.stop_recording(), self.tap.rate
            if voiced > 0 and pcm and rate:
                path = await asyncio.to_thread(self._write_wav, pcm, rate)
                self._keep_message(path, len(pcm) / 2 / rate)
                await self._play("goodbye")

    def on_call_ended(self) -> None:
        """The session closed (the caller hung up, or our hang-up): keep what a voicemail holds."""
        self.call_ended = True
        if self.tap is None or not self.tap.recording:
            return
        voiced, pcm, rate = self.tap.voiced_s, self.tap.stop_recording(), self.tap.rate
        if voiced > 0 and pcm and rate:
            # the call is over: a short blocking write here holds up no one's audio
            self._keep_message(self._write_wav(pcm, rate), len(pcm) / 2 / rate)

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
                body=f"Voicemail ({seconds:.0f} s, taken while the AI assistant was unreachable):"
                " play it on the call's page in the console",
                phone=self.call.caller_number, callback_requested=self.call.caller_number is not None,
                urgency="soon", audio_path=str(path),
            )
        )  # fmt: skip
        self.call.extras["voicemail"] = {"path": str(path), "seconds": round(seconds, 1)}
        self.call.set_outcome("message")

    # -- playing pre-rendered audio ----------------------------------------------------------------
    async def _play(self, line: Line) -> None:
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
