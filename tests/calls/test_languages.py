"""Callers in other languages through the audio path (espeak-ng voices): a Spanish caller to a brain
that lists Spanish, and a French caller to an English-only brain who can only leave a message.

The simulated model cannot judge a language; what is ours is tested: the rules the instructions carry
to the model as it received them, the turns kept in Postgres, the message taken, and the language the
call report records (guessed from the caller's words)."""

from __future__ import annotations

from pathlib import Path

from simulator.runner import format_report, simulate
from simulator.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios" / "languages"


async def test_a_spanish_caller_is_answered_in_spanish(call_stores, shared_sim) -> None:
    scenario = load_scenario(SCENARIOS / "spanish-caller.yaml")
    report = await simulate(scenario, audio=True, sim=shared_sim, stores=call_stores)
    assert report.passed, format_report(report)
    # the caller's turn was heard (Silero ended it, the plugin committed it) before it was transcribed
    assert shared_sim.client_events("input_audio_buffer.commit", key=report.sim_key)
    turns = [(t["role"], t["text"]) for t in report.db["transcript_turns"]]
    assert ("caller", "Hola, ¿cuál es el horario del sábado, por favor?") in turns, turns
    assert ("agent", "El sábado abrimos, 8 AM to 12 PM. ¿Algo más?") in turns, turns
    assert report.db["calls"][0]["summary"]["language"] == "es"


async def test_a_caller_in_an_unlisted_language_leaves_a_message(call_stores, shared_sim) -> None:
    scenario = load_scenario(SCENARIOS / "french-caller-english-only.yaml")
    report = await simulate(scenario, audio=True, sim=shared_sim, stores=call_stores)
    assert report.passed, format_report(report)
    [message] = report.db["messages"]
    assert message["caller_name"] == "Claire Dubois" and "leaking" in message["body"], message
    stored = report.db["calls"][0]["summary"]
    assert stored["language"] == "fr" and stored["outcome"] == "message", stored
    assert any(f["flag"] == "language_not_served" and f["language"] == "fr" for f in stored["flags"])
