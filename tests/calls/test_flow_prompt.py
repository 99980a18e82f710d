"""What a flow's switch sends the model, as the simulator received it: the booking appends its steps
to the receptionist's instructions; the hand-over to a person keeps them unchanged and sends none."""

from __future__ import annotations

from pathlib import Path

from simulator.runner import format_report, simulate
from simulator.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


async def test_the_hand_over_to_a_person_sends_the_model_no_instructions(call_stores, shared_sim) -> None:
    report = await simulate(
        load_scenario(SCENARIOS / "ask-for-human.yaml"), audio=False, sim=shared_sim, stores=call_stores
    )
    assert report.passed, format_report(report)
    # the receptionist's, once as the call starts: not again into the hand-over, nor back out of it
    assert len(report.instructed) == 1, [i[-200:] for i in report.instructed]


async def test_the_booking_sends_its_steps_and_hands_the_receptionists_words_back(call_stores, shared_sim) -> None:
    report = await simulate(
        load_scenario(SCENARIOS / "book-drain-cleaning.yaml"), audio=False, sim=shared_sim, stores=call_stores
    )
    assert report.passed, format_report(report)
    receptionist, booking, again = report.instructed
    assert booking.startswith(receptionist) and "# Now: booking an appointment" in booking[len(receptionist):]
    assert again == receptionist
