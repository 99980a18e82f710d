"""Recording with consent, on audio calls through the simulated line: the file holds the caller and the
agent on their own channels for the length of the call, and a caller who objects leaves no recording
behind, with the call's report saying so."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from agent.brain import load_brain
from agent.settings import Settings, load_settings
from simulator.runner import format_report, simulate
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "scenarios" / "recording"
WINDOW_S = 0.05
VOICE = 0.01  # RMS (full scale 1.0) above which a window holds a voice; silence is exact zeros here
PAUSE_S = 0.7  # pauses inside one turn (between words and sentences) are shorter than this


def recording_settings(directory: Path) -> Settings:
    return load_settings(openai_api_key="simulator", recordings_dir=directory)


def channels(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """The recording decoded: caller (left) and agent (right) samples, and the sample rate."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        blocks = [f.to_ndarray() for f in container.decode(stream)]
    audio = np.concatenate(blocks, axis=1)
    return audio[0], audio[1], rate


def turns(samples: np.ndarray, rate: int) -> list[tuple[float, float]]:
    """Stretches of voice, (start s, end s), pauses shorter than PAUSE_S bridged."""
    step = int(rate * WINDOW_S)
    n = len(samples) // step
    rms = np.sqrt(np.mean(samples[: n * step].reshape(n, step) ** 2, axis=1))
    out: list[tuple[float, float]] = []
    for i in np.flatnonzero(rms > VOICE):
        t = i * WINDOW_S
        if out and t - out[-1][1] < PAUSE_S:
            out[-1] = (out[-1][0], t + WINDOW_S)
        else:
            out.append((t, t + WINDOW_S))
    return out


async def test_recorded_call_holds_both_voices_for_the_length_of_the_call(
    tmp_path: Path, call_stores, shared_sim
) -> None:
    scenario = load_scenario(SCENARIOS / "recorded-call.yaml")
    report = await simulate(
        scenario, audio=True, settings=recording_settings(tmp_path), sim=shared_sim, stores=call_stores
    )
    assert report.passed, format_report(report)
    # the greeting the model was asked for carries the consent line, after the AI disclosure
    brain = load_brain(ROOT / "brains" / "plumbing.yaml")
    greeting = shared_sim.client_events("response.create", key=report.sim_key)[0]["response"]["instructions"]
    assert f"AI assistant. {brain.recording.consent_line}" in greeting

    row = report.db["calls"][0]
    path = Path(row["recording_path"])
    assert path.parent == tmp_path and path.exists(), row
    caller, agent, rate = channels(path)
    # the row states the file's length, and the file runs from the answer to the hang-up
    assert abs(row["recording_seconds"] - len(caller) / rate) < 0.05, row["recording_seconds"]
    call_s = (row["ended_at"] - row["answered_at"]).total_seconds()
    assert abs(row["recording_seconds"] - call_s) < 0.5, (row["recording_seconds"], call_s)
    # both voices, each on its own channel, turn by turn as the call went: greeting, question,
    # answer, goodbye (nothing of the agent leaks onto the caller's channel, or back)
    spoken = [(start, "caller") for start, _ in turns(caller, rate)]
    spoken += [(start, "agent") for start, _ in turns(agent, rate)]
    assert [who for _, who in sorted(spoken)] == ["agent", "caller", "agent", "caller"], sorted(spoken)
    assert report.call_report["recording"] == {"consented": True, "stopped_at_s": None}


async def test_caller_who_objects_is_not_recorded_and_the_report_says_so(
    tmp_path: Path, call_stores, shared_sim
) -> None:
    scenario = load_scenario(SCENARIOS / "recording-declined.yaml")
    report = await simulate(
        scenario, audio=True, settings=recording_settings(tmp_path), sim=shared_sim, stores=call_stores
    )
    assert report.passed, format_report(report)
    # the model had the tool and was told when to use it
    tools = shared_sim.client_events("session.update", key=report.sim_key)
    offered = {t["name"] for e in tools for t in e.get("session", {}).get("tools", [])}
    assert "stop_recording" in offered
    instructions = next(e["session"]["instructions"] for e in tools if "instructions" in e.get("session", {}))
    assert "call stop_recording at once" in instructions
    # nothing of the call is kept: no file, no link on the row; the call itself went on
    assert list(tmp_path.iterdir()) == []
    row = report.db["calls"][0]
    assert row["recording_path"] is None and row["recording_seconds"] is None
    assert row["outcome"] == "answered"
    recording = report.call_report["recording"]
    assert recording["consented"] is False
    assert 0 < recording["stopped_at_s"] < report.call_report["timing"]["duration_s"], report.call_report
