"""What a warm transfer dials and what the person is told, from the call's own records (the transfer
itself is tested over SIP in tests/phone/test_warm_transfer.py)."""

from __future__ import annotations

import pytest

from agent.brain import load_brain
from agent.call import CallContext, ToolCallLog
from agent.warm_transfer import briefing, dial_target, ring_for
from tests.fixtures.stack import ROOT


def test_a_number_goes_through_the_outbound_trunk_and_a_sip_address_straight_to_its_host() -> None:
    assert dial_target("tel:+15035550192") == ("+15035550192", None)
    user, direct = dial_target("sip:frontdesk@lakeviewfamilydental.example;transport=tcp")
    assert user == "frontdesk" and direct is not None and direct.hostname == "lakeviewfamilydental.example"


def test_the_briefing_says_who_why_what_and_what_was_tried() -> None:
    call = CallContext(brain=load_brain(ROOT / "brains" / "plumbing.yaml"), caller_number="+15035550171")
    call.tool_log += [
        ToolCallLog(1, "check_availability", {}, "{}", None, 12.0),
        ToolCallLog(2, "find_my_appointment", {}, None, "no booking under that number", 8.0),
        ToolCallLog(3, "escalate_to_human", {}, "{}", None, 3.0),
    ]
    said = briefing(
        call, {"department": "billing", "reason": "pricing_dispute", "summary": "Charged twice for one visit."}
    )
    assert "billing of Rose City Plumbing" in said and "+15035550171" in said
    assert "a dispute about a price" in said and "Charged twice for one visit." in said
    assert "check availability, find my appointment (it failed)" in said
    assert "escalate" not in said


@pytest.mark.parametrize(("seconds", "whole", "nanos"), [(20.0, 20, 0), (20.7, 20, 700_000_000), (0.5, 0, 500_000_000)])
def test_the_persons_phone_rings_as_long_as_set_fractions_kept(seconds: float, whole: int, nanos: int) -> None:
    """WARM_TRANSFER_RING_SECONDS went to LiveKit as whole seconds: 0.5 became 0, LiveKit's own default."""
    ring = ring_for(seconds)
    assert (ring.seconds, ring.nanos) == (whole, nanos)
