"""The brain's `business`, `services` (with prices) and `faq`, and the words a service is matched by."""

from __future__ import annotations

import re
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from agent.brain.schema.fields import E164, FieldProblems, Loc, Model, Money, Text


class Business(Model):
    name: Text
    timezone: Text
    address: Text
    phone: E164  # the public contact number callers may be given
    numbers: list[
        E164
    ] = []  # dialed numbers that reach this business; none: only the default brain
    website: Text | None = None
    about: Text | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {v!r} (e.g. 'America/Chicago')") from None
        return v

    @field_validator("numbers")
    @classmethod
    def _distinct_numbers(cls, v: list[str]) -> list[str]:
        seen: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for i, n in enumerate(v):
            if n in seen:
                problems.append(((i,), f"duplicate of numbers[{seen[n]}] {n}"))
            seen.setdefault(n, i)
        if problems:
            raise FieldProblems(problems)
        return v


class Price(Model):
    """Either a fixed `amount` or a `min`..`max` range, in the brain's currency."""

    amount: Money | None = None
    min: Money | None = None
    max: Money | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Price:
        ranged = self.min is not None or self.max is not None
        if self.amount is not None and ranged:
            raise ValueError("give either amount or min/max, not both")
        if self.amount is None and not ranged:
            raise ValueError("give amount, or min and max")
        if ranged and (self.min is None or self.max is None):
            raise FieldProblems(
                [(("max" if self.max is None else "min",), "a price range needs both min and max")]
            )
        if ranged and self.min > self.max:  # type: ignore[operator]
            raise FieldProblems([(("min",), f"min {self.min} is greater than max {self.max}")])
        return self

    @property
    def low(self) -> Decimal:
        return self.amount if self.amount is not None else self.min  # type: ignore[return-value]

    @property
    def high(self) -> Decimal:
        return self.amount if self.amount is not None else self.max  # type: ignore[return-value]

    @property
    def is_range(self) -> bool:
        return self.amount is None


class Service(Model):
    name: Text
    duration_minutes: int = Field(ge=5, le=480)
    price: Price | None = None  # None: no set price (quoted on site); price_note should say so
    price_note: Text | None = None
    description: Text
    bookable: bool = True
    # other ways callers name it ("teeth whitening", "new water heater"); used by Brain.service
    aliases: list[Text] = []


class Faq(Model):
    question: Text
    answer: Text
    keywords: list[Text] = []


FILLER = frozenset(
    "a an the my our your some please i id like need want to book get for me just and "
    "appointment appointments".split()
)


def singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _tokens(text: str) -> list[str]:
    """Words of a service name or a caller's phrase, normalised for matching."""
    text = text.lower().replace("&", " and ").replace("'", "").replace("’", "").replace("-", "")
    return [singular(w) for w in re.findall(r"[a-z0-9]+", text) if w not in FILLER]


def service_tokens(text: str) -> list[str]:
    return _tokens(text)
