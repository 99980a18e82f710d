"""A stand-in agent for stack tests: joins the call's room, plays a 440 Hz tone, optionally hangs up.

Run as `python -m tests.phone.tone_agent start` with LIVEKIT_URL/KEY/SECRET set. The dispatch's
metadata steers it: {"hangup_after": 3} removes the SIP participant (livekit-sip sends BYE) after
3 s of tone; {"hangup_after": null} stays until the caller or the test ends the call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os

from livekit import api, rtc
from livekit.agents import AgentServer, JobContext, cli

AGENT_NAME = os.environ.get("TONE_AGENT_NAME", "test-receptionist")
RATE = 48000
FRAME_SAMPLES = RATE // 50  # 20 ms
TONE_HZ = 440.0

logger = logging.getLogger("tone-agent")


def _never_busy() -> float:
    # The default load measure is machine CPU; on a 2-core CI runner that is busy building or
    # running other tests the worker would mark itself full and calls would ring unanswered.
    return 0.0


server = AgentServer(
    port=0,  # the default 8081 is livekit-sip's health port in the dev stack
    host="127.0.0.1",
    num_idle_processes=1,
    load_fnc=_never_busy,
)


async def _play_tone(source: rtc.AudioSource) -> None:
    frame = rtc.AudioFrame.create(RATE, 1, FRAME_SAMPLES)
    samples = frame.data  # memoryview of int16
    phase = 0
    while True:
        for i in range(FRAME_SAMPLES):
            samples[i] = int(8000 * math.sin(2 * math.pi * TONE_HZ * (phase + i) / RATE))
        phase += FRAME_SAMPLES
        await source.capture_frame(frame)  # paces itself on the source's queue


@server.rtc_session(agent_name=AGENT_NAME)
async def entrypoint(ctx: JobContext) -> None:
    settings = json.loads(ctx.job.metadata or "{}")
    hangup_after = settings.get("hangup_after", 3)
    await ctx.connect()
    source = rtc.AudioSource(RATE, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    await ctx.room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    tone = asyncio.create_task(_play_tone(source))
    ctx.add_shutdown_callback(lambda: _cancel(tone))
    caller = await ctx.wait_for_participant(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP)
    logger.info("caller %s joined %s", caller.identity, ctx.room.name)
    if hangup_after is None:
        return
    await asyncio.sleep(float(hangup_after))
    await ctx.api.room.remove_participant(
        api.RoomParticipantIdentity(room=ctx.room.name, identity=caller.identity)
    )
    logger.info("hung up on %s", caller.identity)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()


if __name__ == "__main__":
    cli.run_app(server)
