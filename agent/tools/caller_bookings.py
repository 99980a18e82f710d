"""Finding, moving and cancelling a caller's booking: what the caller has proven on this call decides
what each tool may say or do (README, Privacy), and a guesser is stopped after a few misses."""

from __future__ import annotations

import json
from datetime import timedelta

from livekit.agents import RunContext, ToolError

from agent.brain import schedule
from agent.call import CallContext
from agent.store import appointments as store
from agent.store.db import StoreUnavailable
from agent.tools.audit import receptionist_tool
from agent.tools.booking import (
    UNAVAILABLE,
    call_pool,
    caller_phone,
    confirm_by_text,
    consent_given,
    owner_blocks,
    service_named,
    sync_calendar,
)
from agent.tools.spoken import parse_start, say_day, say_time

# Finding, changing and cancelling someone's booking: what the caller has proven decides what a tool
# may say or do (README, Privacy). A number the caller states is a claim; the caller ID (unless the
# carrier found it forged) or a number proven on this call is proof of that number; a confirmation
# code together with the number it was booked under is proof of that one booking.
MAX_FAILED_PROOFS = 3


def _booked_number(call: CallContext, phone: str) -> str:
    return caller_phone(
        call, phone or None,
        ask="ask for the phone number the appointment was booked under and its confirmation code.",
    )  # fmt: skip


def check_attempts(call: CallContext) -> None:
    if call.failed_proofs >= MAX_FAILED_PROOFS:
        raise ToolError(
            "Too many confirmation codes or numbers on this call did not match a booking, so I can't "
            "look up or change appointments any more on this call. Do not try again: offer to take a "
            "message so the office can call back the number on the booking."
        )


def _no_match(call: CallContext) -> ToolError:
    """The same answer whether the code is unknown or belongs to another number: a refusal must not
    tell a guesser that a code exists."""
    call.failed_proofs += 1
    return ToolError(
        "No upcoming appointment matches that confirmation code with that phone number. Ask the caller "
        "to check the code, and for the number the appointment was booked under."
    )


def _appointment_out(call: CallContext, a: store.Appointment) -> dict[str, str]:
    local = a.start.astimezone(call.brain.tz)
    return {
        "confirmation_code": a.confirmation_code, "service": a.service,
        "day": say_day(local.date(), call.now().date()), "time": say_time(local), "name": a.customer_name,
    }  # fmt: skip


@receptionist_tool
async def find_my_appointments(
    context: RunContext[CallContext], confirmation_code: str = "", phone: str = ""
) -> str:
    """The caller's upcoming appointments. Privacy: a number the caller merely states is not proof
    that the bookings under it are theirs. Without a confirmation code, bookings come back only for the
    number they are calling from; for any other number nothing, not even whether it has any, and you
    must ask for the confirmation code. Never guess or repeat details the tool did not return.

    Args:
        confirmation_code: The code they were given when booking, if they have it.
        phone: The number the appointment was booked under, if different from the caller ID.
    """
    call = context.userdata
    check_attempts(call)
    number = _booked_number(call, phone)
    code = confirmation_code.strip() or None
    proven = call.has_proven(number)
    if code is None and not proven:
        # not even whether the number has bookings: a stranger could learn that of any number (is
        # she booked at the clinic?), so the store is not asked, and the answer is the same either way
        return json.dumps({
            "details": "withheld: that number is not proven on this call (a number the caller stated, or a"
            " caller ID the carrier could not vouch for)",
            "next": "Say that for privacy you need the booking's confirmation code to look it up (or, if "
            "you can text a code to that number, offer that). Do not say or guess whether anything is "
            "booked under it.",
        })  # fmt: skip
    try:
        found = await store.find_for_caller(
            call_pool(call), call.brain.business.name, phone=number, code=code, now=call.now()
        )
    except StoreUnavailable:
        raise ToolError(UNAVAILABLE) from None
    if code is not None and not found:
        raise _no_match(call)
    if not found:  # the caller's own number (proven), with nothing booked
        raise ToolError(
            "No upcoming appointment is booked under that number. Ask the caller for the number they "
            "booked with, or the confirmation code."
        )
    return json.dumps([_appointment_out(call, a) for a in found])


async def _owned_booking(call: CallContext, code: str, number: str) -> store.Appointment:
    """The booked appointment with this code, if it was booked under `number`; else a refusal that
    does not say which of the two was wrong."""
    check_attempts(call)
    try:
        found = await store.find_for_caller(
            call_pool(call), call.brain.business.name, phone=number, code=code, now=call.now()
        )
    except StoreUnavailable:
        raise ToolError(UNAVAILABLE) from None
    if not found:
        raise _no_match(call)
    return found[0]


@receptionist_tool
async def reschedule_appointment(
    context: RunContext[CallContext], confirmation_code: str, new_start: str, phone: str = "",
    text_consent: bool = False,
) -> str:
    """Move the caller's appointment to a new free time (check_availability first). Needs the
    confirmation code and the number it was booked under (the caller ID when they call from it).

    Args:
        confirmation_code: The appointment's confirmation code.
        new_start: The new start, YYYY-MM-DDTHH:MM, as check_availability listed it.
        phone: The number it was booked under, if different from the caller ID.
        text_consent: True only if you asked "Would you like a text confirming this?" and the caller
            said yes (the text goes to the number the appointment is under).
    """
    call = context.userdata
    brain = call.brain
    number = _booked_number(call, phone)
    when = parse_start(new_start, brain.tz)
    current = await _owned_booking(call, confirmation_code, number)
    svc = service_named(brain, current.service)
    problem = schedule.slot_problem(brain, svc, when, call.now())
    if problem:
        raise ToolError(f"{problem} Run check_availability and offer one of its times.")
    end = when + timedelta(minutes=svc.duration_minutes + brain.booking.buffer_minutes)
    await owner_blocks(call, when, end)
    consent = consent_given(call, text_consent)
    try:
        appt = await store.reschedule(
            call_pool(call), brain.business.name, current.id, when, end, number, call.call_id,
            text_consent=consent,
        )
    except (store.NotYourAppointment, store.AppointmentNotFound):
        # changed by someone else between the look-up and the lock
        raise ToolError("That appointment has just been changed. Look it up again with find_my_appointments.") from None
    except store.SlotTaken:
        raise ToolError("That new time is already taken. Run check_availability and offer another.") from None
    except StoreUnavailable:
        raise ToolError(UNAVAILABLE) from None
    sync_calendar(call, "moved", appt)
    call.set_outcome("booked")
    return json.dumps(
        {"rescheduled": True, "confirmation_code": appt.confirmation_code,
         "spell_code": " ".join(appt.confirmation_code.replace("-", "")),
         "day": say_day(when.date(), call.now().date()), "time": say_time(when),
         **confirm_by_text(call, "caller_rescheduled", appt, consent)}
    )  # fmt: skip


@receptionist_tool
async def cancel_appointment(
    context: RunContext[CallContext], confirmation_code: str, phone: str = "", text_consent: bool = False
) -> str:
    """Cancel the caller's appointment after they confirm they want it cancelled. Needs the
    confirmation code and the number it was booked under (the caller ID when they call from it).

    Args:
        confirmation_code: The appointment's confirmation code.
        phone: The number it was booked under, if different from the caller ID.
        text_consent: True only if you asked "Would you like a text confirming this?" and the caller
            said yes (the text goes to the number the appointment is under).
    """
    call = context.userdata
    number = _booked_number(call, phone)
    current = await _owned_booking(call, confirmation_code, number)
    consent = consent_given(call, text_consent)
    try:
        appt = await store.cancel(
            call_pool(call), call.brain.business.name, current.id, number, call.call_id, text_consent=consent
        )
    except (store.NotYourAppointment, store.AppointmentNotFound):
        raise ToolError("That appointment has just been changed. Look it up again with find_my_appointments.") from None
    except StoreUnavailable:
        raise ToolError(UNAVAILABLE) from None
    sync_calendar(call, "cancelled", appt)
    call.set_outcome("answered")
    return json.dumps({"cancelled": True, "confirmation_code": appt.confirmation_code, "service": appt.service,
                       **confirm_by_text(call, "caller_cancelled", appt, consent)})  # fmt: skip
