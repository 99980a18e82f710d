"""What every section of the brain file is built from: the strict base model, field types (clock times
with "24:00", money, E.164 numbers, https URLs, non-empty text), and `FieldProblems`, which lets a check
that spans several items report each at its exact field path instead of at the parent list."""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import phonenumbers
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

Loc = tuple[str | int, ...]

# "24:00" may close a range (open until midnight); `time` cannot hold it, so it becomes time.max.
END_OF_DAY = time.max
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class FieldProblems(ValueError):
    """Several problems found by one validator, each at a path relative to the validated value."""

    def __init__(self, problems: list[tuple[Loc, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{format_loc(loc)}: {reason}" for loc, reason in problems))


def format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def hhmm(t: time) -> str:
    return "24:00" if t == END_OF_DAY else t.strftime("%H:%M")


_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_clock(value: Any) -> time:
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        # YAML 1.1 reads an unquoted 8:00 as the integer 480; the loader prevents that, code may not
        raise ValueError(f'expected a time as "HH:MM", got {value!r}')
    text = value.strip()
    if text == "24:00":
        return END_OF_DAY
    m = _HHMM.match(text)
    if not m:
        raise ValueError(
            f'expected a time as "HH:MM" (00:00-23:59, or 24:00 to close), got {value!r}'
        )
    return time(int(m.group(1)), int(m.group(2)))


ClockTime = Annotated[time, BeforeValidator(parse_clock)]


def check_e164(value: str) -> str:
    if not value.startswith("+"):
        raise ValueError(
            f"not an E.164 phone number: {value!r} (start with + and the country code, e.g. '+15035550100')"
        )
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"not an E.164 phone number: {value!r}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"not a valid phone number: {value!r}")
    canonical = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if canonical != value:
        raise ValueError(f"write phone numbers in E.164 form, e.g. {canonical!r}, not {value!r}")
    return value


E164 = Annotated[str, AfterValidator(check_e164)]


def _parse_money(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"expected a number, got {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"expected a finite number, got {value!r}")
    if amount < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return amount


Money = Annotated[Decimal, BeforeValidator(_parse_money)]
Text = Annotated[str, Field(min_length=1)]
# YAML gives dates unquoted; a quoted ISO string is just as clear, so dates alone are lax
Day = Annotated[date, Field(strict=False)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, str_strip_whitespace=True)


# a {placeholder} in a line of the brain; only the greeting's {business} is substituted
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def check_webhook_url(value: str) -> str:
    scheme, _, rest = value.partition("://")
    host = rest.split("/", 1)[0].rsplit(":", 1)[0] if rest else ""
    if scheme == "https" and host:
        return value
    if scheme == "http" and host in _LOOPBACK:
        return value  # a receiver on the same host; anywhere else the caller's details would travel in clear
    raise ValueError(f"must be an https:// URL (http:// only to localhost), got {value!r}")
