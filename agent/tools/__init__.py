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


def receptionist_tools(brain: Brain) -> list[Any]:
    tools = [
        get_current_time, get_opening_hours, get_weekly_hours, list_services, get_service_details,
        get_business_details, answer_faq,
        check_availability, hold_slot, book_appointment, find_my_appointments,
        reschedule_appointment, cancel_appointment,
        take_message, escalate_to_human, end_call,
    ]  # fmt: skip
    if brain.leads.questions:
        tools.append(capture_lead)
    if brain.notify.caller_texts:
        tools.append(send_text)
    if brain.privacy.verify_by_text:
        tools += [text_number_code, confirm_number_code]
    if brain.recording.enabled:
        tools.append(stop_recording)
    return tools
