"""Texts to the caller, from the business's number: the confirmation of a booking, a move or a
cancellation (when the brain enables it and the caller agreed on the call), and the address or
directions they asked for. Each is an outbox row written through the call's journal, delivered by the
SMS channel, which checks the STOP list first."""

from __future__ import annotations

import typing
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote_plus

from agent.store.journal.events import NotificationQueued

if TYPE_CHECKING:
    from agent.call import CallContext
    from agent.store.appointments import Appointment

CallerTextKind = Literal["caller_booked", "caller_rescheduled", "caller_cancelled", "caller_info", "caller_number_code"]
CALLER_KINDS: tuple[CallerTextKind, ...] = typing.get_args(CallerTextKind)
PAYLOAD_VERSION = 1
OPT_OUT_LINE = "Reply STOP to stop texts."


def business_number(call: CallContext) -> str:
    """The number a text comes from: the one the caller dialed when it is this business's, else its first."""
    business = call.brain.business
    if call.dialed_number and call.dialed_number in business.numbers:
        return call.dialed_number
    return business.numbers[0] if business.numbers else business.phone


def _local(call: CallContext, when: datetime) -> str:
    local = when.astimezone(call.brain.tz)
    clock = local.strftime("%I:%M %p").lstrip("0").replace(":00 ", " ")
    return f"{local.strftime('%a %b')} {local.day} at {clock}"


def _text(call: CallContext, kind: str, destination: str, body: str, detail: dict[str, Any], key: str) -> NotificationQueued:
    business = call.brain.business
    payload = {
        "version": PAYLOAD_VERSION, "kind": kind, "business": business.name,
        "business_number": business_number(call),
        "summary": f"Text to the caller ({kind.removeprefix('caller_')})", "sms": body,
        "call": {"id": str(call.call_id), "caller_number": call.caller_number}, "detail": detail,
    }  # fmt: skip
    return NotificationQueued(key=key, business=business.name, kind=kind, channel="sms",
                              destination=destination, payload=payload, call_id=call.call_id,
                              created_at=call.clock())  # fmt: skip


def confirmation(call: CallContext, kind: CallerTextKind, appointment: Appointment) -> NotificationQueued:
    """The text confirming what the call did to `appointment`, to the number it is booked under."""
    business = call.brain.business
    when = _local(call, appointment.start)
    code = appointment.confirmation_code
    change = f"To change or cancel it, call {business.phone} and give your code."
    if kind == "caller_booked":
        body = (f"{business.name}: your {appointment.service} is booked for {when}, at {business.address}."
                f" Confirmation code {code}. {change}")  # fmt: skip
    elif kind == "caller_rescheduled":
        body = (f"{business.name}: your {appointment.service} is moved to {when}, at {business.address}."
                f" New confirmation code {code}. {change}")  # fmt: skip
    else:
        body = (f"{business.name}: your {appointment.service} on {when} is cancelled (code {code})."
                f" To book again, call {business.phone}.")  # fmt: skip
    detail = {"confirmation_code": code, "service": appointment.service, "start": appointment.start.isoformat()}
    key = f"{call.call_id}/{kind}/{code}/sms:{appointment.customer_phone}"
    return _text(call, kind, appointment.customer_phone, f"{body} {OPT_OUT_LINE}", detail, key)


InfoTopic = Literal["address", "directions"]


def info(call: CallContext, topic: InfoTopic, destination: str, n: int) -> NotificationQueued:
    """The business's address, or a link with directions to it, as the caller asked; `n` numbers the
    texts of one call (a second request is a second text, a replayed journal is not)."""
    business = call.brain.business
    if topic == "directions":
        link = f"https://www.google.com/maps/dir/?api=1&destination={quote_plus(business.address)}"
        body = f"{business.name}, {business.address}. Directions: {link}"
    else:
        body = f"{business.name}: {business.address}. Phone {business.phone}."
    key = f"{call.call_id}/caller_info/{n}/sms:{destination}"
    return _text(call, "caller_info", destination, f"{body} {OPT_OUT_LINE}", {"topic": topic}, key)


def number_code(call: CallContext, destination: str, code: str, n: int) -> NotificationQueued:
    """The one-time code that proves the caller holds `destination` (agent/tools/number_check.py);
    `n` numbers the codes of one call. It is worth nothing once the call has ended."""
    business = call.brain.business
    body = (f"{business.name}: your code is {code}. Read it to the assistant on your call. If you are not"
            " on a call with us, ignore this text.")  # fmt: skip
    key = f"{call.call_id}/caller_number_code/{n}/sms:{destination}"
    return _text(call, "caller_number_code", destination, f"{body} {OPT_OUT_LINE}", {}, key)
