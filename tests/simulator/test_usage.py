"""The simulator bills like the real Realtime API, so call costs in tests are real numbers: audio by
its length (caller audio 1 token per 100 ms, agent audio 1 token per 50 ms, as OpenAI documents),
the whole conversation as the input of every response, and cancelled responses too."""

from __future__ import annotations

import asyncio
import base64
import math
from typing import Any

from livekit.plugins import openai

from simulator.server import RealtimeSimulator

TIMEOUT = 20.0
INSTRUCTIONS = "You answer the phone for Bright Smile Dental."
CALLER_AUDIO_MS = 2000  # 2 s of 24 kHz PCM16: 20 input audio tokens


def _model(sim: RealtimeSimulator) -> openai.realtime.RealtimeModel:
    return openai.realtime.RealtimeModel(
        base_url=sim.base_url, api_key="sim", turn_detection=None, modalities=["audio"]
    )


def _sent_audio_ms(sim: RealtimeSimulator, response_id: str) -> int:
    # deltas are recorded as their decoded byte length; 48 bytes are 1 ms at 24 kHz PCM16
    return sum(
        e["delta"] // 48
        for e in sim.server_events("response.output_audio.delta")
        if e["response_id"] == response_id
    )


async def _done(sim: RealtimeSimulator, n: int) -> list[dict[str, Any]]:
    await sim.wait_for(lambda: len(sim.server_events("response.done")) >= n, within=TIMEOUT)
    return [e["response"] for e in sim.server_events("response.done")]


async def test_usage_counts_audio_by_its_length_and_the_conversation_as_input() -> None:
    first, second = "Thanks for calling, how can I help?", "Sure."
    async with RealtimeSimulator(
        voice_mode="tone", default_script=[{"say": first}, {"say": second}]
    ) as sim:
        model = _model(sim)
        rt = model.session()
        try:
            pcm = bytes(CALLER_AUDIO_MS * 48)
            rt.send_event(
                {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
            )
            sim.queue_transcript("I'd like to book a cleaning.")
            rt.send_event({"type": "input_audio_buffer.commit"})
            await asyncio.wait_for(rt.generate_reply(), TIMEOUT)
            await _done(sim, 1)
            await asyncio.wait_for(rt.generate_reply(), TIMEOUT)
            one, two = await _done(sim, 2)
        finally:
            await rt.aclose()
            await model.aclose()

    reply_ms = _sent_audio_ms(sim, one["id"])
    assert reply_ms > 1000  # the tone voice speaks a sentence for over a second
    u1, u2 = one["usage"], two["usage"]
    # the caller's 2 s are 20 tokens; the agent's reply is 1 token per 50 ms and ~4 characters a token
    assert u1["input_token_details"]["audio_tokens"] == 20
    assert u1["output_token_details"] == {
        "audio_tokens": math.ceil(reply_ms / 50),
        "text_tokens": math.ceil(len(first) / 4),
    }
    # the next response is billed for the whole conversation again, the first reply as audio
    assert u2["input_token_details"]["audio_tokens"] == 20 + math.ceil(reply_ms / 50)
    assert u2["output_token_details"]["text_tokens"] == math.ceil(len(second) / 4)
    for u in (u1, u2):
        details = u["input_token_details"]
        assert u["input_tokens"] == details["text_tokens"] + details["audio_tokens"]
        assert u["output_tokens"] == sum(u["output_token_details"].values())
        assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"]
        cached = details["cached_tokens_details"]
        assert details["cached_tokens"] == cached["text_tokens"] + cached["audio_tokens"]
    # the second prompt starts with the first one: that prefix is cached, in 64-token blocks
    assert u2["input_token_details"]["cached_tokens"] == u1["input_tokens"] // 64 * 64


async def test_a_cancelled_response_reports_the_usage_it_ran_up() -> None:
    line = (
        "Our hygienists see patients every weekday, and we keep early slots for people before work. "
        * 3
    )
    # real-time pacing keeps the response open long enough to cancel it halfway
    async with RealtimeSimulator(
        voice_mode="tone", pace=1.0, default_script=[{"say": line}]
    ) as sim:
        model = _model(sim)
        rt = model.session()
        try:
            await rt.update_instructions(INSTRUCTIONS)
            await asyncio.wait_for(rt.generate_reply(), TIMEOUT)
            await sim.wait_for(
                lambda: len(sim.server_events("response.output_audio.delta")) >= 5, within=TIMEOUT
            )
            rt.interrupt()
            (done,) = await _done(sim, 1)
        finally:
            await rt.aclose()
            await model.aclose()

    assert done["status"] == "cancelled"
    sent_ms = _sent_audio_ms(sim, done["id"])
    usage = done["usage"]
    assert (
        usage["input_tokens"]
        == usage["input_token_details"]["text_tokens"]
        == math.ceil(len(INSTRUCTIONS) / 4)
    )
    # billed for the audio generated before the cancel, not for the whole line
    assert usage["output_token_details"]["audio_tokens"] == math.ceil(sent_ms / 50)
    assert 0 < usage["output_token_details"]["text_tokens"] < math.ceil(len(line) / 4)
