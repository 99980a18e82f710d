"""Places real SIP calls at livekit-sip on loopback: sipp (tests/phone/caller.xml) signals, rtp.py talks.

    async with place_call(phone_stack, to="+15035550100", audio_script=["Hi, are you open today?", 2.0]) as call:
        await call.wait_answered()
        await call.wait_for_voice()
        await call.hangup()
    assert call.ended_by == "caller_bye"

All timestamps are time.time() seconds (sipp stamps its events with the same clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import tempfile
import time
import uuid
import wave
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Literal, Protocol

from livekit import api

from tests.fixtures.stack import free_port
from tests.phone.rtp import SAMPLE_RATE, RtpEndpoint
from tests.phone.voice import speak, wav_to_pcm

SCENARIO = Path(__file__).with_name("caller.xml")
# the phone a warm transfer rings, by how it answers
PERSON_SCENARIOS = {
    "at_once": Path(__file__).with_name("person.xml"),
    "busy": Path(__file__).with_name("person_busy.xml"),  # refuses: 486 Busy Here
    "never": Path(__file__).with_name("person_no_answer.xml"),  # rings until CANCELled
}

# One script item: text the caller says, seconds of silence, or a WAV file to play.
AudioItem = str | float | int | Path


class SipTarget(Protocol):
    sip_host: str
    sip_port: int


class LiveKitTarget(Protocol):
    def api(self) -> api.LiveKitAPI: ...


class CallFailed(AssertionError):
    """The call did not get where the test expected; the message carries sipp's trace."""


@dataclass
class Call:
    to: str
    from_: str
    work_dir: Path
    invite_sent_at: float | None = None
    answered_at: float | None = None
    rejected_with: int | None = None  # SIP status of a refused INVITE
    sip_call_id: str = ""
    refer_to: str | None = None
    refer_at: float | None = None
    cancel_sent_at: float | None = None
    # far_end_bye | caller_bye | caller_cancel[_unanswered] | refer | rejected | sipp_exit_<code>
    ended_by: str | None = None
    ended_at: float | None = None
    rtp: RtpEndpoint | None = None
    _sipp: asyncio.subprocess.Process | None = None
    _sipp_port: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _pending_audio: list[AudioItem] = field(default_factory=list)

    # ---- what the test reads

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def first_voice_at(self) -> float | None:
        """Arrival time of the first received packet loud enough to be a voice or a tone."""
        return self.rtp.first_voice_at if self.rtp else None

    @property
    def received_audio(self) -> bytes:
        """All audio received so far: 8 kHz signed 16-bit mono PCM, in arrival order."""
        return self.rtp.received_pcm() if self.rtp else b""

    @property
    def received_packets(self) -> int:
        return len(self.rtp.packets) if self.rtp else 0

    def save_received(self, path: Path) -> Path:
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(self.received_audio)
        return path

    def sip_trace(self) -> str:
        """sipp's message log and errors, for failure messages."""
        parts = []
        for name in ("messages.log", "errors.log", "sipp.out"):
            path = self.work_dir / name
            if path.exists():
                text = path.read_text(errors="replace")
                parts.append(f"--- {name} ---\n{text[-8000:]}")
        return "\n".join(parts)

    # ---- what the test does

    def say(self, item: AudioItem) -> None:
        """Queue more caller audio (played after what is already queued; held until answered)."""
        if self.rtp is not None and self.answered:
            _queue(self.rtp, item)
        else:
            self._pending_audio.append(item)

    async def wait_sent(self) -> None:
        """Wait until the caller has finished saying everything queued."""
        if self.rtp is not None:
            await self.rtp.wait_sent()

    async def wait_answered(self, within: float = 60) -> None:
        """Until the 200 OK; raises CallFailed if refused, ended or silent past the timeout."""
        await self._wait(lambda: self.answered or self.ended_by is not None, within, "a 200 OK")
        if not self.answered:
            raise CallFailed(
                f"call ended before it was answered ({self._describe()})\n{self.sip_trace()}"
            )

    async def wait_for_voice(self, within: float = 30) -> float:
        """Until the far end sends non-silent audio; returns its arrival time."""
        await self.wait_answered(within)
        assert self.rtp is not None
        try:
            await asyncio.wait_for(self.rtp.voice_heard.wait(), within)
        except TimeoutError:
            raise CallFailed(
                f"no voice within {within}s: {self.received_packets} packets received ({self._describe()})"
            ) from None
        assert self.first_voice_at is not None
        return self.first_voice_at

    async def wait_agent_done(self, *, after: float | None = None, quiet_s: float = 1.5,
                              within: float = 60) -> float:  # fmt: skip
        """Until the far end has spoken (since `after`, a time.time(), if given) and then been quiet
        for `quiet_s`: the caller answers when the agent has finished, as a person would. Returns when
        its last voice arrived."""
        await self.wait_for_voice(within)
        assert self.rtp is not None
        rtp = self.rtp
        since = after or 0.0
        deadline = time.monotonic() + within
        while True:
            last = rtp.last_voice_at
            if last is not None and last > since and time.time() - last >= quiet_s:
                return last
            if self.ended_by is not None or time.monotonic() > deadline:
                raise CallFailed(f"the agent did not speak and finish within {within}s ({self._describe()})")
            await asyncio.sleep(0.1)  # packets arrive every 20 ms; this only samples the silence

    async def wait_ended(self, within: float = 60) -> str:
        """Until the call is over, however it ended; returns ended_by."""
        await self._wait(lambda: self.ended_by is not None, within, "the end of the call")
        assert self.ended_by is not None
        return self.ended_by

    async def wait_refer(self, within: float = 60) -> str:
        await self._wait(
            lambda: self.refer_to is not None or self.ended_by is not None, within, "a REFER"
        )
        if self.refer_to is None:
            raise CallFailed(f"no REFER arrived ({self._describe()})\n{self.sip_trace()}")
        return self.refer_to

    async def hangup(self, within: float = 15) -> None:
        """Caller hangs up: BYE once answered, CANCEL while it is still ringing.

        ended_by becomes caller_bye, caller_cancel, or caller_cancel_unanswered when the far
        end never answers the CANCEL.
        """
        if self.ended_by is not None:
            return
        self._trigger_hangup()
        if self.answered:
            await self.wait_ended(within)
            return
        try:
            await self.wait_ended(within)
        except CallFailed:
            # livekit-sip ignores a CANCEL for an INVITE it has silently dropped (no trunk).
            await self._stop_sipp()
            self._end("caller_cancel_unanswered")

    # ---- internals

    def _describe(self) -> str:
        return (
            f"to={self.to} answered={self.answered} rejected_with={self.rejected_with} "
            f"ended_by={self.ended_by} refer_to={self.refer_to} work_dir={self.work_dir}"
        )

    async def _wait(self, done: Callable[[], bool], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CallFailed(
                    f"waited {within}s for {what} ({self._describe()})\n{self.sip_trace()}"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def _end(self, how: str, at: float | None = None) -> None:
        if self.ended_by is None:
            self.ended_by = how
            self.ended_at = at or time.time()
        self._changed.set()

    def _on_event(self, name: str, at: float, args: list[str]) -> None:
        if name == "invite":
            self.invite_sent_at = at
        elif name == "invited":  # a call rang us (receive_call): who it was for
            self.invite_sent_at = at
            self.to = args[0] if args else ""
        elif name == "answered":
            rtp_ip, rtp_port = args[0], int(args[1])
            self.answered_at = at
            assert self.rtp is not None
            self.rtp.start_sending((rtp_ip, rtp_port))
            for item in self._pending_audio:
                _queue(self.rtp, item)
            self._pending_audio.clear()
        elif name == "rejected":
            self.rejected_with = int(args[0]) if args and args[0].isdigit() else None
            self._end("rejected", at)
        elif name == "cancel":
            self.cancel_sent_at = at
        elif name == "refer":
            self.refer_to = " ".join(args).strip("'")
            self.refer_at = at
        elif name == "ended":
            self._end(args[0], at)
        self._changed.set()

    def _trigger_hangup(self) -> None:
        # An INFO on the call's Call-ID tells sipp's scenario to send BYE or CANCEL (see caller.xml).
        message = (
            f"INFO sip:harness@127.0.0.1:{self._sipp_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-{uuid.uuid4().hex}\r\n"
            "From: <sip:harness@127.0.0.1>;tag=harness\r\n"
            "To: <sip:caller@127.0.0.1>\r\n"
            f"Call-ID: {self.sip_call_id}\r\n"
            "CSeq: 1 INFO\r\n"
            "X-Harness: hangup\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(message.encode(), ("127.0.0.1", self._sipp_port))

    async def _stop_sipp(self) -> None:
        proc = self._sipp
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _queue(rtp: RtpEndpoint, item: AudioItem) -> None:
    if isinstance(item, Path):
        rtp.queue_pcm(wav_to_pcm(item))
    elif isinstance(item, str):
        rtp.queue_pcm(speak(item))
    else:
        rtp.queue_silence(float(item))


def _read_events(events: Path, offset: int) -> tuple[str, int]:
    try:
        with events.open() as f:
            f.seek(offset)
            return f.read(), f.tell()
    except FileNotFoundError:
        return "", offset


async def _follow_events(call: Call, events: Path) -> None:
    """Tail sipp's event file; when sipp exits, note an ending it did not report."""
    assert call._sipp is not None
    offset = 0
    pending = ""
    while True:
        exited = call._sipp.returncode is not None
        if exited:
            await asyncio.sleep(0.2)  # sipp's last exec may still be appending
        chunk, offset = await asyncio.to_thread(_read_events, events, offset)
        pending += chunk
        *lines, pending = pending.split("\n")
        for line in lines:
            parts = line.split()
            if len(parts) >= 2:
                call._on_event(parts[0], float(parts[1]), parts[2:])
        if exited:
            call._end(f"sipp_exit_{call._sipp.returncode}")
            return
        await asyncio.sleep(0.05)


async def find_sip_participant(
    stack: LiveKitTarget, sip_call_id: str, within: float = 10
) -> tuple[str, api.ParticipantInfo]:
    """The room and SIP participant that livekit-sip created for this SIP Call-ID."""
    deadline = time.monotonic() + within
    async with stack.api() as lk:
        while True:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest())
            for room in rooms.rooms:
                people = await lk.room.list_participants(
                    api.ListParticipantsRequest(room=room.name)
                )
                for person in people.participants:
                    if person.attributes.get("sip.callIDFull") == sip_call_id:
                        return room.name, person
            if time.monotonic() > deadline:
                raise CallFailed(
                    f"no participant with sip.callIDFull={sip_call_id} after {within}s"
                )
            await asyncio.sleep(0.2)


def _free_media_pair() -> int:
    """sipp binds -mp and -mp+2 even though the harness does the media."""
    for _ in range(100):
        port = free_port(tcp=False, udp=True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 2))
            except OSError:
                continue
        return port
    raise RuntimeError("no free UDP port pair for sipp")


@dataclass(frozen=True)
class _SippPorts:
    sip: int
    control: int
    media: int  # sipp binds this and media + 2


def _udp_ports_held_by(pid: int) -> set[int]:
    """The UDP ports process `pid` has bound (its socket inodes matched in /proc/net/udp)."""
    inodes: set[str] = set()
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    ports: set[int] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def _start_sipp(
    argv: Callable[[_SippPorts], list[str]], work_dir: Path, *, sip_port: int | None = None
) -> asyncio.subprocess.Process:
    """Start sipp on ports free a moment ago and return once it holds them all.

    A port found free can be taken by another process (a worker's WebRTC, another sipp) before
    sipp binds it; sipp then exits at once ("Unable to bind ... Address already in use") before
    sending or taking anything, so it is started again on fresh ports.
    """
    errors = work_dir / "errors.log"
    for _ in range(5):
        ports = _SippPorts(
            sip=sip_port or free_port(tcp=False, udp=True),
            control=free_port(tcp=False, udp=True),
            media=_free_media_pair(),
        )
        errors.unlink(missing_ok=True)
        with (work_dir / "sipp.out").open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv(ports), stdin=asyncio.subprocess.DEVNULL, stdout=out,
                stderr=asyncio.subprocess.STDOUT, cwd=work_dir, env={**os.environ, "TERM": "dumb"},
            )  # fmt: skip
        wanted = {ports.sip, ports.control, ports.media, ports.media + 2}
        deadline = time.monotonic() + 10
        while proc.returncode is None and time.monotonic() < deadline:
            if wanted <= await asyncio.to_thread(_udp_ports_held_by, proc.pid):
                return proc
            await asyncio.sleep(0.02)
        if proc.returncode is None:
            return proc  # not seen holding its ports, but running: the call's own waits judge it
        reason = errors.read_text(errors="replace") if errors.exists() else ""
        if "Unable to bind" not in reason or (sip_port is not None and f"port {sip_port}" in reason):
            return proc  # exited for a reason a new port does not cure: the call reports it
    return proc


@contextlib.asynccontextmanager
async def place_call(
    stack: SipTarget,
    *,
    to: str,
    from_: str = "+15551230000",
    audio_script: Sequence[AudioItem] = (),
    headers: Mapping[str, str] | None = None,
    max_seconds: float = 180,
    work_dir: Path | None = None,
) -> AsyncIterator[Call]:
    """Send an INVITE to `to` and yield the call right away; the script plays once answered.

    Leaving the block hangs up if the call is still up and waits for sipp to finish.
    """
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp is not installed (apt-get install sip-tester)")
    if work_dir is None:
        base = getattr(stack, "run_dir", None)
        parent = Path(base) / "calls" if base else Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix=f"call-{to.lstrip('+')}-", dir=parent))
    events = work_dir / "events"

    call = Call(to=to, from_=from_, work_dir=work_dir, _pending_audio=list(audio_script))
    # Chosen here so the harness can address the call (hang-up) before any answer.
    call.sip_call_id = f"harness-{uuid.uuid4().hex}@127.0.0.1"
    call.rtp = RtpEndpoint(port=free_port(tcp=False, udp=True))
    await call.rtp.open()
    extra = "".join(f"\r\n{name}: {value}" for name, value in (headers or {}).items())

    def argv(ports: _SippPorts) -> list[str]:
        call._sipp_port = ports.sip
        call.invite_sent_at = time.time()
        options = [
            ("-sf", str(SCENARIO)),
            ("-i", "127.0.0.1"),  # sipp would otherwise pick the host's address
            ("-p", str(ports.sip)),  # never 5060: that may be livekit-sip's
            ("-cp", str(ports.control)),  # control port, 8888 by default
            ("-mp", str(ports.media)),
            ("-m", "1"),
            ("-timeout", f"{int(max_seconds)}s"),
            ("-s", to),
            ("-cid_str", call.sip_call_id),
            ("-key", "from_user", from_),
            ("-key", "rtp_port", str(call.rtp.port)),
            ("-key", "events_file", str(events)),
            ("-key", "extra_headers", extra),
            ("-message_file", str(work_dir / "messages.log")),
            ("-error_file", str(work_dir / "errors.log")),
        ]
        flags = ["-nostdin", "-timeout_error", "-trace_msg", "-trace_err"]
        return [sipp, f"{stack.sip_host}:{stack.sip_port}", *chain.from_iterable(options), *flags]

    call._sipp = await _start_sipp(argv, work_dir)
    follower = asyncio.create_task(_follow_events(call, events))
    try:
        yield call
    finally:
        try:
            if call.ended_by is None:
                with contextlib.suppress(CallFailed):
                    await call.hangup()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call._sipp.wait(), 10)
            await call._stop_sipp()
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            await call.rtp.close()


@contextlib.asynccontextmanager
async def receive_call(
    *, port: int, answer: Literal["at_once", "busy", "never"] = "at_once", audio_script: Sequence[AudioItem] = (),
    max_seconds: float = 120, work_dir: Path,
) -> AsyncIterator[Call]:  # fmt: skip
    """A phone at 127.0.0.1:`port` that takes one call (from livekit-sip's outbound trunk): answered
    at once, its script played once answered; refused with 486 (`busy`); or ringing until cancelled
    (`never`; ended_by `unanswered`). The yielded Call's `to` is the number dialed, `answered` and
    `received_audio` what the person got."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp is not installed (apt-get install sip-tester)")
    events = work_dir / "events"
    call = Call(to="", from_="", work_dir=work_dir, _pending_audio=list(audio_script))
    call.rtp = RtpEndpoint(port=free_port(tcp=False, udp=True))
    await call.rtp.open()

    def argv(ports: _SippPorts) -> list[str]:
        options = [
            ("-sf", str(PERSON_SCENARIOS[answer])),
            ("-i", "127.0.0.1"),
            ("-p", str(port)),
            ("-cp", str(ports.control)),
            ("-mp", str(ports.media)),
            ("-m", "1"),
            ("-timeout", f"{int(max_seconds)}s"),
            ("-key", "rtp_port", str(call.rtp.port)),
            ("-key", "events_file", str(events)),
            ("-message_file", str(work_dir / "messages.log")),
            ("-error_file", str(work_dir / "errors.log")),
        ]
        flags = ["-nostdin", "-timeout_error", "-trace_msg", "-trace_err"]
        return [sipp, *chain.from_iterable(options), *flags]

    # listening before it returns, so livekit-sip never rings a phone not yet there
    call._sipp = await _start_sipp(argv, work_dir, sip_port=port)
    follower = asyncio.create_task(_follow_events(call, events))
    try:
        yield call
    finally:
        try:
            await call._stop_sipp()
        finally:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
            await call.rtp.close()
