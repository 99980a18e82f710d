"""The receptionist's tools, one module per capability; every one goes through `receptionist_tool`."""

from __future__ import annotations

from typing import Any

from agent.brain import Brain
from agent.tools.booking import book_appointment, check_availability, hold_slot
from agent.tools.business_info import (
    answer_faq,
    get_business_details,
    get_current_time,
    get_opening_hours,
    get_service_details,
    get_weekly_hours,
    list_services,
)
from agent.tools.call_control import end_call, stop_recording
from agent.tools.caller_bookings import (
    cancel_appointment,
    find_my_appointments,
    reschedule_appointment,
)
from agent.tools.escalation import escalate_to_human
from agent.tools.leads import capture_lead, take_message
from agent.tools.number_check import confirm_number_code, text_number_code
from agent.tools.texts import send_text


def common_tools(brain: Brain) -> list[Any]:
    """The tools every part of the call keeps, in the receptionist and in each flow alike (first and
    in one order, so what the model is sent changes only at its end when a flow starts)."""
    tools = [
        get_current_time, get_opening_hours, get_weekly_hours, list_services, get_service_details,
        get_business_details, answer_faq, check_availability,
        take_message, escalate_to_human, end_call,
    ]  # fmt: skip
    if brain.leads.questions:
        tools.append(capture_lead)
    if brain.notify.caller_texts:
        tools.append(send_text)
    if brain.recording.enabled:
        tools.append(stop_recording)
    return tools


def appointment_tools(brain: Brain) -> list[Any]:
    """Finding, moving and cancelling a booking the caller proves is theirs."""
    tools = [find_my_appointments, reschedule_appointment, cancel_appointment]
    if brain.privacy.verify_by_text:
        tools += [text_number_code, confirm_number_code]
    return tools


def booking_tools() -> list[Any]:
    """The booking's own steps (agent/flows/booking.py adds the read-back and the way out)."""
    return [hold_slot, book_appointment]
