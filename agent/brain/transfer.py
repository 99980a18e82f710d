"""How a department takes a transferred call: cold (the caller's leg is handed over with a SIP REFER)
or warm (the agent calls the person first, briefs them, then puts the caller through)."""

from __future__ import annotations

from enum import StrEnum


class TransferKind(StrEnum):
    cold = "cold"
    warm = "warm"
