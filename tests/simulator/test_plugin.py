"""The real livekit-plugins-openai RealtimeModel, inside a real AgentSession, against the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import pytest
from livekit.agents import Agent, AgentSession, RunContext, function_tool, llm
from livekit.agents.voice.run_result import ChatMessageEvent, FunctionCallEvent
from livekit.plugins import openai, silero
from openai.types.realtime.realtime_audio_input_turn_detection import ServerVad

from simulator.line import CallerEar, CallerMicrophone
from simulator.server import RealtimeSimulator
from simulator.speech import render_speech

TURN_TIMEOUT = 20.0  # a missing metadata echo alone costs 10 s per reply; this catches stalls


class FrontDesk(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You answer the phone for Bright Smile Dental.")
        self.hours_asked: list[str] = []

    @function_tool
    async def get_hours(self, context: RunContext, day: str) -> dict[str, Any]:
        """Opening hours for a day of the week."""
        self.hours_asked.append(day)
        return {"day": day, "open": "08:00", "close": "17:00", "slots": [{"at": "09:30"}]}


def realtime_model(
    base_url: str, modalities: Literal["text", "audio"] = "text"
) -> openai.realtime.RealtimeModel:
    return openai.realtime.RealtimeModel(
        base_url=base_url, api_key="sim", turn_detection=None, modalities=[modalities]
    )


@asynccontextmanager
async def call(
    base_url: str,
    *,
    modalities: Literal["text", "audio"] = "text",
    speaker: CallerEar | None = None,
    microphone: CallerMicrophone | None = None,
) -> AsyncIterator[tuple[AgentSession, FrontDesk]]:
    model = realtime_model(base_url, modalities)
    session = AgentSession(llm=model, vad=None, turn_handling={"turn_detection": "manual"})
    if speaker is not None:
        session.output.audio = speaker
    if microphone is not None:
        session.input.audio = microphone
    agent = FrontDesk()
    try:
        await session.start(agent)
        yield session, agent
    finally:
        await session.aclose()
        await model.aclose()


def replies(result: Any) -> list[str]:
    return [
        e.item.text_content
        for e in result.events
        if isinstance(e, ChatMessageEvent) and e.item.role == "assistant"
    ]


async def test_text_turn_returns_scripted_reply(realtime_sim: RealtimeSimulator) -> None:
    realtime_sim.add_script("t", [{"say": "Thanks for calling Bright Smile Dental."}])
    async with call(realtime_sim.url_for("t")) as (session, _):
        result = await asyncio.wait_for(session.run(user_input="Hello?"), TURN_TIMEOUT)
    assert replies(result) == ["Thanks for calling Bright Smile Dental."]
    assert realtime_sim.script_problems() == []


async def test_startup_and_turn_traffic_matches_the_protocol(
    realtime_sim: RealtimeSimulator,
) -> None:
    realtime_sim.add_script("t", [{"say": "Hi."}])
    async with call(realtime_sim.url_for("t")) as (session, _):
        await asyncio.wait_for(session.run(user_input="Hello?"), TURN_TIMEOUT)

    updates = realtime_sim.client_events("session.update", key="t")
    assert len(updates) == 3
    first, second, third = (u["session"] for u in updates)
    assert first["output_modalities"] == ["text"]
    assert first["audio"]["input"]["turn_detection"] is None
    assert first["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert second["instructions"].startswith("You answer the phone")
    assert [t["name"] for t in third["tools"]] == ["get_hours"]

    creates = realtime_sim.client_events("conversation.item.create", key="t")
    assert creates[0]["item"]["content"] == [{"type": "input_text", "text": "Hello?"}]
    (request,) = realtime_sim.client_events("response.create", key="t")
    (created,) = realtime_sim.server_events("response.created", key="t")
    # rule 1: the echo is what lets the plugin match the reply to its request
    assert created["response"]["metadata"] == {"client_event_id": request["event_id"]}
    (done,) = realtime_sim.server_events("response.done", key="t")
    usage = done["response"]["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert set(usage["input_token_details"]) >= {"text_tokens", "audio_tokens", "cached_tokens"}
    # turn taking is local: the server never speaks up by itself
    assert not realtime_sim.server_events("input_audio_buffer.speech_started")
    assert len(realtime_sim.server_events("response.created")) == 1


async def test_tool_step_runs_the_tool_and_the_reply_quotes_its_output(
    realtime_sim: RealtimeSimulator,
) -> None:
    realtime_sim.add_script(
        "t",
        [
            {"say": "Let me check.", "tool": "get_hours", "args": {"day": "monday"}},
            {
                "say": "On {output[day]} we open at {output[open]}; first slot {output[slots][0][at]}."
            },
        ],
    )
    async with call(realtime_sim.url_for("t")) as (session, agent):
        result = await asyncio.wait_for(
            session.run(user_input="When do you open Monday?"), TURN_TIMEOUT
        )

    assert agent.hours_asked == ["monday"]
    calls = [e.item for e in result.events if isinstance(e, FunctionCallEvent)]
    assert [(c.name, c.arguments) for c in calls] == [("get_hours", '{"day": "monday"}')]
    assert replies(result) == ["Let me check.", "On monday we open at 08:00; first slot 09:30."]
    assert [o.output for o in realtime_sim.tool_outputs][0].startswith("{'day': 'monday'")
    # after a tool output the plugin asks again, with the tool choice; the server never answers on its own
    follow_up = realtime_sim.client_events("response.create", key="t")[-1]
    assert follow_up["response"]["tool_choice"] == "auto"
    assert realtime_sim.script_problems() == []


async def test_missing_output_field_is_spoken_verbatim_and_recorded(
    realtime_sim: RealtimeSimulator,
) -> None:
    realtime_sim.add_script(
        "t",
        [
            {"tool": "get_hours", "args": {"day": "sunday"}},
            {"say": "We open at {output[opens_at]}."},
        ],
    )
    async with call(realtime_sim.url_for("t")) as (session, _):
        result = await asyncio.wait_for(session.run(user_input="Sunday?"), TURN_TIMEOUT)
    assert replies(result) == ["We open at {output[opens_at]}."]
    assert any("{output[opens_at]}" in p for p in realtime_sim.script_problems("t"))


async def test_exhausted_script_says_so_and_records_it(realtime_sim: RealtimeSimulator) -> None:
    async with call(realtime_sim.base_url) as (session, _):
        result = await asyncio.wait_for(session.run(user_input="Hello?"), TURN_TIMEOUT)
    assert replies(result) == ["(simulator) My script has ended."]
    assert any("script ended" in p for p in realtime_sim.script_problems())


async def test_overlapping_response_create_is_rejected_with_its_event_id() -> None:
    # the first reply is held back so the second request surely overlaps it
    async with RealtimeSimulator(
        model_delay_ms=300, default_script=[{"say": "One."}, {"say": "Two."}]
    ) as sim:
        model = realtime_model(sim.base_url)
        rt = model.session()
        try:
            first = rt.generate_reply()
            second = rt.generate_reply()
            generation = await asyncio.wait_for(first, TURN_TIMEOUT)
            with pytest.raises(llm.RealtimeError):
                await asyncio.wait_for(second, TURN_TIMEOUT)
            assert generation.user_initiated
            await sim.wait_for(
                lambda: bool(sim.server_events("response.done")), within=TURN_TIMEOUT
            )
        finally:
            await rt.aclose()
            await model.aclose()
    requests = sim.client_events("response.create")
    (error,) = sim.server_events("error")
    assert error["error"]["code"] == "conversation_already_has_active_response"
    assert error["error"]["event_id"] == requests[1]["event_id"]
    assert len(sim.server_events("response.done")) == 1


async def test_cancel_with_nothing_active_gets_the_cancellation_error(
    realtime_sim: RealtimeSimulator,
) -> None:
    model = realtime_model(realtime_sim.base_url)
    rt = model.session()
    received: list[dict[str, Any]] = []
    rt.on("openai_server_event_received", received.append)
    try:
        rt.send_event({"type": "response.cancel", "event_id": "cancel_when_idle"})
        await realtime_sim.wait_for(
            lambda: any(e["type"] == "error" for e in received), within=TURN_TIMEOUT
        )
    finally:
        await rt.aclose()
        await model.aclose()
    (error,) = [e["error"] for e in received if e["type"] == "error"]
    assert error["message"] == "Cancellation failed: no active response found"
    assert error["event_id"] == "cancel_when_idle"


async def test_short_commit_is_rejected(realtime_sim: RealtimeSimulator) -> None:
    model = realtime_model(realtime_sim.base_url)
    rt = model.session()
    try:
        rt.send_event({"type": "input_audio_buffer.append", "audio": "AAAA" * 100})  # 300 bytes
        rt.send_event({"type": "input_audio_buffer.commit", "event_id": "commit_short"})
        await realtime_sim.wait_for(
            lambda: bool(realtime_sim.server_events("error")), within=TURN_TIMEOUT
        )
    finally:
        await rt.aclose()
        await model.aclose()
    (error,) = realtime_sim.server_events("error")
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"
    assert error["error"]["event_id"] == "commit_short"
    assert (
        realtime_sim.client_events("input_audio_buffer.append")[0]["audio"] == 300
    )  # recorded as a length


async def test_reconnect_starts_a_fresh_conversation_and_replays_history(
    realtime_sim: RealtimeSimulator,
) -> None:
    realtime_sim.add_script(
        "t", [{"say": "Hello, how can I help?"}, {"say": "Yes, we do cleanings."}]
    )
    async with call(realtime_sim.url_for("t")) as (session, _):
        await asyncio.wait_for(session.run(user_input="Hi there"), TURN_TIMEOUT)
        await realtime_sim.disconnect("t")
        # the plugin reconnects and replays the history it has, chained from the root
        await realtime_sim.wait_for(
            lambda: (
                len(realtime_sim.recorded(key="t", connection=2, type="conversation.item.added"))
                >= 2
            ),
            within=TURN_TIMEOUT,
        )
        result = await asyncio.wait_for(
            session.run(user_input="Do you do cleanings?"), TURN_TIMEOUT
        )

    assert replies(result) == [
        "Yes, we do cleanings."
    ]  # the cursor belongs to the key, not the socket
    replay = [
        e.event
        for e in realtime_sim.recorded(
            key="t", connection=2, direction="client", type="conversation.item.create"
        )
    ]
    assert replay[0]["previous_item_id"] == "root"
    assert replay[0]["item"]["content"][0]["text"] == "Hi there"
    assert replay[1]["previous_item_id"] == replay[0]["item"]["id"]
    assert replay[1]["item"]["role"] == "assistant"
    assert replay[1]["item"]["content"][0]["text"] == "Hello, how can I help?"
    acks = [
        e.event
        for e in realtime_sim.recorded(key="t", connection=2, type="conversation.item.added")
    ]
    assert acks[0]["previous_item_id"] is None  # "root" comes back as null on a fresh conversation
    assert realtime_sim.recorded(key="t", connection=2, direction="client", type="session.update")
    assert not realtime_sim.server_events("error")


async def test_audio_turn_uses_the_queued_transcript_and_speaks(
    realtime_sim: RealtimeSimulator,
) -> None:
    realtime_sim.add_script(
        "t",
        [
            {"say": "Thanks for calling."},
            {"say": "One moment.", "tool": "get_hours", "args": {"day": "monday"}},
            {"say": "We open at {output[open]}."},
        ],
    )
    realtime_sim.queue_transcript("When do you open on Monday?", key="t")
    speaker = CallerEar()
    microphone = CallerMicrophone(sample_rate=48000)
    async with call(
        realtime_sim.url_for("t"), modalities="audio", speaker=speaker, microphone=microphone
    ) as (session, agent):
        greeting = session.generate_reply(instructions="Greet the caller.")
        await asyncio.wait_for(greeting.wait_for_playout(), TURN_TIMEOUT)
        # what the caller says is the queued transcript; the audio only has to be long enough to commit
        await asyncio.wait_for(microphone.say(bytes(2 * 48000 // 2)), TURN_TIMEOUT)
        session.commit_user_turn()
        await realtime_sim.wait_for(
            lambda: len(realtime_sim.server_events("response.done", key="t")) == 3,
            within=TURN_TIMEOUT,
        )
        await realtime_sim.wait_for(
            lambda: len(speaker.segments) == 3 and speaker.segments[-1].ended is not None,
            within=TURN_TIMEOUT,
        )

        def messages() -> list[tuple[str, str | None]]:
            return [(m.role, m.text_content) for m in session.history.items if m.type == "message"]

        # the last reply joins the history once LiveKit has finished its playout, a moment after the
        # caller's ear has heard its final frame
        await realtime_sim.wait_for(lambda: len(messages()) >= 4, within=TURN_TIMEOUT)
        history = messages()

    assert agent.hours_asked == ["monday"]
    assert history == [
        ("assistant", "Thanks for calling."),
        ("user", "When do you open on Monday?"),
        ("assistant", "One moment."),
        ("assistant", "We open at 08:00."),
    ]
    assert all(s.played_s > 0.3 and not s.interrupted for s in speaker.segments)
    (committed,) = realtime_sim.server_events("input_audio_buffer.committed", key="t")
    (transcribed,) = realtime_sim.server_events(
        "conversation.item.input_audio_transcription.completed"
    )
    assert transcribed["item_id"] == committed["item_id"]
    audio_in = realtime_sim.server_events("response.done", key="t")[1]["response"]["usage"]
    assert audio_in["input_token_details"]["audio_tokens"] > 0
    assert realtime_sim.script_problems() == []


async def test_barge_in_cancels_then_truncates_what_was_heard() -> None:
    long_line = (
        "Our hygienists see patients every weekday, and we keep early slots for people before work. "
        * 3
    )
    # real-time pacing keeps the response open while the caller talks over it
    async with RealtimeSimulator(
        voice_mode="tone", pace=1.0, default_script=[{"say": long_line}]
    ) as sim:
        speaker = CallerEar()
        async with call(sim.base_url, modalities="audio", speaker=speaker) as (session, _):
            session.generate_reply(instructions="Explain the hours.")
            await sim.wait_for(
                lambda: len(sim.server_events("response.output_audio.delta")) >= 8,
                within=TURN_TIMEOUT,
            )
            await session.interrupt()
            await sim.wait_for(lambda: bool(sim.truncations), within=TURN_TIMEOUT)

    assert sim.client_events("response.cancel")
    done = sim.server_events("response.done")[0]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"]["type"] == "cancelled"
    assert done["output"][0]["status"] == "incomplete"
    (truncation,) = sim.truncations
    assert 0 < truncation.audio_end_ms <= truncation.audio_ms
    assert speaker.segments[0].interrupted
    # the cancel finished before anything after it was answered
    order = [(e.direction, e.type) for e in sim.events]
    assert order.index(("server", "response.done")) < order.index(
        ("server", "conversation.item.truncated")
    )
    spoken = sim.replies[0]
    assert not spoken[2] and long_line.startswith(spoken[1])


async def test_local_vad_turn_with_spoken_caller_audio(realtime_sim: RealtimeSimulator) -> None:
    # the production set-up: Silero hears espeak-ng speech, the plugin commits, then asks for a reply
    realtime_sim.add_script(
        "t", [{"say": "Thanks for calling."}, {"say": "Sure, I can book a cleaning."}]
    )
    realtime_sim.queue_transcript("I'd like to book a cleaning.", key="t")
    model = realtime_model(realtime_sim.url_for("t"), "audio")
    session = AgentSession(
        llm=model,
        vad=silero.VAD.load(),
        turn_handling={"turn_detection": "vad", "interruption": {"mode": "vad"}},
    )
    microphone, speaker = CallerMicrophone(sample_rate=16000), CallerEar()
    session.input.audio, session.output.audio = microphone, speaker
    try:
        await session.start(FrontDesk())
        await asyncio.wait_for(
            session.generate_reply(instructions="Greet.").wait_for_playout(), TURN_TIMEOUT
        )
        await asyncio.wait_for(
            microphone.say(render_speech("I'd like to book a cleaning.", 16000)), TURN_TIMEOUT
        )
        await realtime_sim.wait_for(
            lambda: len(speaker.segments) == 2 and speaker.segments[1].ended is not None,
            within=TURN_TIMEOUT,
        )

        def history() -> list[tuple[str, str | None]]:
            return [(m.role, m.text_content) for m in session.history.items if m.type == "message"]

        # the reply joins the history once LiveKit has handled its playout's end, just after the
        # audio's: wait for it rather than read at the audio's end (1 run in 6 read it too early)
        await realtime_sim.wait_for(lambda: len(history()) >= 3, within=TURN_TIMEOUT)
        said = history()
    finally:
        await session.aclose()
        await model.aclose()
    assert said == [
        ("assistant", "Thanks for calling."),
        ("user", "I'd like to book a cleaning."),
        ("assistant", "Sure, I can book a cleaning."),
    ]
    commit = realtime_sim.recorded(key="t", direction="client", type="input_audio_buffer.commit")
    follow = realtime_sim.recorded(key="t", direction="client", type="response.create")
    assert len(commit) == 1 and commit[0].t < follow[1].t
    assert not realtime_sim.server_events("input_audio_buffer.speech_started")


async def test_server_vad_mode_detects_speech_and_replies_by_itself() -> None:
    async with RealtimeSimulator(
        voice_mode="tone",
        server_vad=True,
        default_script=[{"say": "Thanks for calling."}, {"say": "Sure."}],
    ) as sim:
        sim.queue_transcript("Book a cleaning, please.")
        model = openai.realtime.RealtimeModel(
            base_url=sim.base_url,
            api_key="sim",
            modalities=["audio"],
            turn_detection=ServerVad(
                type="server_vad",
                silence_duration_ms=500,
                create_response=True,
                interrupt_response=True,
            ),
        )
        session = AgentSession(
            llm=model, vad=None, turn_handling={"turn_detection": "realtime_llm"}
        )
        microphone, speaker = CallerMicrophone(sample_rate=16000), CallerEar()
        session.input.audio, session.output.audio = microphone, speaker
        try:
            await session.start(FrontDesk())
            await asyncio.wait_for(
                session.generate_reply(instructions="Greet.").wait_for_playout(), TURN_TIMEOUT
            )
            await asyncio.wait_for(
                microphone.say(render_speech("Book a cleaning, please.", 16000)), TURN_TIMEOUT
            )
            await sim.wait_for(
                lambda: len(speaker.segments) == 2 and speaker.segments[1].ended is not None,
                within=TURN_TIMEOUT,
            )

            def messages() -> list[tuple[str, str | None]]:
                return [(m.role, m.text_content) for m in session.history.items if m.type == "message"]

            # the reply joins the history once its playout is reported done, a moment after its last
            # audio reached the caller's ear (CI once read the history in between)
            with contextlib.suppress(TimeoutError):
                await sim.wait_for(lambda: len(messages()) >= 3, within=TURN_TIMEOUT)
            history = messages()
        finally:
            await session.aclose()
            await model.aclose()
    assert history[1:] == [("user", "Book a cleaning, please."), ("assistant", "Sure.")]
    order = [e.type for e in sim.events if e.direction == "server"]
    started = order.index("input_audio_buffer.speech_started")
    assert order[started : started + 3] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert len(sim.client_events("response.create")) == 1  # the second reply was the server's own
    assert sim.server_events("response.created")[1]["response"]["metadata"] is None


async def test_item_edits_and_client_mistakes_are_answered_and_recorded(
    realtime_sim: RealtimeSimulator,
) -> None:
    model = realtime_model(realtime_sim.base_url)
    rt = model.session()
    item = {
        "id": "item_note",
        "type": "message",
        "role": "system",
        "content": [{"type": "input_text", "text": "Caller is a returning patient."}],
    }
    try:
        rt.send_event(
            {
                "type": "conversation.item.create",
                "event_id": "c1",
                "item": item,
                "previous_item_id": "root",
            }
        )
        rt.send_event({"type": "conversation.item.create", "event_id": "c2", "item": item})
        rt.send_event(
            {"type": "conversation.item.delete", "event_id": "d1", "item_id": "item_note"}
        )
        rt.send_event({"type": "response.audio.delta", "event_id": "beta1"})  # a beta name, not GA
        await realtime_sim.wait_for(
            lambda: len(realtime_sim.server_events("error")) == 2, within=TURN_TIMEOUT
        )
        await realtime_sim.wait_for(
            lambda: bool(realtime_sim.server_events("conversation.item.deleted")),
            within=TURN_TIMEOUT,
        )
    finally:
        await rt.aclose()
        await model.aclose()
    (added,) = realtime_sim.server_events("conversation.item.added")
    assert added["previous_item_id"] is None and added["item"]["id"] == "item_note"
    duplicate, unknown = (e["error"] for e in realtime_sim.server_events("error"))
    assert (duplicate["code"], duplicate["event_id"]) == ("item_create_duplicate_item_id", "c2")
    assert unknown["event_id"] == "beta1"
    assert realtime_sim.server_events("conversation.item.deleted")[0]["item_id"] == "item_note"
    assert any("response.audio.delta" in p for p in realtime_sim.problems)
