"""Which department takes an escalated call: the one the caller asked for, else the first that takes
the reason, else the default; a closed one gives way to the next that takes the reason and is open.

Only departments the brain lists can come out of here, so no caller or model can make the agent
transfer to a number of their choosing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from agent.brain.schedule import department_open_at
from agent.brain.schema.brain import Brain
from agent.brain.schema.escalation import Department
from agent.brain.transfer import TransferKind


@dataclass(frozen=True)
class Route:
    """Where the call goes (`department` None: nowhere), and the departments passed over as closed."""

    department: Department | None
    closed: list[Department] = field(default_factory=list)


# what a caller says around a department's name ("the billing department, please")
_FILLER = frozenset({"the", "a", "to", "department", "office", "please"})


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.casefold())) - _FILLER


def named(brain: Brain, said: str) -> Department | None:
    """The department a caller asked for ("billing please", "the plumber"), by its name or words, whole
    or in part; None when none or several fit."""
    asked = _words(said)
    if not asked:
        return None
    fits = [
        d for d in brain.escalation.destinations
        if any(_words(w) and (_words(w) <= asked or asked <= _words(w)) for w in (d.name, *d.words))
    ]  # fmt: skip
    return fits[0] if len(fits) == 1 else None


def candidates(brain: Brain, reason: str, asked: Department | None = None) -> list[Department]:
    """The departments that may take a call for `reason`, best first: the one asked for, those that
    list the reason (in the file's order), then the default."""
    everyone = brain.escalation.destinations
    out = [asked] if asked is not None else []
    out += [d for d in everyone if reason in d.reasons and d not in out]
    out += [d for d in everyone if d.default and d not in out]
    return out


def route(brain: Brain, reason: str, when: datetime, asked: Department | None = None) -> Route:
    """The first candidate open at `when`, and the closed ones passed over on the way."""
    closed: list[Department] = []
    for department in candidates(brain, reason, asked):
        if department_open_at(brain, department, when):
            return Route(department, closed)
        closed.append(department)
    return Route(None, closed)


def transfer_kind(brain: Brain, department: Department) -> TransferKind:
    """Warm or cold: the department's own `transfer`, else the brain's `escalation.warm_transfer`."""
    if department.transfer is not None:
        return department.transfer
    return TransferKind.warm if brain.escalation.warm_transfer else TransferKind.cold
