"""Call recording with the caller's consent: the caller (left channel) and the agent (right channel) of
one call in one Ogg/Opus file, `RECORDINGS_DIR/<call id>.ogg`, for brains with `recording.enabled`.

The audio is written by LiveKit's own recorder (`RecorderIO`, the one `AgentSession.start(record=True)`
uses): it taps the session's audio input and output and places both on one wall-clock timeline, so
the agent's audio sits where the caller heard it and an interrupted reply is cut where it stopped.
We attach it ourselves rather than through `record=True`, which would also hand transcripts, traces
and the file to LiveKit Cloud's upload.

A caller who objects is no longer recorded, and what was recorded is deleted: the greeting asked
before they had said anything, so an objection is a refusal of the whole recording, not of what
follows it (which would keep exactly the part where they gave their name and their problem).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import av
from livekit.agents import AgentSession
from livekit.agents.voice.recorder_io import RecorderIO

from agent.call import CallContext

log = logging.getLogger("receptionist.recording")

# a phone line carries 8 kHz (G.711) and the agent's voice is clear at 16 kHz: a wideband file at a third
# of the recorder's default 48 kHz work (resampling, encoding) on the call's process
SAMPLE_RATE = 16000


class CallRecording:
    """One call's recording: started once the line is up, stopped by the caller's objection or the
    call's end; the file's path and length go on the call row when it is kept."""

    def __init__(self, recorder: RecorderIO, path: Path, call: CallContext) -> None:
        self._recorder = recorder
        self.path = path
        self._call = call
        self.consented = True
        self.stopped_at: float | None = None  # wall time the caller's objection stopped it
        self.seconds: float | None = None  # the kept file's length, once closed
        self._closing: asyncio.Future[None] | None = None
        self._saving: asyncio.Future[None] | None = None

    @classmethod
    async def start(
        cls, session: AgentSession, call: CallContext, directory: Path
    ) -> CallRecording | None:
        """Record this call if its brain says so and the session carries audio both ways (a text call
        has nothing to record). Call after `session.start()` and before the greeting is generated."""
        if not call.brain.recording.enabled:
            return None
        if session.input.audio is None or session.output.audio is None:
            return None
        try:
            # callers' voices: readable by the worker's user only
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True, mode=0o700)
        except OSError:
            # a call goes on unrecorded rather than not at all
            log.exception("cannot create RECORDINGS_DIR %s; this call is not recorded", directory)
            return None
        recorder = RecorderIO(agent_session=session, sample_rate=SAMPLE_RATE)
        session.input.audio = recorder.record_input(session.input.audio)
        session.output.audio = recorder.record_output(session.output.audio)
        recording = cls(recorder, directory / f"{call.call_id}.ogg", call)
        await recorder.start(output_path=recording.path)
        call.recording = recording
        return recording

    @property
    def recording(self) -> bool:
        return self._recorder.recording

    async def withdraw(self) -> None:
        """The caller does not want to be recorded: stop at once and delete the file."""
        if not self.consented:
            return
        self.consented = False
        self.stopped_at = time.time()
        await self._close()
        await asyncio.to_thread(self.path.unlink, missing_ok=True)
        log.info("recording stopped and deleted at the caller's request")

    async def finish(self) -> None:
        """At the call's end: close the file and put its path and length on the call row (once, however
        many ways the call ends)."""
        if self._saving is None:
            self._saving = asyncio.ensure_future(self._save())
        await asyncio.shield(self._saving)

    async def _save(self) -> None:
        await self._close()
        if not self.consented:
            return
        try:
            self.seconds = await asyncio.to_thread(file_seconds, self.path)
        except (OSError, av.error.FFmpegError):
            log.exception("the call's recording could not be read back; not linked to the call")
            return
        from agent.store.journal import events as j

        self._call.record(
            j.RecordingSaved(call_id=self._call.call_id, path=str(self.path), seconds=round(self.seconds, 2))
        )

    async def _close(self) -> None:
        # the tool and the call's end may both close it; the encoder thread is flushed once
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._recorder.aclose())
        await asyncio.shield(self._closing)


def file_seconds(path: Path) -> float:
    """The length of a recording as its container states it (the Ogg file's last granule)."""
    with av.open(str(path)) as container:
        if container.duration is not None:
            return container.duration / av.time_base
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base) if stream.duration else 0.0
