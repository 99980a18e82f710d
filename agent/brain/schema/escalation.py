"""The brain's `escalation` section: the reasons a call is handed to a person (`Trigger`), and the
departments it may go to, each with its number, hours and reasons (or the single `transfer_to`)."""

from __future__ import annotations

import re
import typing
from typing import Annotated, Literal

from pydantic import AfterValidator, model_validator

from agent.brain.schema.fields import FieldProblems, Loc, Model, Text, check_e164
from agent.brain.schema.hours import WeeklyHours
from agent.brain.transfer import Transfer

Trigger = Literal[
    "pricing_dispute",
    "angry_caller",
    "legal",
    "explicit_request",
    "emergency",
    "complaint",
    "billing",
]

_SIP_URI = re.compile(r"^sips?:[^@\s]+@[A-Za-z0-9.\-]+(:\d+)?(;[^\s]*)?$")
REASONS: tuple[Trigger, ...] = typing.get_args(Trigger)


def _check_destination(value: str) -> str:
    """A number or address a call may be transferred to: `tel:+<E.164>` or `sip:user@host`."""
    if value.startswith("tel:"):
        check_e164(value[4:])
        return value
    if _SIP_URI.match(value):
        return value
    raise ValueError(f"must be 'tel:+<E.164>' or 'sip:user@host', got {value!r}")


Destination = Annotated[str, AfterValidator(_check_destination)]


class Department(Model):
    """One place a caller can be handed to (front desk, billing, the on-call technician): its number,
    when someone answers there, and which reasons (or which words the caller asks for it by) lead to it."""

    name: Text
    transfer_to: Destination
    # None: the business's opening hours (closures applied); given: a rota that ignores closures
    hours: WeeklyHours | None = None
    # escalation reasons this department takes, in the order departments are listed
    reasons: list[Trigger] = []
    # other words a caller asks for it by ("accounts", "invoices"); its name always counts
    words: list[Text] = []
    say_before: Text | None = None  # None: escalation.handoff_line
    transfer: Transfer | None = None  # None: warm when escalation.warm_transfer, else cold
    # takes any reason no department lists; at most one department is the default
    default: bool = False


class Escalation(Model):
    triggers: list[Trigger] = []
    legal_keywords: list[Text] = []
    # one destination, for a business with a single team: it becomes one department taking every reason
    transfer_to: Destination | None = None
    warm_transfer: bool = False
    humans_available: WeeklyHours | None = (
        None  # with transfer_to; None: the business's opening hours
    )
    handoff_line: Text = "One moment, I'm connecting you with a member of our team."
    departments: list[Department] = []

    @model_validator(mode="after")
    def _one_way_to_route(self) -> Escalation:
        problems: list[tuple[Loc, str]] = []
        if self.departments:
            for key in ("transfer_to", "humans_available"):
                if getattr(self, key) is not None:
                    problems.append(((key,), (
                        "give departments or transfer_to, not both (make it a department"
                        + (" and its hours)" if key == "humans_available" else ")"))))  # fmt: skip
        names: dict[str, int] = {}
        default: int | None = None
        for i, d in enumerate(self.departments):
            key = d.name.casefold()
            if key in names:
                problems.append(
                    ((("departments", i, "name")), f"duplicate of departments[{names[key]}]")
                )
            names.setdefault(key, i)
            if d.default:
                if default is not None:
                    problems.append((("departments", i, "default"), (
                        f"departments[{default}] ({self.departments[default].name}) is already the default;"
                        " only one department takes the reasons nobody lists")))  # fmt: skip
                default = i if default is None else default
        if self.warm_transfer and not self.destinations:
            problems.append(
                (("warm_transfer",), "a warm transfer needs transfer_to or departments")
            )
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def destinations(self) -> list[Department]:
        """Every department a call may be transferred to, in the file's order: `departments`, or the
        single team `transfer_to` stands for (every reason, `humans_available`, the hand-off line)."""
        if self.departments or self.transfer_to is None:
            return list(self.departments)
        return [Department(name="team", transfer_to=self.transfer_to, hours=self.humans_available,
                           reasons=list(REASONS), default=True)]  # fmt: skip

    def say_before(self, department: Department) -> str:
        return department.say_before or self.handoff_line
