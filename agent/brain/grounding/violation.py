"""A claim the grounding guard caught: what kind, the sentence that made it, and what to say instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Violation:
    kind: Literal["hours", "appointment", "price", "service", "faq"]
    claim: str  # the sentence that made the claim
    correction: str  # a short sentence from the brain the agent can say instead
