"""How a department takes a transferred call: cold (the caller's leg is handed over with a SIP REFER)
or warm (the agent calls the person first, briefs them, then puts the caller through)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator


class TransferKind(StrEnum):
    cold = "cold"
    warm = "warm"


def _kind(value: Any) -> Any:
    # the brain file says `transfer: warm`; the models are strict, so the word becomes the enum here
    if isinstance(value, str) and not isinstance(value, TransferKind):
        if value not in TransferKind.__members__:
            raise ValueError(f"must be warm or cold, got {value!r}")
        return TransferKind(value)
    return value


Transfer = Annotated[TransferKind, BeforeValidator(_kind)]
