"""The brain's `notify` section: where the owner hears about what cannot wait, the daily digest, quiet
hours, and texts to callers."""

from __future__ import annotations

import re
import typing
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, field_validator, model_validator

from agent.brain.schema.fields import (
    E164,
    END_OF_DAY,
    ClockTime,
    FieldProblems,
    Model,
    check_webhook_url,
    hhmm,
    parse_clock,
)

# what is sent to the owner at once, without waiting for a digest (README "Notifications")
NotificationKind = Literal[
    "urgent_message", "escalation_failed", "hot_lead", "grounding_violation", "assistant_unreachable"
]
NOTIFICATION_KINDS: tuple[NotificationKind, ...] = typing.get_args(NotificationKind)

_EMAIL = re.compile(r"^[^@\s<>,;]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"not an email address: {value!r}")
    return value


# what may wake the owner during quiet hours; the rest waits for the quiet hours' end
URGENT_KINDS: tuple[NotificationKind, ...] = ("urgent_message", "escalation_failed")


class QuietHours(Model):
    """A nightly window ("21:00-07:00", local time) in which non-urgent email and SMS wait."""

    start: time
    end: time

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        start, sep, end = value.partition("-")
        if not sep:
            raise ValueError(f'expected "HH:MM-HH:MM" (e.g. "21:00-07:00"), got {value!r}')
        return {"start": parse_clock(start), "end": parse_clock(end)}

    @model_validator(mode="after")
    def _a_real_window(self) -> QuietHours:
        if END_OF_DAY in (self.start, self.end):
            raise ValueError('write midnight as "00:00"')
        if self.start == self.end:
            raise ValueError("start and end are the same time: no window (leave quiet_hours out)")
        return self

    def covers(self, t: time) -> bool:
        """Whether local time `t` is inside the window (which may run over midnight)."""
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def __str__(self) -> str:
        return f"{hhmm(self.start)}-{hhmm(self.end)}"


class Notify(Model):
    """Where the owner hears about what cannot wait, when the daily digest goes out, and whether
    callers get texts; secrets (SMTP, Twilio, the webhook key) live in the settings, never here."""

    email: list[Annotated[str, AfterValidator(_check_email)]] = []
    sms: list[E164] = []
    webhook: Annotated[str, AfterValidator(check_webhook_url)] | None = None
    at_once: list[NotificationKind] = list(NOTIFICATION_KINDS)
    # local time of the daily digest (yesterday's calls, bookings, messages, leads, flags, cost); none: no digest
    digest_at: ClockTime | None = None
    quiet_hours: QuietHours | None = None
    # a confirmation text to the caller after a booking, move or cancellation, when they agree on the call
    caller_texts: bool = False

    @field_validator("digest_at")
    @classmethod
    def _a_time_of_day(cls, v: time | None) -> time | None:
        if v == END_OF_DAY:
            raise ValueError('write midnight as "00:00"')
        return v

    @model_validator(mode="after")
    def _digest_outside_quiet_hours(self) -> Notify:
        if (
            self.digest_at is not None
            and self.quiet_hours is not None
            and self.quiet_hours.covers(self.digest_at)
        ):
            raise FieldProblems([(("digest_at",), (
                f"{hhmm(self.digest_at)} is inside quiet_hours {self.quiet_hours}: the digest would wait"
                f" until {hhmm(self.quiet_hours.end)}; set digest_at to when it should arrive"))])  # fmt: skip
        return self
