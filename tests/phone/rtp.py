"""The caller's media leg: G.711 µ-law over RTP (PCMU/8000, 20 ms packets) on one loopback socket.

It sends queued caller audio, padded with silence so RTP never stops, and records every packet received.
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
import time
from array import array
from collections import deque
from dataclasses import dataclass, field

SAMPLE_RATE = 8000
PACKET_SAMPLES = 160  # 20 ms at 8 kHz
PACKET_SECONDS = PACKET_SAMPLES / SAMPLE_RATE
PCMU = 0
ULAW_SILENCE = 0xFF  # µ-law code for a zero sample

# A received packet counts as voice above this RMS (16-bit scale); comfort noise and µ-law's
# smallest steps stay far below it, speech and tones far above.
VOICE_RMS = 500.0

_BIAS = 0x84
_CLIP = 32635


def _encode_sample(sample: int) -> int:
    """ITU-T G.711 µ-law encoding of one signed 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, _CLIP) + _BIAS
    exponent = 7
    mask = 0x4000
    while exponent > 0 and not magnitude & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _decode_byte(code: int) -> int:
    code = ~code & 0xFF
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = ((mantissa << 3) + _BIAS) << exponent
    magnitude -= _BIAS
    return -magnitude if sign else magnitude


# Tables make a 20 ms packet a pair of lookups instead of 160 function calls.
_ENCODE = bytes(_encode_sample(s - 65536 if s >= 32768 else s) for s in range(65536))
_DECODE = array("h", (_decode_byte(c) for c in range(256)))


def ulaw_encode(pcm16: bytes) -> bytes:
    """Signed 16-bit little-endian mono PCM -> µ-law bytes (one per sample)."""
    samples = array("h")
    samples.frombytes(pcm16)
    return bytes(_ENCODE[s & 0xFFFF] for s in samples)


def ulaw_decode(ulaw: bytes) -> bytes:
    """µ-law bytes -> signed 16-bit little-endian mono PCM."""
    return array("h", (_DECODE[c] for c in ulaw)).tobytes()


def rms(pcm16: bytes) -> float:
    samples = array("h")
    samples.frombytes(pcm16)
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


@dataclass
class ReceivedPacket:
    at: float  # time.time() on arrival
    seq: int
    timestamp: int
    payload_type: int
    payload: bytes  # as sent (µ-law for PCMU)


@dataclass
class RtpEndpoint(asyncio.DatagramProtocol):
    """One UDP socket for both directions, as a phone would use it (livekit-sip latches onto it)."""

    port: int
    packets: list[ReceivedPacket] = field(default_factory=list)
    first_voice_at: float | None = None
    last_voice_at: float | None = None  # arrival of the newest loud packet
    voice_heard: asyncio.Event = field(default_factory=asyncio.Event)
    _outgoing: deque[bytes] = field(default_factory=deque)  # µ-law, PACKET_SAMPLES each
    _drained: asyncio.Event = field(default_factory=asyncio.Event)
    _transport: asyncio.DatagramTransport | None = None
    _peer: tuple[str, int] | None = None
    _sender: asyncio.Task[None] | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", self.port))
        self._drained.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a datagram transport here

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        csrc_count = data[0] & 0x0F
        header = 12 + 4 * csrc_count
        if data[0] & 0x10 and len(data) >= header + 4:  # header extension
            header += 4 + 4 * struct.unpack_from("!H", data, header + 2)[0]
        payload_type = data[1] & 0x7F
        seq, timestamp = struct.unpack_from("!HI", data, 2)
        payload = data[header:]
        now = time.time()
        self.packets.append(ReceivedPacket(now, seq, timestamp, payload_type, payload))
        if payload_type == PCMU and rms(ulaw_decode(payload)) > VOICE_RMS:
            self.last_voice_at = now
            if self.first_voice_at is None:
                self.first_voice_at = now
                self.voice_heard.set()

    def start_sending(self, peer: tuple[str, int]) -> None:
        """Begin the 20 ms packet clock towards livekit-sip's RTP address from the 200 OK."""
        self._peer = peer
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())

    def queue_pcm(self, pcm16: bytes) -> None:
        """Queue 8 kHz 16-bit mono PCM to be spoken; it follows whatever is still queued."""
        ulaw = ulaw_encode(pcm16)
        remainder = len(ulaw) % PACKET_SAMPLES
        if remainder:
            ulaw += bytes([ULAW_SILENCE]) * (PACKET_SAMPLES - remainder)
        for i in range(0, len(ulaw), PACKET_SAMPLES):
            self._outgoing.append(ulaw[i : i + PACKET_SAMPLES])
        if self._outgoing:
            self._drained.clear()

    def queue_silence(self, seconds: float) -> None:
        self.queue_pcm(bytes(2 * int(seconds * SAMPLE_RATE)))

    async def wait_sent(self) -> None:
        """Wait until all queued audio has gone out."""
        await self._drained.wait()

    async def _send_loop(self) -> None:
        seq = random.randrange(1 << 16)
        timestamp = random.randrange(1 << 32)
        ssrc = random.randrange(1 << 32)
        silence = bytes([ULAW_SILENCE]) * PACKET_SAMPLES
        marker = True
        next_at = time.monotonic()
        while True:
            if self._outgoing:
                payload = self._outgoing.popleft()
            else:
                payload = silence
                self._drained.set()
            header = struct.pack(
                "!BBHII", 0x80, (0x80 if marker else 0) | PCMU, seq, timestamp, ssrc
            )
            marker = False
            if self._transport is not None and self._peer is not None:
                self._transport.sendto(header + payload, self._peer)
            seq = (seq + 1) & 0xFFFF
            timestamp = (timestamp + PACKET_SAMPLES) & 0xFFFFFFFF
            # An absolute schedule keeps the packet rate exact even when the loop is late once.
            next_at += PACKET_SECONDS
            delay = next_at - time.monotonic()
            if delay < -0.2:  # far behind (a paused process): resync instead of bursting
                next_at = time.monotonic()
                delay = 0
            await asyncio.sleep(max(delay, 0))

    def received_pcm(self) -> bytes:
        """Everything received as PCMU, decoded to 8 kHz 16-bit PCM in arrival order."""
        return b"".join(ulaw_decode(p.payload) for p in self.packets if p.payload_type == PCMU)

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            try:
                await self._sender
            except asyncio.CancelledError:
                pass
            self._sender = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
