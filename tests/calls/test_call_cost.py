"""A simulated call's stored report costs the call right: the usage the simulator billed in each
`response.done`, priced by hand at OpenAI's published gpt-realtime prices, plus telephony minutes;
and the speculative replies nobody heard are counted apart, with their share of the cost."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from agent.settings import load_settings
from simulator.runner import _grade_call_report, format_report, simulate
from simulator.scenario import Scenario, load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

# USD per 1M tokens, gpt-realtime, as published by OpenAI (read 2026-11-28); the settings' defaults
TEXT_IN, TEXT_CACHED, TEXT_OUT = 4.00, 0.40, 16.00
AUDIO_IN, AUDIO_CACHED, AUDIO_OUT = 32.00, 0.40, 64.00
TWILIO_PER_MINUTE = 0.0034


def _by_hand(usage: dict[str, Any]) -> float:
    inp, out = usage["input_token_details"], usage["output_token_details"]
    cached = inp["cached_tokens_details"]
    dollars_per_million = (
        (inp["text_tokens"] - cached["text_tokens"]) * TEXT_IN
        + cached["text_tokens"] * TEXT_CACHED
        + (inp["audio_tokens"] - cached["audio_tokens"]) * AUDIO_IN
        + cached["audio_tokens"] * AUDIO_CACHED
        + out["text_tokens"] * TEXT_OUT
        + out["audio_tokens"] * AUDIO_OUT
    )
    return dollars_per_million / 1_000_000


def _billed(sim: Any, key: str) -> list[dict[str, Any]]:
    return [e["response"] for e in sim.server_events("response.done", key=key)]


def _summed(responses: list[dict[str, Any]]) -> dict[str, int]:
    def total(f: Any) -> int:
        return sum(f(r["usage"]) for r in responses)

    return {
        "input_text_tokens": total(lambda u: u["input_token_details"]["text_tokens"]),
        "input_audio_tokens": total(lambda u: u["input_token_details"]["audio_tokens"]),
        "cached_text_tokens": total(
            lambda u: u["input_token_details"]["cached_tokens_details"]["text_tokens"]
        ),
        "cached_audio_tokens": total(
            lambda u: u["input_token_details"]["cached_tokens_details"]["audio_tokens"]
        ),
        "output_text_tokens": total(lambda u: u["output_token_details"]["text_tokens"]),
        "output_audio_tokens": total(lambda u: u["output_token_details"]["audio_tokens"]),
    }


async def test_the_stored_report_costs_the_call_at_the_price_table(shared_sim, call_stores) -> None:
    scenario = load_scenario(SCENARIOS / "price-question.yaml")
    settings = load_settings(openai_api_key="simulator")  # default prices
    report = await simulate(scenario, sim=shared_sim, stores=call_stores, settings=settings)
    assert report.passed, format_report(report)
    stored = report.call_report  # as read back from Postgres
    billed = _billed(shared_sim, report.sim_key)
    assert len(billed) >= 3  # greeting, tool call, the answer

    usage = stored["usage"]
    assert {k: usage[k] for k in _summed(billed)} == _summed(billed)
    assert usage["cached_text_tokens"] > 0  # later prompts repeat the earlier ones
    assert usage["responses"] == {
        "requested": len(billed),
        "cancelled": 0,
        "speculative": 0,
        "speculative_cancelled": 0,
    }

    model = sum(_by_hand(r["usage"]) for r in billed)
    minutes = math.ceil(stored["timing"]["duration_s"] / 60)
    cost = stored["cost"]
    assert cost["realtime_model"] == "gpt-realtime" and cost["currency"] == "USD"
    assert cost["prices_as_of"] == "2026-11-28"
    assert math.isclose(cost["model"], model, abs_tol=1e-6) and model > 0
    assert cost["telephony_minutes"] == minutes == 1
    assert math.isclose(cost["telephony"], minutes * TWILIO_PER_MINUTE, abs_tol=1e-6)
    assert math.isclose(cost["total"], model + minutes * TWILIO_PER_MINUTE, abs_tol=1e-6)
    assert cost["speculative_share"] == 0.0


async def test_prices_set_in_the_environment_are_the_ones_charged(
    shared_sim, call_stores, monkeypatch
) -> None:
    monkeypatch.setenv("PRICE_TEXT_INPUT", "8")
    monkeypatch.setenv("PRICE_TEXT_CACHED_INPUT", "0")
    monkeypatch.setenv("PRICE_TEXT_OUTPUT", "0")
    monkeypatch.setenv("TWILIO_TRUNK_PER_MINUTE", "0.01")
    monkeypatch.setenv("LIVEKIT_SIP_PER_MINUTE", "0.005")
    monkeypatch.setenv("PRICES_AS_OF", "2027-01-01")
    scenario = load_scenario(SCENARIOS / "price-question.yaml")
    report = await simulate(
        scenario, sim=shared_sim, stores=call_stores, settings=load_settings(openai_api_key="sim")
    )
    assert report.passed, format_report(report)
    cost = report.call_report["cost"]
    billed = _billed(shared_sim, report.sim_key)
    # a text call: only uncached text input is charged, at 8 USD per 1M
    uncached = sum(
        r["usage"]["input_token_details"]["text_tokens"]
        - r["usage"]["input_token_details"]["cached_tokens_details"]["text_tokens"]
        for r in billed
    )
    assert math.isclose(cost["model"], uncached * 8 / 1_000_000, abs_tol=1e-6)
    assert math.isclose(cost["telephony"], cost["telephony_minutes"] * 0.015, abs_tol=1e-6)
    assert cost["prices_as_of"] == "2027-01-01"


async def test_speculative_replies_nobody_heard_are_counted_apart(shared_sim, call_stores) -> None:
    # the caller pauses mid-sentence: a reply is requested at the pause and cancelled when they go on
    scenario = Scenario.model_validate({
        "name": "speculation-cost",
        "brain": "brains/plumbing.yaml",
        "clock": "2026-11-24T10:00:00-08:00",
        "greeting": [{"say": "Rose City Plumbing, AI assistant. How can I help?"}],
        "turns": [
            {"caller": "I'd like to book ... a drain cleaning on Tuesday", "pause_ms": 300,
             "model": [{"say": "Sure, Tuesday works for a drain cleaning."}]},
            {"pause_before_ms": 1500, "hangup": True},
        ],
    })  # fmt: skip
    report = await simulate(scenario, audio=True, sim=shared_sim, stores=call_stores)
    assert report.passed, format_report(report)
    assert report.speculation["abandoned"] >= 1, report.speculation
    stored = report.call_report
    billed = _billed(shared_sim, report.sim_key)

    usage = stored["usage"]
    assert {k: usage[k] for k in _summed(billed)} == _summed(billed)
    assert usage["input_audio_tokens"] > 0 and usage["output_audio_tokens"] > 0
    responses = usage["responses"]
    assert responses["requested"] == len(billed)
    assert responses["cancelled"] == sum(r["status"] == "cancelled" for r in billed)
    assert responses["speculative"] == report.speculation["started"]
    assert responses["speculative_cancelled"] == report.speculation["abandoned"]

    # the abandoned speculative responses are the billed ones the caller never heard
    heard = {r["id"] for r in billed if r["status"] == "completed"}
    wasted = [r for r in billed if r["id"] not in heard]
    model = sum(_by_hand(r["usage"]) for r in billed)
    cost = stored["cost"]
    assert math.isclose(cost["model"], model, abs_tol=1e-6)
    assert math.isclose(
        cost["speculative_share"], sum(_by_hand(r["usage"]) for r in wasted) / model, abs_tol=1e-4
    )
    assert cost["speculative_share"] > 0


def test_a_scenario_can_bound_a_report_number() -> None:
    want = {"cost": {"total": "> 0", "currency": "USD"}}
    graded = _grade_call_report([], [], want, {"cost": {"total": 0.0123, "currency": "USD"}})
    assert [c.ok for c in graded] == [True]
    graded = _grade_call_report([], [], want, {"cost": {"total": 0.0, "currency": "USD"}})
    assert [c.ok for c in graded] == [False]
    # a bound is not a string to match, nor a number bound for a missing cost
    assert not _grade_call_report([], [], want, {"cost": None})[0].ok
