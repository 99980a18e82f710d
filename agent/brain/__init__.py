"""A business's brain file: its schema, loading and validation, the prompt rendered from it, its
opening-hours arithmetic, and the guard that checks what the agent says against it."""

from agent.brain import departments, schedule
from agent.brain.grounding import Violation, check_turn
from agent.brain.loader import BrainDirectory, BrainError, load_brain, load_brains, parse_brain
from agent.brain.render import greeting_instructions, render_instructions
from agent.brain.schema.booking import Booking
from agent.brain.schema.brain import Brain
from agent.brain.schema.business import Business, Faq, Price, Service
from agent.brain.schema.calls import Calls
from agent.brain.schema.escalation import Escalation
from agent.brain.schema.hours import Closure, TimeRange, WeeklyHours
from agent.brain.schema.leads import LeadQuestion, Leads
from agent.brain.schema.privacy import Privacy

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
