"""The call report's optional prose summary: with CALL_SUMMARY_MODEL set, a simulated call's stored
report carries the text the summary model wrote from the call's recorded transcript; unset, it
carries none; and a summary model that answers too late or fails leaves the stored report whole,
without the summary, and says why in the log."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from agent.settings import load_settings
from simulator.faults import Fault
from simulator.runner import CallReport, format_report, simulate
from simulator.scenario import load_scenario
from simulator.server import RealtimeSimulator, simulated_summary

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "price-question.yaml"
SUMMARY_MODEL = "gpt-4.1-mini"


async def _call(
    sim: RealtimeSimulator, stores: Any, fault: Fault | None = None, **settings: Any
) -> CallReport:
    scenario = load_scenario(SCENARIO).model_copy(update={"fault": fault})
    report = await simulate(
        scenario,
        sim=sim,
        stores=stores,
        settings=load_settings(openai_api_key="simulator", **settings),
    )
    assert report.passed, format_report(report)
    return report


def _summary_requests(
    sim: RealtimeSimulator, key: str
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(request, answer) for k, request, answer in sim.chat_completions if k == key]


def _assert_report_whole(stored: dict[str, Any]) -> None:
    # what the structured report holds for this call, summary or not
    assert stored["outcome"] == "answered"
    assert stored["cost"]["total"] > 0
    assert stored["tools"]["calls"] == 1
    assert stored["timing"]["response_gap_s"]["turns"] >= 1


async def test_the_summary_models_text_lands_in_the_stored_report(shared_sim, call_stores) -> None:
    report = await _call(shared_sim, call_stores, call_summary_model=SUMMARY_MODEL)

    ((request, answer),) = _summary_requests(shared_sim, report.sim_key)
    assert request["model"] == SUMMARY_MODEL
    # built from what Postgres recorded of the call: every turn, in order, as the caller and agent said it
    turns = report.db["transcript_turns"]
    prompt = request["messages"][-1]["content"]
    said = [f"{'Caller' if t['role'] == 'caller' else 'Agent'}: {t['text']}" for t in turns]
    assert [
        line for line in prompt.splitlines() if line.startswith(("Caller: ", "Agent: "))
    ] == said

    stored = report.call_report  # read back from calls.summary
    _assert_report_whole(stored)
    outcome = f"Outcome: {stored['outcome']} (ended: {stored['end_reason']})"
    assert stored["prose"] == {
        "text": simulated_summary("\n".join([outcome, *said])),
        "model": SUMMARY_MODEL,
        "input_tokens": answer["usage"]["prompt_tokens"],
        "output_tokens": answer["usage"]["completion_tokens"],
    }
    assert stored["prose"]["text"].startswith("Outcome: answered")
    assert (
        'The caller first said: "How much does it cost to fix a water heater?"'
        in stored["prose"]["text"]
    )


async def test_without_a_summary_model_no_summary_is_asked_for(shared_sim, call_stores) -> None:
    report = await _call(shared_sim, call_stores)

    assert _summary_requests(shared_sim, report.sim_key) == []
    _assert_report_whole(report.call_report)
    assert "prose" not in report.call_report


async def test_a_summary_later_than_the_limit_leaves_the_report_without_it(
    shared_sim, call_stores, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="receptionist.call_summary")
    report = await _call(
        shared_sim, call_stores, Fault(kind="summary_late", delay_s=3),
        call_summary_model=SUMMARY_MODEL, call_summary_timeout=0.5,
    )  # fmt: skip

    assert len(shared_sim.faults_fired(report.sim_key)) == 1  # the summary was asked for, and hung
    _assert_report_whole(report.call_report)
    assert "prose" not in report.call_report
    assert "took longer than 0.5 s" in caplog.text


async def test_a_failing_summary_model_leaves_the_report_without_it(
    shared_sim, call_stores, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="receptionist.call_summary")
    report = await _call(
        shared_sim, call_stores, Fault(kind="summary_error"), call_summary_model=SUMMARY_MODEL
    )

    assert len(shared_sim.faults_fired(report.sim_key)) == 1
    _assert_report_whole(report.call_report)
    assert "prose" not in report.call_report
    assert f"{SUMMARY_MODEL} failed" in caplog.text and "500" in caplog.text
