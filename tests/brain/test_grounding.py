"""The grounding guard against both shipped brains: true statements pass untouched, false ones are
caught with a correction taken from the brain."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.brain import Brain, check_turn, load_brain

BRAINS = Path(__file__).resolve().parents[2] / "brains"
PDX = ZoneInfo("America/Los_Angeles")
CHI = ZoneInfo("America/Chicago")

NOW = {
    # plumbing
    "mon": datetime(2026, 3, 2, 10, 0, tzinfo=PDX),  # Monday, open
    "sun": datetime(2026, 3, 8, 11, 0, tzinfo=PDX),  # Sunday, closed
    "xmas-eve": datetime(2026, 12, 24, 9, 0, tzinfo=PDX),  # short day; tomorrow is Christmas
    # dental
    "d-mon": datetime(2026, 3, 2, 10, 0, tzinfo=CHI),
    "d-fri": datetime(2026, 3, 6, 10, 0, tzinfo=CHI),
    "d-lunch": datetime(2026, 3, 2, 12, 15, tzinfo=CHI),
}


@pytest.fixture(scope="module")
def brains() -> dict[str, Brain]:
    return {
        "plumbing": load_brain(BRAINS / "plumbing.yaml"),
        "dental": load_brain(BRAINS / "dental.yaml"),
    }


TRUE: list[tuple[str, str, str]] = [
    (
        "plumbing",
        "mon",
        "We're open Monday through Friday from 7 AM to 6 PM, and Saturday from 8 to noon.",
    ),
    ("plumbing", "mon", "We're not open on Sunday."),
    ("plumbing", "mon", "We are closed Sunday."),
    ("plumbing", "mon", "No, we're closed on Sundays, but we're open Saturday morning."),
    ("plumbing", "mon", "On Saturday, we open at 8."),
    ("plumbing", "mon", "We open at 7 a.m. on weekdays."),
    ("plumbing", "mon", "We close at 6 pm on Friday."),
    ("plumbing", "mon", "I have 9:30 on Monday."),
    ("plumbing", "mon", "Are you asking whether we're open on Sunday?"),
    ("plumbing", "mon", "Would you like me to check if we're open Sunday"),
    ("plumbing", "mon", "A drain cleaning is $120 to $150."),
    (
        "plumbing",
        "mon",
        "Drain cleaning usually runs between 120 and 150 dollars, and it takes about 60 minutes.",
    ),
    ("plumbing", "mon", "Water heater installation starts at $1,200."),
    ("plumbing", "mon", "A plumbing inspection takes 60 minutes and costs $89."),
    ("plumbing", "mon", "Outside our service area there's a $40 trip fee."),
    (
        "plumbing",
        "mon",
        "After hours there's a $150 emergency fee on top of the drain cleaning price.",
    ),
    ("plumbing", "mon", "Our phone number is 503-555-0100."),
    (
        "plumbing",
        "mon",
        "Your confirmation code is K7P2Q9, and your drain cleaning is booked for Saturday at 8:30.",
    ),
    ("plumbing", "mon", "Our emergency line is open on Sundays."),
    ("plumbing", "mon", "We're open today until 6."),
    ("plumbing", "sun", "Sorry, we're closed today."),
    ("plumbing", "xmas-eve", "We're closed tomorrow for Christmas."),
    ("plumbing", "mon", "We're open every day except Sunday."),
    ("plumbing", "mon", "Leak repair is anywhere from $95 to $350, depending on the fix."),
    ("plumbing", "mon", "Yes, we're open right now."),
    ("plumbing", "mon", "The water heater repair runs $150 to $400, and parts are extra."),
    ("plumbing", "mon", "We're open weekdays, so the earliest I can offer is Tuesday at 7."),
    ("plumbing", "mon", "We open at 8 on Saturdays and 7 on weekdays."),
    ("plumbing", "mon", "Our hours are Monday to Friday, 7 to 6, and Saturday 8 to 12."),
    ("plumbing", "mon", "We're open Saturday, and your appointment is from 9 to 10."),
    ("plumbing", "mon", "We have an opening at 9 on Saturday."),
    ("plumbing", "mon", "The technician will arrive between 8 and 10 on Saturday."),
    ("plumbing", "mon", "We're not open Saturday afternoon, or Sunday."),
    ("plumbing", "mon", "We're closed on Sunday, so Monday at 9 is the earliest."),
    ("plumbing", "mon", "Our office is open 24/7 for emergencies."),
    ("plumbing", "mon", "It's 120 to 150 dollars for a drain cleaning."),
    ("dental", "d-mon", "We're open Monday through Thursday from 8 to 5, with lunch from 12 to 1."),
    ("dental", "d-mon", "We close at 1 on Fridays."),
    ("dental", "d-mon", "We're closed on weekends."),
    ("dental", "d-mon", "Our Friday hours are 8 AM to 1 PM."),
    ("dental", "d-mon", "A cleaning is $120 to $150, and whitening is $350."),
    (
        "dental",
        "d-mon",
        "An emergency visit is $95, which covers the exam and an X-ray of the tooth.",
    ),
    ("dental", "d-mon", "Late cancellations have a $50 fee."),
    ("dental", "d-mon", "Our membership is $299 a year and covers two cleanings."),
    ("dental", "d-mon", "The exam and X-rays come to $180."),
    ("dental", "d-mon", "We're closed for lunch from 12 to 1."),
    ("dental", "d-mon", "We're not open Saturdays, sorry."),
    ("dental", "d-mon", "A filling costs $150 to $300 depending on the size."),
    ("dental", "d-mon", "Would you like the cleaning at 1:15 on Monday?"),
    ("dental", "d-mon", "Whitening takes about 90 minutes."),
    ("dental", "d-mon", "We're open on New Year's Eve from 8 to noon."),
    ("dental", "d-mon", "We're closed on Christmas."),
    ("dental", "d-mon", "We're open until 5 on Thursday."),
    ("dental", "d-lunch", "We're closed right now for lunch, but we open again at 1."),
    ("dental", "d-fri", "We're open today until 1 pm."),
    ("dental", "d-mon", "Teeth whitening is three hundred fifty dollars."),
    ("dental", "d-mon", "The office is open 8 to 12 and 1 to 5 Monday through Thursday."),
    ("dental", "d-mon", "Whitening is $350, but with the membership you get 15% off."),
    (
        "dental",
        "d-mon",
        "Hi, thank you for calling Lakeview Family Dental, this is the office's AI assistant.",
    ),
]

FALSE: list[tuple[str, str, str, str, str]] = [
    # (brain, now, text, kind, a phrase the correction must contain)
    ("plumbing", "mon", "We're open on Sundays.", "hours", "we're closed on Sundays"),
    ("plumbing", "mon", "Yes, we are open Sunday.", "hours", "Saturday 8 AM to 12 PM"),
    (
        "plumbing",
        "mon",
        "We open at 7 on Saturday.",
        "hours",
        "on Saturdays we're open 8 AM to 12 PM",
    ),
    ("plumbing", "sun", "Yes, we're open today.", "hours", "today we're closed"),
    (
        "plumbing",
        "xmas-eve",
        "We're open tomorrow from 7 to 6.",
        "hours",
        "tomorrow we're closed for Christmas",
    ),
    ("plumbing", "mon", "We're open on Christmas.", "hours", "closed for Christmas"),
    ("plumbing", "mon", "A drain cleaning is $50.", "price", "drain cleaning costs $120 to $150"),
    ("plumbing", "mon", "Water heater installation is about $800.", "price", "$1,200 to $2,800"),
    (
        "plumbing",
        "mon",
        "The plumbing inspection costs 150 dollars.",
        "price",
        "plumbing inspection costs $89",
    ),
    ("plumbing", "mon", "We're open seven days a week.", "hours", "we're closed on Sundays"),
    (
        "plumbing",
        "mon",
        "Sure. We open at 9 on Mondays.",
        "hours",
        "on Mondays we're open 7 AM to 6 PM",
    ),
    (
        "dental",
        "d-mon",
        "We close at 6 pm on Friday.",
        "hours",
        "on Fridays we're open 8 AM to 1 PM",
    ),
    ("dental", "d-mon", "A cleaning is $50.", "price", "cleaning costs $120 to $150"),
    (
        "dental",
        "d-mon",
        "We're open Monday through Saturday.",
        "hours",
        "we're closed on Saturdays",
    ),
    (
        "dental",
        "d-mon",
        "Unfortunately we're closed on Fridays.",
        "hours",
        "on Fridays we're open 8 AM to 1 PM",
    ),
    ("dental", "d-mon", "Our Saturday hours are 9 to 1.", "hours", "we're closed on Saturdays"),
    (
        "dental",
        "d-mon",
        "Teeth whitening is only two hundred dollars.",
        "price",
        "whitening costs $350",
    ),
    (
        "dental",
        "d-mon",
        "We're open until 8 pm on weekdays.",
        "hours",
        "Monday to Thursday we're open 8 AM to 12 PM and 1 PM to 5 PM",
    ),
    ("dental", "d-fri", "We're open today until 5.", "hours", "today we're open 8 AM to 1 PM"),
    ("dental", "d-mon", "A filling is $100 to $200.", "price", "filling costs $150 to $300"),
    (
        "dental",
        "d-mon",
        "We're closed today.",
        "hours",
        "today we're open 8 AM to 12 PM and 1 PM to 5 PM",
    ),
    ("dental", "d-lunch", "Yes, we're open right now.", "hours", "we're closed right now"),
    (
        "dental",
        "d-mon",
        "Your cleaning is booked. By the way, whitening is $199.",
        "price",
        "whitening costs $350",
    ),
    (
        "dental",
        "d-mon",
        "We're open 8 to 5 on Friday.",
        "hours",
        "on Fridays we're open 8 AM to 1 PM",
    ),
    (
        "plumbing",
        "mon",
        "We have an opening at 7 on Saturday.",
        "appointment",
        "on Saturdays we're open 8 AM to 12 PM",
    ),
    (
        "plumbing",
        "mon",
        "We're open at 3 pm on Saturday.",
        "hours",
        "on Saturdays we're open 8 AM to 12 PM",
    ),
]


@pytest.mark.parametrize(("brain", "now", "text"), TRUE, ids=[f"{b}:{t[:40]}" for b, _, t in TRUE])
def test_true_statements_pass(brains: dict[str, Brain], brain: str, now: str, text: str) -> None:
    assert check_turn(brains[brain], text, NOW[now]) == []


@pytest.mark.parametrize(
    ("brain", "now", "text", "kind", "correction"),
    FALSE,
    ids=[f"{b}:{t[:40]}" for b, _, t, _, _ in FALSE],
)
def test_false_statements_are_caught(
    brains: dict[str, Brain], brain: str, now: str, text: str, kind: str, correction: str
) -> None:
    found = check_turn(brains[brain], text, NOW[now])
    assert len(found) == 1, found
    assert found[0].kind == kind
    assert found[0].correction.startswith("Correction: ")
    assert correction in found[0].correction
    assert found[0].claim in text


def test_several_claims_in_one_turn(brains: dict[str, Brain]) -> None:
    text = (
        "We're open on Sundays from 9 to 5. A drain cleaning is $99. Anything else I can help with?"
    )
    found = check_turn(brains["plumbing"], text, NOW["mon"])
    assert [v.kind for v in found] == ["hours", "price"]
    assert found[0].claim == "We're open on Sundays from 9 to 5."
    assert found[1].claim == "A drain cleaning is $99."


def test_price_said_about_the_service_just_named(brains: dict[str, Brain]) -> None:
    text = "A plumbing inspection? That's $150."
    found = check_turn(brains["plumbing"], text, NOW["mon"])
    assert [(v.kind, v.correction) for v in found] == [
        ("price", "Correction: plumbing inspection costs $89.")
    ]
    assert check_turn(brains["plumbing"], "A plumbing inspection? That's $89.", NOW["mon"]) == []
