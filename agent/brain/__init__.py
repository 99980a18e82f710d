"""A business's brain file: its schema, loading and validation, the prompt rendered from it, its
opening-hours arithmetic, and the guard that checks what the agent says against it."""

from agent.brain import departments, schedule
from agent.brain.grounding import Violation, check_turn
from agent.brain.loader import BrainDirectory, BrainError, load_brain, load_brains, parse_brain
from agent.brain.render import greeting_instructions, render_instructions
from agent.brain.schema import (
    Booking,
    Brain,
    Business,
    Calls,
    Closure,
    Escalation,
    Faq,
    LeadQuestion,
    Leads,
    Price,
    Privacy,
    Service,
    TimeRange,
    WeeklyHours,
)

__all__ = [
    "Booking",
    "Brain",
    "BrainDirectory",
    "BrainError",
    "Business",
    "Calls",
    "Closure",
    "Escalation",
    "Faq",
    "LeadQuestion",
    "Leads",
    "Price",
    "Privacy",
    "Service",
    "TimeRange",
    "Violation",
    "WeeklyHours",
    "check_turn",
    "greeting_instructions",
    "load_brain",
    "load_brains",
    "parse_brain",
    "render_instructions",
    "departments",
    "schedule",
]
