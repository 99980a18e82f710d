"""The instructions rendered from a brain: stable, complete, and honest about being an AI."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from agent.brain import greeting_instructions, load_brain, render_instructions
from agent.flows.booking import booking_instructions

BRAINS = Path(__file__).resolve().parents[2] / "brains"


@pytest.mark.parametrize("name", ["plumbing", "dental"])
def test_render_is_byte_stable(name: str) -> None:
    first = render_instructions(load_brain(BRAINS / f"{name}.yaml"))
    second = render_instructions(load_brain(BRAINS / f"{name}.yaml"))
    assert first == second
    assert first.encode() == second.encode()
    # no clock in the prompt: today's date never appears
    assert date.today().isoformat() not in first
    assert "{business}" not in first


def test_plumbing_prompt_has_the_facts_and_the_rules() -> None:
    brain = load_brain(BRAINS / "plumbing.yaml")
    prompt = render_instructions(brain)
    assert "You are the AI phone receptionist for Rose City Plumbing" in prompt
    assert "AI assistant" in prompt and "first sentence" in prompt
    assert "2140 SE Division Street" in prompt
    assert "Monday to Friday 7 AM to 6 PM; Saturday 8 AM to 12 PM; Sunday closed" in prompt
    assert "- 2026-12-24, Christmas Eve: 7 AM to 12 PM" in prompt
    assert "- 2026-12-25, Christmas: closed" in prompt
    assert "- Drain cleaning: 60 minutes, $120 to $150." in prompt
    assert "- Plumbing inspection: 60 minutes, $89." in prompt
    assert "$1,200 to $2,800 (Includes the new 40" in prompt
    assert "CCB number 201443" in prompt  # FAQ answer
    assert "ONLY from the facts below or from tool results" in prompt
    assert "Never invent" in prompt
    for tool in (
        "check_availability",
        "start_booking",
        "take_message",
        "escalate_to_human",
        "get_current_time",
    ):
        assert tool in prompt
    # the booking's own steps follow the receptionist's instructions unchanged (the cached prefix),
    # in order: availability, hold, name and number read back, the caller's yes, book, the code
    booking = booking_instructions(brain)
    assert booking.startswith(prompt) and len(booking) > len(prompt)
    steps = booking[len(prompt):]
    order = [
        steps.index(s)
        for s in (
            "call check_availability",
            "call hold_slot",
            "full name",
            "Call read_back_details",
            "the caller says yes, call book_appointment",
            "spell the confirmation code",
        )
    ]
    assert order == sorted(order)
    assert "one question at a time" in prompt.lower()
    assert "digit by digit" in prompt
    assert 'How soon do you need someone out?" (answers: today, this week' in prompt
    assert "lawyer, attorney, sue" in prompt
    # each department, the reasons that lead to it and when someone answers there
    assert "- on-call plumber: emergency, explicit_request, angry_caller, legal, complaint; answers Monday to Sunday open 24 hours." in prompt
    assert "- billing: pricing_dispute, billing; asked for as accounts, invoice" in prompt
    assert "answers Monday to Friday 8 AM to 5 PM; Saturday and Sunday closed." in prompt
    assert "smells gas" in prompt  # a guardrail from the brain


def test_dental_prompt_escalation_and_insurance() -> None:
    prompt = render_instructions(load_brain(BRAINS / "dental.yaml"))
    assert (
        "Monday to Thursday 8 AM to 12 PM and 1 PM to 5 PM; Friday 8 AM to 1 PM; Saturday and Sunday closed"
        in prompt
    )
    assert "the caller disputes a price" in prompt
    assert "legal action" in prompt and "malpractice" in prompt
    assert "Delta Dental PPO" in prompt
    assert "- Whitening: 90 minutes, $350." in prompt


@pytest.mark.parametrize(
    ("name", "business"), [("plumbing", "Rose City Plumbing"), ("dental", "Lakeview Family Dental")]
)
def test_greeting_discloses_ai_in_first_sentence(name: str, business: str) -> None:
    brain = load_brain(BRAINS / f"{name}.yaml")
    text = greeting_instructions(brain)
    assert brain.greeting_text() in text
    assert "{business}" not in text
    first = re.split(r"(?<=[.!?])\s", brain.greeting_text())[0]
    assert business in first and re.search(r"\bAI\b", first)
    assert greeting_instructions(brain) == text
