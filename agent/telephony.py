"""The caller's phone leg as LiveKit SIP sees it: who called, which number they dialed, and the two
things we do to the leg (hang up, transfer)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from livekit import api, rtc

from agent.call import CALLER_HANGUP, TransferFailed

log = logging.getLogger("receptionist.telephony")

# attributes livekit-sip sets on the caller's participant
ATTR_CALLER = "sip.phoneNumber"
ATTR_DIALED = "sip.trunkPhoneNumber"
ATTR_CALL_ID = "sip.callID"
ATTR_STATUS = "sip.callStatus"
ATTR_TWILIO_SID = "sip.twilio.callSid"
# set from Twilio's X-Twilio-VerStat INVITE header by the inbound trunk's headers_to_attributes
# (sip.provision): the carrier's STIR/SHAKEN verdict on the caller ID
ATTR_VERSTAT = "sip.twilio.verstat"
VERSTAT_HEADER = "X-Twilio-VerStat"


@dataclass(frozen=True)
class SipCaller:
    identity: str
    caller_number: str | None
    dialed_number: str | None
    sip_call_id: str | None
    twilio_call_sid: str | None
    caller_verstat: str | None = None

    @classmethod
    def from_participant(cls, p: rtc.RemoteParticipant) -> SipCaller:
        a = p.attributes
        return cls(
            identity=p.identity,
            caller_number=a.get(ATTR_CALLER) or None,
            dialed_number=a.get(ATTR_DIALED) or None,
            sip_call_id=a.get(ATTR_CALL_ID) or None,
            twilio_call_sid=a.get(ATTR_TWILIO_SID) or None,
            caller_verstat=a.get(ATTR_VERSTAT) or None,
        )


def why_the_caller_left(p: rtc.RemoteParticipant) -> str:
    """The caller's leg leaving the room, as the call's end reason: their hang-up (livekit-sip marks
    the leg `hangup` on the caller's BYE, CANCEL or a line gone silent, and leaves as a client; LiveKit
    does not always tell the agent it left as a client), else the line lost some other way, in
    LiveKit's words (`line_lost: media_failure`, `line_lost: sip_trunk_failure`, ...)."""
    reason = p.disconnect_reason  # None where LiveKit gave none (UNKNOWN_REASON)
    if p.attributes.get(ATTR_STATUS) == "hangup" or reason == rtc.DisconnectReason.CLIENT_INITIATED:
        return CALLER_HANGUP
    try:
        name = rtc.DisconnectReason.Name(reason or rtc.DisconnectReason.UNKNOWN_REASON)
    except ValueError:  # a reason newer than this SDK
        name = str(reason)
    return f"line_lost: {name.lower()}"


async def wait_until_active(room: rtc.Room, participant: rtc.RemoteParticipant, within_s: float) -> None:
    """Greeting a call that is still ringing would play into nothing: wait for `active`."""
    if participant.kind != rtc.ParticipantKind.PARTICIPANT_KIND_SIP:
        return
    if participant.attributes.get(ATTR_STATUS, "active") == "active":
        return
    active = asyncio.Event()

    def on_changed(changed: dict[str, str], p: rtc.Participant) -> None:
        if p.identity == participant.identity and p.attributes.get(ATTR_STATUS) == "active":
            active.set()

    room.on("participant_attributes_changed", on_changed)
    try:
        await asyncio.wait_for(active.wait(), within_s)
    except TimeoutError:
        log.warning("caller %s never became active; greeting anyway", participant.identity)
    finally:
        room.off("participant_attributes_changed", on_changed)


class LiveKitLine:
    """PhoneLine over LiveKit: removing the room sends BYE; TransferSIPParticipant sends REFER."""

    def __init__(self, lk: api.LiveKitAPI, room_name: str, participant_identity: str) -> None:
        self._lk = lk
        self._room = room_name
        self._identity = participant_identity

    async def hang_up(self, reason: str) -> None:
        log.info("hanging up %s: %s", self._room, reason)
        try:
            await self._lk.room.delete_room(api.DeleteRoomRequest(room=self._room))
        except Exception:
            log.exception("could not delete room %s", self._room)

    async def transfer(self, destination: str) -> None:
        try:
            await self._lk.sip.transfer_sip_participant(
                api.TransferSIPParticipantRequest(
                    room_name=self._room,
                    participant_identity=self._identity,
                    transfer_to=destination,
                    play_dialtone=False,
                )
            )
        except Exception as e:
            raise TransferFailed(str(e)) from e
