"""How the caller's leg left the room becomes the call's end reason: livekit-sip's hang-up, whatever
LiveKit calls the departure, is the caller hanging up; anything else is the line lost, named."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from livekit import rtc

from agent.telephony import why_the_caller_left

R = rtc.DisconnectReason


@dataclass
class Leg:
    disconnect_reason: int | None  # None: LiveKit gave no reason
    attributes: dict[str, str] = field(default_factory=dict)


@pytest.mark.parametrize(
    ("leg", "end_reason"),
    [
        (Leg(R.CLIENT_INITIATED, {"sip.callStatus": "hangup"}), "caller_hangup"),
        # livekit-sip marked the leg hung up, and its connection closed before its goodbye reached LiveKit
        (Leg(R.SIGNAL_CLOSE, {"sip.callStatus": "hangup"}), "caller_hangup"),
        (Leg(R.CLIENT_INITIATED, {"sip.callStatus": "active"}), "caller_hangup"),
        (Leg(R.MEDIA_FAILURE, {"sip.callStatus": "active"}), "line_lost: media_failure"),
        (Leg(R.SIP_TRUNK_FAILURE), "line_lost: sip_trunk_failure"),
        (Leg(R.PARTICIPANT_REMOVED, {"sip.callStatus": "active"}), "line_lost: participant_removed"),
        (Leg(None, {"sip.callStatus": "active"}), "line_lost: unknown_reason"),
        (Leg(999), "line_lost: 999"),
    ],
)
def test_the_way_the_callers_leg_left_is_the_calls_end_reason(leg: Leg, end_reason: str) -> None:
    assert why_the_caller_left(leg) == end_reason  # type: ignore[arg-type]
