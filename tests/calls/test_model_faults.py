"""The model fails mid-call, one fault each (tests/scenarios/model-faults/), through the real AgentSession
and OpenAI plugin against the simulator: what the caller hears, what crosses the line, and the call's
rows in Postgres."""

from __future__ import annotations

import asyncio
import os
import sys
import wave
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from agent.model_link import check_model_key
from agent.settings import Settings, SettingsError, load_settings
from simulator.faults import Fault
from simulator.runner import CallReport, format_report, simulate
from simulator.scenario import load_scenario
from simulator.server import DEFAULT_KEY, RealtimeSimulator

ROOT = Path(__file__).resolve().parents[2]
FAULTS = ROOT / "tests" / "scenarios" / "model-faults"
DEAD_AIR_S = 1.5  # the longest silence a waiting caller may hear (issue 13)


def _settings(tmp_path: Path) -> Settings:
    return load_settings(openai_api_key="simulator", voicemail_dir=tmp_path / "voicemail")


def _dead_air(report: CallReport, since: float) -> float | None:
    """Seconds from `since` until the caller hears agent audio (0 if it is already playing)."""
    starts = []
    for seg in report.heard:
        if seg["first_voice"] is None:
            continue
        if (
            seg["first_voice"] <= since
            and (seg["ended"] is None or seg["ended"] > since)
            and seg["played_ms"] > 0
        ):
            return 0.0
        if seg["first_voice"] >= since:
            starts.append(seg["first_voice"])
    return min(starts) - since if starts else None


def _wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


async def _call(name: str, tmp_path: Path, call_stores, sim: RealtimeSimulator) -> CallReport:
    scenario = load_scenario(FAULTS / f"{name}.yaml")
    report = await simulate(
        scenario, audio=True, settings=_settings(tmp_path), sim=sim, stores=call_stores
    )
    assert report.passed, format_report(report)
    assert sim.faults_fired(report.sim_key), "the fault never struck"
    return report


# README "Operator metrics": the Realtime error code each fault adds to what the ReceptionistRealtimeErrors alert counts
COUNTED_AS = {"server-error": "server_error", "drop-reconnects": "connection", "server-failed": "server_error",
              "rate-limited-failed": "inference_rate_limit_exceeded"}  # fmt: skip
RECONNECTS = {"drop-reconnects", "session-expired"}  # the plugin opens a new socket


def _realtime_errors(code: str) -> float:
    return REGISTRY.get_sample_value("receptionist_realtime_errors_total", {"code": code}) or 0.0


def _assert_replayed(report: CallReport, sim: RealtimeSimulator) -> None:
    """The call's second socket got the conversation back, and the answer was asked for and given there."""
    sockets = sorted({e.connection for e in sim.recorded(key=report.sim_key)})
    assert len(sockets) == 2, sockets
    replayed = sim.recorded(key=report.sim_key, connection=sockets[1], direction="client", type="conversation.item.create")
    roles = [e.event["item"].get("role") for e in replayed]
    # the greeting and the question came back
    assert "user" in roles and "assistant" in roles, roles
    spoken = [e.event for e in sim.recorded(key=report.sim_key, connection=sockets[1], direction="server",
                                            type="response.output_audio_transcript.done")]  # fmt: skip
    assert any("8 AM to 12 PM" in e["transcript"] for e in spoken), spoken


@pytest.mark.parametrize(
    "name", ["drop-reconnects", "rate-limited", "server-error", "session-expired",
             # as OpenAI reports a failure that strikes a reply it has started (response.done `failed`)
             "server-failed", "rate-limited-failed"],
)  # fmt: skip
async def test_a_failed_reply_is_covered_by_the_hold_line_then_answered(
    name: str, tmp_path: Path, call_stores, shared_sim
) -> None:
    """The caller hears the hold line within DEAD_AIR_S, then the answer. On the same call (each is
    ~15 s of audio in real time): a fault the operator's alert counts is counted once, and a new socket
    gets the conversation replayed."""
    code = COUNTED_AS.get(name)
    before = _realtime_errors(code) if code else 0.0
    report = await _call(name, tmp_path, call_stores, shared_sim)
    struck = shared_sim.faults_fired(report.sim_key)[0]
    # the caller waits from the fault or from the end of their question, whichever is later
    waiting = max(struck, report.spoken[0]["ended"])
    gap = _dead_air(report, waiting)
    assert gap is not None and gap <= DEAD_AIR_S, (gap, report.heard)
    agent = [t["text"] for t in report.transcript if t["role"] == "agent"]
    assert agent.index("One moment, please.") < next(
        i for i, t in enumerate(agent) if "8 AM to 12 PM" in t
    )
    assert report.db["calls"][0]["outcome"] == "answered"
    if code:
        assert _realtime_errors(code) == before + 1
    if name in RECONNECTS:
        _assert_replayed(report, shared_sim)


async def test_a_late_first_audio_is_covered_by_the_hold_line(
    tmp_path: Path, call_stores, shared_sim
) -> None:
    report = await _call("late-audio", tmp_path, call_stores, shared_sim)
    question_end = report.spoken[0]["ended"]
    gap = _dead_air(report, question_end)
    # the model's audio came 3 s late; the caller heard the hold line well before
    assert gap is not None and gap <= DEAD_AIR_S, (gap, report.heard)
    # and no truncate or protocol problem from the hold line ahead of the model's audio
    assert not shared_sim.script_problems(report.sim_key)


async def test_an_unreachable_model_hands_the_caller_to_the_team(
    tmp_path: Path, call_stores, shared_sim
) -> None:
    report = await _call("down-transfer", tmp_path, call_stores, shared_sim)
    assert report.line_actions == [("transfer", "tel:+15035550188")]
    gap = _dead_air(report, shared_sim.faults_fired(report.sim_key)[0])
    assert gap is not None and gap <= DEAD_AIR_S, (gap, report.heard)
    # the pre-rendered apology was heard in full before the transfer
    apology = next(t for t in report.transcript if "technical trouble" in t["text"])
    assert not apology["interrupted"]
    assert report.heard[-1]["played_ms"] > 2000 and not report.heard[-1]["interrupted"], (
        report.heard
    )
    call = report.db["calls"][0]
    assert (call["outcome"], call["end_reason"]) == ("escalated", "model_unreachable")


async def test_an_unreachable_model_after_hours_takes_a_voicemail(
    tmp_path: Path, call_stores, shared_sim
) -> None:
    report = await _call("down-voicemail", tmp_path, call_stores, shared_sim)
    assert report.line_actions == [("hang_up", "model_unreachable")]
    [message] = report.db["messages"]
    path = Path(message["audio_path"])
    assert path.parent == (tmp_path / "voicemail").resolve(), message
    assert message["body"].startswith("Voicemail (") and str(path) not in message["body"]
    recorded_s = _wav_seconds(path)
    said_s = report.spoken[-1]["ended"] - report.spoken[-1]["started"]
    assert recorded_s >= said_s, (recorded_s, said_s)  # the caller's whole message is on file
    call = report.db["calls"][0]
    assert (call["outcome"], call["end_reason"]) == ("message", "model_unreachable")


async def test_an_unreachable_model_and_a_silent_caller_end_as_an_error(
    tmp_path: Path, call_stores, shared_sim
) -> None:
    report = await _call("down-caller-silent", tmp_path, call_stores, shared_sim)
    assert report.line_actions == [("hang_up", "model_unreachable")]
    assert report.db["messages"] == []
    assert not list((tmp_path / "voicemail").glob("*.wav"))


async def test_a_wrong_api_key_gets_the_model_free_path(
    tmp_path: Path, call_stores, shared_sim
) -> None:
    report = await _call("bad-key", tmp_path, call_stores, shared_sim)
    assert report.line_actions == [("hang_up", "model_unreachable")]
    # the greeting never came: the hold line did, before the caller had waited 1.5 s
    first = min(s["first_voice"] for s in report.heard if s["first_voice"] is not None)
    first_fault = shared_sim.faults_fired(report.sim_key)[0]
    assert first - first_fault <= DEAD_AIR_S, report.heard
    assert report.db["messages"] and report.db["calls"][0]["outcome"] == "message"


async def test_the_worker_refuses_to_start_with_a_wrong_api_key(tmp_path: Path) -> None:
    async with RealtimeSimulator() as sim:
        accepted = _settings(tmp_path).model_copy(update={"openai_base_url": sim.base_url})
        await asyncio.to_thread(check_model_key, accepted)  # a key the endpoint takes passes
        sim.set_fault(DEFAULT_KEY, Fault(kind="bad_key"))
        with pytest.raises(SettingsError):
            await asyncio.to_thread(
                check_model_key,
                _settings(tmp_path).model_copy(update={"openai_base_url": sim.base_url}),
            )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "LIVEKIT_", "BRAIN", "DATABASE_URL"))
        }
        env |= {"PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sk-wrong", "OPENAI_BASE_URL": sim.base_url,
                "BRAIN_PATH": str(ROOT / "brains"), "LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secret"}  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent.worker", "start", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 2
    [line] = err.decode().strip().splitlines()
    assert line.startswith("receptionist: OPENAI_API_KEY was refused by the Realtime API"), line
    assert "HTTP 401" in line and "sk-wrong" not in line


async def test_a_text_call_whose_model_goes_away_is_handed_over(
    tmp_path: Path, call_stores, shared_sim
) -> None:
    """As in `console --text` against a simulator that stops mid-call (issue 13): the session no
    longer closes on the plugin's last failed reconnect; the call reaches the team."""
    scenario = load_scenario(FAULTS / "down-transfer.yaml")
    report = await simulate(
        scenario, audio=False, settings=_settings(tmp_path), sim=shared_sim, stores=call_stores
    )
    assert report.passed, format_report(report)
    assert report.line_actions == [("transfer", "tel:+15035550188")]
    call = report.db["calls"][0]
    assert (call["outcome"], call["end_reason"]) == ("escalated", "model_unreachable")
