"""The caller's µ-law codec and RTP endpoint, checked without a stack."""

import asyncio
import math
import struct
from array import array

from tests.fixtures.stack import free_port
from tests.phone.rtp import PACKET_SAMPLES, RtpEndpoint, rms, ulaw_decode, ulaw_encode


def test_ulaw_matches_g711_reference_points() -> None:
    # Values from the G.711 tables: zero, full scale both ways, and a mid-range step.
    assert ulaw_encode(struct.pack("<4h", 0, 32767, -32768, 1000)) == bytes(
        [0xFF, 0x80, 0x00, 0xCE]
    )
    assert struct.unpack("<4h", ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00]))) == (
        0,
        0,
        32124,
        -32124,
    )


def test_ulaw_round_trip_stays_within_a_quantisation_step() -> None:
    samples = array("h", (int(20000 * math.sin(i / 7)) for i in range(800)))
    decoded = array("h")
    decoded.frombytes(ulaw_decode(ulaw_encode(samples.tobytes())))
    for original, back in zip(samples, decoded, strict=True):
        assert abs(original - back) <= max(8, abs(original) // 16)


async def test_endpoint_pads_with_silence_and_records_voice() -> None:
    caller, far_end = (
        RtpEndpoint(port=free_port(tcp=False, udp=True)),
        RtpEndpoint(port=free_port(tcp=False, udp=True)),
    )
    await caller.open()
    await far_end.open()
    try:
        tone = array("h", (int(10000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(800)))
        caller.queue_silence(0.1)
        caller.queue_pcm(tone.tobytes())
        caller.start_sending(("127.0.0.1", far_end.port))
        await asyncio.wait_for(caller.wait_sent(), 5)
        await asyncio.wait_for(far_end.voice_heard.wait(), 5)
        # silence keeps flowing after the script: 100 ms silence + 100 ms tone, then padding
        for _ in range(100):  # packets leave every 20 ms; the socket has no event to await
            if len(far_end.packets) > 5 + 5:
                break
            await asyncio.sleep(0.02)
        packets = list(far_end.packets)
        assert all(len(p.payload) == PACKET_SAMPLES and p.payload_type == 0 for p in packets)
        seqs = [p.seq for p in packets]
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))
        assert len(packets) > 5 + 5
        assert rms(far_end.received_pcm()) > 1000
    finally:
        await caller.close()
        await far_end.close()
