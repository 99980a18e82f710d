"""The brain file's shape: one pydantic model per section, every check that can be made without a clock.

Checks that span several items (overlapping hours, duplicate names) raise `FieldProblems` so the loader
can report each one at its exact field path instead of at the parent list.
"""

from __future__ import annotations

import re
import typing
from datetime import date, time
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.brain import languages as lang
from agent.brain.transfer import Transfer

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


# ---------------------------------------------------------------------------------------------
# scalar types


_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _parse_clock(value: Any) -> time:
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


ClockTime = Annotated[time, BeforeValidator(_parse_clock)]


def _check_e164(value: str) -> str:
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


E164 = Annotated[str, AfterValidator(_check_e164)]


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


# ---------------------------------------------------------------------------------------------
# hours


class TimeRange(Model):
    open: ClockTime
    close: ClockTime

    @field_validator("open")
    @classmethod
    def _open_not_midnight_end(cls, v: time) -> time:
        if v == END_OF_DAY:
            raise ValueError("24:00 can only close a range")
        return v

    @field_validator("close")
    @classmethod
    def _close_after_open(cls, v: time, info: ValidationInfo) -> time:
        opened = info.data.get("open")
        if opened is not None and v <= opened:
            raise ValueError(f"close {hhmm(v)} must be after open {hhmm(opened)}")
        return v

    def __str__(self) -> str:
        return f"{hhmm(self.open)}-{hhmm(self.close)}"


def _overlaps(ranges: list[TimeRange]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for i, r in enumerate(ranges):
        for earlier in ranges[:i]:
            if r.open < earlier.close and earlier.open < r.close:
                problems.append(((i,), f"overlaps {earlier}"))
                break
    return problems


DayHours = list[TimeRange]


class WeeklyHours(Model):
    """Opening ranges per weekday; an empty list means closed all day."""

    monday: DayHours
    tuesday: DayHours
    wednesday: DayHours
    thursday: DayHours
    friday: DayHours
    saturday: DayHours
    sunday: DayHours

    @model_validator(mode="after")
    def _no_overlaps(self) -> WeeklyHours:
        problems = [
            ((day, *loc), reason)
            for day in WEEKDAYS
            for loc, reason in _overlaps(getattr(self, day))
        ]
        if problems:
            raise FieldProblems(problems)
        return self

    def on_weekday(self, weekday: int) -> list[TimeRange]:
        """Ranges for `date.weekday()` (0 = Monday), in time order."""
        return sorted(getattr(self, WEEKDAYS[weekday]), key=lambda r: r.open)


class Closure(Model):
    date: Day
    end_date: Day | None = None
    reason: Text
    # given: special hours on these days instead of being closed
    hours: DayHours | None = None

    @field_validator("end_date")
    @classmethod
    def _end_after_start(cls, v: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("date")
        if v is not None and start is not None and v < start:
            raise ValueError(f"end_date {v} is before date {start}")
        return v

    @model_validator(mode="after")
    def _special_hours_do_not_overlap(self) -> Closure:
        problems = [(("hours", *loc), reason) for loc, reason in _overlaps(self.hours or [])]
        if problems:
            raise FieldProblems(problems)
        return self

    @property
    def last_day(self) -> date:
        return self.end_date or self.date

    def covers(self, day: date) -> bool:
        return self.date <= day <= self.last_day


# ---------------------------------------------------------------------------------------------
# business, services, faq


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


# ---------------------------------------------------------------------------------------------
# booking, leads, escalation, calls


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


_LEAD_KEY = re.compile(r"^[a-z][a-z0-9_]*$")


class LeadQuestion(Model):
    key: Text
    question: Text
    weight: int = Field(ge=1, le=10)
    options: list[Text] | None = None
    qualifying: list[Text] | None = None  # answers that make the lead hotter

    @field_validator("key")
    @classmethod
    def _snake_case(cls, v: str) -> str:
        if not _LEAD_KEY.match(v):
            raise ValueError(f"must be snake_case like 'timeline', got {v!r}")
        return v

    @model_validator(mode="after")
    def _qualifying_among_options(self) -> LeadQuestion:
        if self.options is not None and self.qualifying:
            allowed = {o.lower() for o in self.options}
            problems = [
                (("qualifying", i), f"{q!r} is not one of options")
                for i, q in enumerate(self.qualifying)
                if q.lower() not in allowed
            ]
            if problems:
                raise FieldProblems(problems)
        return self


class Leads(Model):
    questions: list[LeadQuestion] = []
    hot_score: int = Field(default=70, ge=0, le=100)

    @field_validator("questions")
    @classmethod
    def _distinct_keys(cls, v: list[LeadQuestion]) -> list[LeadQuestion]:
        seen: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for i, q in enumerate(v):
            if q.key in seen:
                problems.append(
                    ((i, "key"), f"duplicate key {q.key!r} (also questions[{seen[q.key]}])")
                )
            seen.setdefault(q.key, i)
        if problems:
            raise FieldProblems(problems)
        return v


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
        _check_e164(value[4:])
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
    humans_available: WeeklyHours | None = None  # with transfer_to; None: the business's opening hours
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
                problems.append(((("departments", i, "name")), f"duplicate of departments[{names[key]}]"))
            names.setdefault(key, i)
            if d.default:
                if default is not None:
                    problems.append((("departments", i, "default"), (
                        f"departments[{default}] ({self.departments[default].name}) is already the default;"
                        " only one department takes the reasons nobody lists")))  # fmt: skip
                default = i if default is None else default
        if self.warm_transfer and not self.destinations:
            problems.append((("warm_transfer",), "a warm transfer needs transfer_to or departments"))
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


# what is sent to the owner at once, without waiting for a digest (README "Notifications")
NotificationKind = Literal["urgent_message", "escalation_failed", "hot_lead", "grounding_violation"]
NOTIFICATION_KINDS: tuple[NotificationKind, ...] = typing.get_args(NotificationKind)

_EMAIL = re.compile(r"^[^@\s<>,;]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"not an email address: {value!r}")
    return value


def _check_webhook_url(value: str) -> str:
    scheme, _, rest = value.partition("://")
    host = rest.split("/", 1)[0].rsplit(":", 1)[0] if rest else ""
    if scheme == "https" and host:
        return value
    if scheme == "http" and host in _LOOPBACK:
        return value  # a receiver on the same host; anywhere else the caller's details would travel in clear
    raise ValueError(f"must be an https:// URL (http:// only to localhost), got {value!r}")


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
        return {"start": _parse_clock(start), "end": _parse_clock(end)}

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
    webhook: Annotated[str, AfterValidator(_check_webhook_url)] | None = None
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
        if self.digest_at is not None and self.quiet_hours is not None and self.quiet_hours.covers(self.digest_at):
            raise FieldProblems([(("digest_at",), (
                f"{hhmm(self.digest_at)} is inside quiet_hours {self.quiet_hours}: the digest would wait"
                f" until {hhmm(self.quiet_hours.end)}; set digest_at to when it should arrive"))])  # fmt: skip
        return self


_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"must name an environment variable (A-Z, 0-9, _), got {value!r}")
    return value


class CalDav(Model):
    """The owner's CalDAV calendar: bookings are written to it, and the owner's own events in it block
    those times. The password is read from the environment variable named here, never from this file."""

    url: Annotated[str, AfterValidator(_check_webhook_url)]  # the calendar collection, ending in /
    username: Annotated[str, Field(min_length=1)]
    password_env: Annotated[str, AfterValidator(_check_env_name)]

    @field_validator("url")
    @classmethod
    def _a_collection(cls, v: str) -> str:
        return v if v.endswith("/") else v + "/"


class Calendar(Model):
    caldav: CalDav | None = None


class ModelDown(Model):
    """What callers hear when the AI model cannot be reached, in the business's language: rendered to
    audio at worker start with espeak-ng in `voice`, and played without the model."""

    voice: Text = "en-us"  # an espeak-ng voice (`espeak-ng --voices`): en-us, en-gb, es, fr, de, ...
    hold_line: Text = "One moment, please."
    transfer_line: Text = (
        "I'm sorry, I'm having technical trouble. Let me put you through to a member of our team."
    )
    message_line: Text = (
        "I'm sorry, I'm having technical trouble right now. Please leave your name, your number and "
        "a short message after the tone, and we will call you back."
    )
    goodbye_line: Text = "Thank you, we have your message. Goodbye."
    message_seconds: int = Field(default=60, ge=10, le=300)  # the longest voicemail taken


_MODEL_DOWN_LINES = ("hold_line", "transfer_line", "message_line", "goodbye_line")


class Calls(Model):
    max_duration_minutes: int = Field(default=15, ge=1, le=120)
    silence_prompt_seconds: int = Field(default=8, ge=1, le=120)
    silence_hangup_seconds: int = Field(default=12, ge=1, le=600)
    # turn taking for this business's callers; left out, the worker's settings apply
    # (MIN_ENDPOINTING_DELAY, DICTATION_ENDPOINTING_DELAY, MIN_INTERRUPTION_DURATION, SPECULATIVE_REPLY)
    endpointing_seconds: float | None = Field(default=None, ge=0.1, le=3.0)
    dictation_endpointing_seconds: float | None = Field(default=None, ge=0.1, le=5.0)
    interruption_seconds: float | None = Field(default=None, ge=0.05, le=2.0)
    speculative_reply: bool | None = None
    model_down: ModelDown = ModelDown()

    @model_validator(mode="after")
    def _prompt_before_hangup(self) -> Calls:
        if self.silence_hangup_seconds <= self.silence_prompt_seconds:
            raise FieldProblems(
                [(("silence_hangup_seconds",), "must be longer than silence_prompt_seconds")]
            )
        if (
            self.endpointing_seconds is not None
            and self.dictation_endpointing_seconds is not None
            and self.dictation_endpointing_seconds < self.endpointing_seconds
        ):
            raise FieldProblems(
                [(("dictation_endpointing_seconds",), "must not be shorter than endpointing_seconds")]
            )
        return self


class Privacy(Model):
    # days a call's personal data (caller number, transcript, tool calls, leads, messages, the names and
    # numbers on past appointments) is kept; `receptionist retention` strips what is older. Left out:
    # kept forever. At least a day, so a sweep never reaches a call still in progress.
    retain_days: int | None = Field(default=None, ge=1, le=36500)


# "recorded" in the languages whose lines we ship (languages.MODEL_DOWN_LINES): en, es, fr
_RECORDING_WORD = re.compile(
    r"\b(record(ed|ing)?|grabad[ao]s?|grabaci[oó]n|enregistr(é|ée|és|ées|ement))\b", re.IGNORECASE
)


class Recording(Model):
    """Whether this business's calls are recorded (caller and agent, to RECORDINGS_DIR), and the line
    that tells the caller so: spoken right after the greeting's first sentence, the AI disclosure."""

    enabled: bool = False
    consent_line: Text = "This call is recorded; just say so if you'd rather it wasn't."

    @field_validator("consent_line")
    @classmethod
    def _says_recorded(cls, v: str) -> str:
        if not _RECORDING_WORD.search(v):
            raise ValueError(
                "must tell the caller the call is recorded (include the word 'recorded', 'grabada' or "
                "'enregistré')"
            )
        if _PLACEHOLDER.search(v):
            raise ValueError("placeholders are not substituted in the consent line")
        return v


# ---------------------------------------------------------------------------------------------
# the brain


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_AI_WORD = re.compile(r"\bAI\b")
LanguageCode = Annotated[str, AfterValidator(lang.check_code)]


class Brain(Model):
    business: Business
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    # what the agent answers in (ISO 639-1); the first is the greeting's and the brain's lines' language
    languages: list[LanguageCode] = Field(default=["en"], min_length=1)
    greeting: Text
    hours: WeeklyHours
    closures: list[Closure] = []
    services: list[Service] = Field(min_length=1)
    faq: list[Faq] = []
    booking: Booking = Booking()
    leads: Leads = Leads()
    escalation: Escalation = Escalation()
    guardrails: list[Text] = []
    calls: Calls = Calls()
    privacy: Privacy = Privacy()
    recording: Recording = Recording()
    notify: Notify = Notify()
    calendar: Calendar = Calendar()

    @model_validator(mode="before")
    @classmethod
    def _model_down_in_first_language(cls, data: Any) -> Any:
        # the model-down lines default to the first language's, where we ship them; the brain's own win
        first = (data.get("languages") or [None])[0] if isinstance(data, dict) else None
        shipped = lang.MODEL_DOWN_LINES.get(first) if isinstance(first, str) else None
        calls = data.get("calls", {}) if isinstance(data, dict) else None
        if shipped is None or first == "en" or not isinstance(calls, dict):
            return data
        down = calls.get("model_down", {})
        if not isinstance(down, dict):
            return data
        return {**data, "calls": {**calls, "model_down": {**shipped, **down}}}

    @field_validator("languages")
    @classmethod
    def _distinct_languages(cls, v: list[str]) -> list[str]:
        problems: list[tuple[Loc, str]] = [
            ((i,), f"{code!r} is listed twice") for i, code in enumerate(v) if code in v[:i]
        ]
        if problems:
            raise FieldProblems(problems)
        return v

    @field_validator("greeting")
    @classmethod
    def _discloses_ai(cls, v: str, info: ValidationInfo) -> str:
        unknown = [p for p in _PLACEHOLDER.findall(v) if p != "business"]
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{unknown[0]}}}; only {{business}} is substituted"
            )
        # the disclosure comes first, before the caller has said anything (judged on the template,
        # so a business name with a full stop in it cannot move it)
        first = re.split(r"(?<=[.!?])\s", v, maxsplit=1)[0]
        language = (info.data.get("languages") or ["en"])[0]
        word = lang.AI_WORDS.get(language, "AI")
        if not _AI_WORD.search(first) and not re.search(rf"\b{word}\b", first):
            said = "'AI'" if word == "AI" else f"'AI' or '{word}'"
            raise ValueError(
                f"the first sentence must tell the caller they are talking to an AI (include the word {said})"
            )
        return v

    @model_validator(mode="after")
    def _greeting_in_first_language(self) -> Brain:
        # the greeting is heard before the caller says a word: in the first language, whoever calls
        heard_as = lang.guess_language(self.greeting)
        first = self.languages[0]
        if heard_as is not None and heard_as != first:
            raise FieldProblems([(("greeting",), (
                f"reads as {lang.name(heard_as)}, but the first of languages is {lang.name(first)}: the "
                "greeting is spoken in the first language (list it first, or write the greeting in it)"))])  # fmt: skip
        return self

    @model_validator(mode="after")
    def _model_down_lines_in_first_language(self) -> Brain:
        # nobody but us speaks when the model is down: lines in a language we do not ship must be written
        first = self.languages[0]
        down = self.calls.model_down
        unwritten = [f for f in ("voice", *_MODEL_DOWN_LINES) if f not in down.model_fields_set]
        if first != "en" and first not in lang.MODEL_DOWN_LINES and unwritten:
            raise FieldProblems([(("calls", "model_down", unwritten[0]), (
                f"the first language is {lang.name(first)} ({first}) and no {lang.name(first)} lines ship "
                f"with the receptionist: write {', '.join(unwritten)} in {lang.name(first)} (voice: an "
                "espeak-ng voice, `espeak-ng --voices`)"))])  # fmt: skip
        return self

    @model_validator(mode="after")
    def _recording_said_once_and_truly(self) -> Brain:
        # a greeting that promises a recording nobody makes is false; one that says it beside the
        # consent line says it twice. The consent line is the one place it is said.
        if _RECORDING_WORD.search(self.greeting):
            reason = (
                "mentions recording; the consent line (recording.consent_line) already says it after "
                "the first sentence: take it out of the greeting"
                if self.recording.enabled
                else "mentions recording, but recording is off: set recording.enabled with a "
                "consent_line, or take the claim out of the greeting"
            )
            raise FieldProblems([(("greeting",), reason)])
        return self

    @field_validator("services")
    @classmethod
    def _distinct_services(cls, v: list[Service]) -> list[Service]:
        seen: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for i, s in enumerate(v):
            for j, name in enumerate([s.name, *s.aliases]):
                key = " ".join(_tokens(name))
                if key in seen and seen[key] != i:
                    where: Loc = (i, "name") if j == 0 else (i, "aliases", j - 1)
                    problems.append(
                        (where, f"{name!r} is already the name of services[{seen[key]}]")
                    )
                seen.setdefault(key, i)
        if problems:
            raise FieldProblems(problems)
        return v

    @field_validator("closures")
    @classmethod
    def _closures_apart(cls, v: list[Closure]) -> list[Closure]:
        problems: list[tuple[Loc, str]] = []
        for i, c in enumerate(v):
            for j, earlier in enumerate(v[:i]):
                if c.date <= earlier.last_day and earlier.date <= c.last_day:
                    problems.append(((i,), f"overlaps closures[{j}] ({earlier.reason})"))
                    break
        if problems:
            raise FieldProblems(problems)
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.business.timezone)

    def greeting_text(self) -> str:
        """The opening line as spoken: the AI disclosure first, then the consent line when calls are
        recorded, then the rest of the greeting."""
        parts = re.split(r"(?<=[.!?])\s+", self.greeting, maxsplit=1)
        if self.recording.enabled:
            parts.insert(1, self.recording.consent_line)
        return " ".join(parts).replace("{business}", self.business.name)

    def closure_on(self, day: date) -> Closure | None:
        return next((c for c in self.closures if c.covers(day)), None)

    def service(self, name: str) -> Service | None:
        """The service a caller means by `name`, or None when nothing or several fit.

        Tolerates case, plurals, articles and filler ("a drain cleaning", "cleanings"), extra words
        around the name, and a partial name ("cleaning") when only one service contains it.
        """
        query = set(_tokens(name))
        if not query:
            return None
        names = [(s, [set(_tokens(n)) for n in (s.name, *s.aliases)]) for s in self.services]
        exact = [s for s, variants in names if any(v == query for v in variants)]
        if len(exact) == 1:
            return exact[0]
        # the caller said more than the name: the service whose full name is inside, longest wins
        inside = [
            (max(len(v) for v in vs if v <= query), s)
            for s, vs in names
            if any(v and v <= query for v in vs)
        ]
        if inside:
            best = max(size for size, _ in inside)
            winners = [s for size, s in inside if size == best]
            if len(winners) == 1:
                return winners[0]
            return None
        # the caller said less: every word they said is in exactly one service's name
        partial = [s for s, vs in names if any(query <= v for v in vs)]
        return partial[0] if len(partial) == 1 else None


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
