"""The brain's `booking` section: slot length, notice, how far ahead, buffers."""

from __future__ import annotations

from pydantic import Field, field_validator

from agent.brain.schema.fields import Model


class Booking(Model):
    slot_minutes: int = 30
    min_notice_minutes: int = Field(default=120, ge=0)
    max_days_ahead: int = Field(default=30, ge=1, le=365)
    buffer_minutes: int = Field(default=0, ge=0, le=240)

    @field_validator("slot_minutes")
    @classmethod
    def _divides_hour(cls, v: int) -> int:
        if v < 5 or 60 % v:
            raise ValueError(f"must divide 60 evenly (5, 10, 15, 20, 30 or 60), got {v}")
        return v
