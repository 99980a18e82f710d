"""Booking: free slots from the brain's hours, the booked calendar and the owner's busy times; holding
one; booking it. Postgres arbitrates races. Finding, moving and cancelling a booking is in
caller_bookings.py; the helpers both use (the call's pool, the service by name, calendar sync, text
consent) are here."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, time, timedelta
from typing import Any

from livekit.agents import RunContext, ToolError

from agent.brain import Brain, Service, schedule
from agent.calendar import changes as calendar_changes
from agent.call import CallContext
from agent.notify import caller_texts
from agent.store import appointments as store
from agent.store import calendar as calendar_store
from agent.store.db import StoreUnavailable
from agent.tools.audit import receptionist_tool
from agent.tools.spoken import (
    clean_text,
    normalise_phone,
    parse_day,
    parse_start,
    region_of,
    say_day,
    say_number,
    say_time,
)

log = logging.getLogger("receptionist.tools")

MAX_SLOTS_OFFERED = 6
SEARCH_DAYS = 14  # how far past a full or closed day we look for the next free slots

UNAVAILABLE = (
    "The booking system is not answering right now. Apologise, and offer to take a message with the "
    "caller's name, number and preferred time so the office can confirm by phone."
)


def service_named(brain: Brain, name: str) -> Service:
    s = brain.service(name)
    if s is None:
        names = ", ".join(x.name for x in brain.services if x.bookable)
        raise ToolError(f"{name!r} is not one of our services. Bookable services: {names}.")
    if not s.bookable:
        raise ToolError(f"{s.name} can't be booked by phone; offer to take a message for the office.")
    return s


def call_pool(call: CallContext) -> Any:
    if call.pool is None:
        raise ToolError(UNAVAILABLE)
    return call.pool


def _day_bounds(brain: Brain, day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), brain.tz)
    return start, start + timedelta(days=1)


async def _owner_busy(call: CallContext, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """The owner's own busy times in [lo, hi) from the local copy of their CalDAV calendar (never from
    CalDAV itself: the call does not wait on it). A stale copy is still used, since what the owner had
    blocked is likelier still blocked than not, and the call is flagged `calendar_stale` with its age."""
    if call.brain.calendar.caldav is None:
        return []
    busy, copy = await calendar_store.owner_busy(call_pool(call), call.brain.business.name, lo, hi)
    if copy.stale and "calendar_stale" not in call.extras:
        age = None if copy.age_s is None else round(copy.age_s)
        call.extras["calendar_stale"] = {"age_s": age, "error": copy.last_error}
        log.warning("the owner's calendar copy is stale (%s s old, last error: %s): availability from our"
                    " own appointments%s", age, copy.last_error, " and that copy" if busy else "")  # fmt: skip
    return busy


async def _free_slots(call: CallContext, service: Service, day: date) -> list[datetime]:
    brain = call.brain
    lo, hi = _day_bounds(brain, day)
    try:
        busy = await store.busy_intervals(call_pool(call), brain.business.name, lo, hi)
        busy = sorted(busy + await _owner_busy(call, lo, hi))
    except StoreUnavailable:
        raise ToolError(UNAVAILABLE) from None
    slots = schedule.candidate_slots(brain, service, day, call.now(), busy)
    if call.live is not None and slots:
        held = await call.live.holds(brain.business.name, exclude_call=call.call_id)
        slots = [s for s in slots if s not in held]
    return slots


def _slot_list(slots: list[datetime]) -> list[dict[str, str]]:
    return [{"start": s.strftime("%Y-%m-%dT%H:%M"), "say": say_time(s)} for s in slots[:MAX_SLOTS_OFFERED]]


@receptionist_tool
async def check_availability(context: RunContext[CallContext], service: str, day: str) -> str:
    """Free appointment times for a service on a day. If that day is closed or full, also returns the
    next day with free times. Offer only times listed here.

    Args:
        service: The service the caller wants, in their words.
        day: A date (YYYY-MM-DD), a weekday name, "today" or "tomorrow".
    """
    call = context.userdata
    brain = call.brain
    svc = service_named(brain, service)
    today = call.now().date()
    d = parse_day(day, today)
    if d < today:
        raise ToolError(f"{d.isoformat()} is in the past; today is {today.isoformat()}. Ask for another day.")
    last = today + timedelta(days=brain.booking.max_days_ahead)
    if d > last:
        raise ToolError(
            f"We book at most {brain.booking.max_days_ahead} days ahead (until {last.isoformat()}). "
            "Offer a nearer day, or a message for the office."
        )
    slots = await _free_slots(call, svc, d)
    result: dict[str, Any] = {
        "service": svc.name,
        "duration_minutes": svc.duration_minutes,
        "day": say_day(d, today),
        "date": d.isoformat(),
        "slots": _slot_list(slots),
    }
    if not slots:
        closure = brain.closure_on(d)
        hours = schedule.opening_hours_on(brain, d)
        result["why_none"] = (
            f"closed ({closure.reason})" if closure and not hours
            else "closed that day" if not hours
            else "fully booked, or too soon to book"
        )
        probe = d
        for _ in range(SEARCH_DAYS):
            probe += timedelta(days=1)
            if probe > last:
                break
            more = await _free_slots(call, svc, probe)
            if more:
                result["next_available"] = {
                    "day": say_day(probe, today), "date": probe.isoformat(), "slots": _slot_list(more)
                }
                break
    return json.dumps(result)


async def owner_blocks(call: CallContext, start: datetime, end: datetime) -> None:
    """Refuse a time the owner has blocked in their own calendar (check_availability never offers it)."""
    try:
        blocked = await _owner_busy(call, start, end)
    except StoreUnavailable:
        raise ToolError(UNAVAILABLE) from None
    if blocked:
        raise ToolError("That time is not available. Run check_availability and offer one of its times.")


def sync_calendar(call: CallContext, change: calendar_changes.CalendarChange, appt: store.Appointment) -> None:
    """Queue the owner's calendar update with the call's records (delivered by the outbox sender)."""
    row = calendar_changes.event_change(call, change, appt)
    if row is not None:
        call.record(row)


async def hold_for_call(call: CallContext, svc: Service, when: datetime) -> None:
    """Hold `when` for this call across replicas (refreshed if already its own), or refuse a time
    the brain does not book or another caller is booking now."""
    problem = schedule.slot_problem(call.brain, svc, when, call.now())
    if problem:
        raise ToolError(f"{problem} Run check_availability and offer one of its times.")
    if call.live is not None and not await call.live.hold_slot(call.brain.business.name, when, call.call_id):
        raise ToolError("Another caller is booking that exact time right now. Offer the next free time.")


def booking_name(customer_name: str) -> str:
    """The name a booking is made under, cleaned; refused when it cannot be a person's name."""
    name = clean_text(customer_name, 500)
    if len(name) < 2 or not any(ch.isalpha() for ch in name):
        raise ToolError("I need the caller's name for the booking: ask for it.")
    if len(name) > 120:
        raise ToolError("That name is too long to be a person's name: ask for the caller's full name.")
    return name


def read_back(call: CallContext, customer_name: str, phone: str) -> dict[str, Any]:
    """The name and number a booking will be under, checked, and how to say them back to the caller:
    what the booking's gate holds the caller's yes to."""
    name = booking_name(customer_name)
    e164 = caller_phone(call, phone or None)
    return {
        "confirm": {"name": name, "phone": e164},
        "say": f"{name}, at {say_number(e164, region_of(call.brain.business.phone))}",
        "then": "Ask whether that is right; book only after they say yes.",
    }


@receptionist_tool
async def hold_slot(
    context: RunContext[CallContext], service: str, start: str, customer_name: str = "", phone: str = ""
) -> str:
    """Hold a time for two minutes while you take the caller's name and number (call it as soon as the
    caller picks a time). If the caller has already given their name (and any number other than the
    one they call from), pass them too: it then also returns the read-back to say.

    Args:
        service: The service being booked.
        start: The chosen start, YYYY-MM-DDTHH:MM, exactly as check_availability listed it.
        customer_name: The caller's full name, if they have given it already; else leave empty.
        phone: The number as the caller said it, if they gave one; leave empty for the number they
            are calling from.
    """
    call = context.userdata
    # the details first: a name the booking cannot take holds nothing
    details = read_back(call, customer_name, phone) if customer_name.strip() else None
    svc = service_named(call.brain, service)
    when = parse_start(start, call.brain.tz)
    await hold_for_call(call, svc, when)
    return json.dumps({"held": when.strftime("%Y-%m-%dT%H:%M"), "minutes": 2, **(details or {})})


def consent_given(call: CallContext, text_consent: bool) -> bool | None:
    """The answer to record: None when this business sends no texts (nobody was asked)."""
    return bool(text_consent) if call.brain.notify.caller_texts else None


def confirm_by_text(
    call: CallContext, kind: caller_texts.CallerTextKind, appt: store.Appointment, consent: bool | None
) -> dict[str, str]:
    """Queue the confirmation text when the caller agreed; what the model may tell the caller of it
    (nothing when this business sends no texts)."""
    if consent is None:
        return {}
    if not consent:
        return {"text": "none: the caller did not agree to a text"}
    call.record(caller_texts.confirmation(call, kind, appt))
    return {"text": "a confirmation text is on its way to the number the appointment is under"}


@receptionist_tool
async def book_appointment(
    context: RunContext[CallContext], customer_name: str, service: str, start: str, phone: str = "",
    text_consent: bool = False,
) -> str:
    """Book an appointment once the caller has confirmed the time, their name and phone number.
    Read the returned confirmation code back to the caller, letter by letter.

    Args:
        customer_name: The caller's full name.
        service: The service being booked.
        start: Start time, YYYY-MM-DDTHH:MM, exactly as check_availability listed it.
        phone: The phone number as the caller said it (normalised and validated); leave empty when
            they confirmed the number they are calling from.
        text_consent: True only if you asked "Would you like a text confirming this?" and the caller
            said yes (the text goes to the number the appointment is under).
    """
    call = context.userdata
    brain = call.brain
    name = booking_name(customer_name)
    e164 = caller_phone(call, phone or None)
    svc = service_named(brain, service)
    when = parse_start(start, brain.tz)
    await hold_for_call(call, svc, when)
    end = when + timedelta(minutes=svc.duration_minutes)
    await owner_blocks(call, when, end + timedelta(minutes=brain.booking.buffer_minutes))
    consent = consent_given(call, text_consent)
    try:
        appt = await store.book(
            call_pool(call), brain.business.name, svc.name, name, e164,
            when, end + timedelta(minutes=brain.booking.buffer_minutes), call.call_id, text_consent=consent,
        )  # fmt: skip
    except store.SlotTaken:
        slots = await _free_slots(call, svc, when.date())
        nxt = ", ".join(s["say"] for s in _slot_list(slots)[:3]) or "none left that day"
        raise ToolError(f"That time was just taken by another caller. Still free that day: {nxt}.") from None
    except StoreUnavailable:
        raise ToolError(UNAVAILABLE) from None
    finally:
        if call.live is not None:
            await call.live.release_slot(brain.business.name, when, call.call_id)
    sync_calendar(call, "booked", appt)
    call.set_outcome("booked")
    return json.dumps(
        {
            "booked": True,
            "confirmation_code": appt.confirmation_code,
            "spell_code": " ".join(appt.confirmation_code.replace("-", "")),
            "service": svc.name,
            "day": say_day(when.date(), call.now().date()),
            "time": say_time(when),
            "start": when.strftime("%Y-%m-%dT%H:%M"),
            "name": name,
            "phone": e164,
            **confirm_by_text(call, "caller_booked", appt, consent),
        }
    )


def caller_phone(
    call: CallContext, phone: str | None, *, ask: str = "ask for the caller's phone number."
) -> str:
    """The number an appointment is booked (or looked up) under: the one stated, else the caller ID."""
    if phone:
        return normalise_phone(phone, region_of(call.brain.business.phone))
    if call.caller_number:
        return call.caller_number
    raise ToolError(f"There is no caller ID on this call: {ask}")
