"""The whole brain file: one `Brain` holds every section, and checks what spans sections (the greeting
discloses the AI in the first language, the model-down lines exist in it, recording is said once and
truly, services and closures are distinct). Answers which service a caller means."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from agent.brain import languages as lang
from agent.brain.schema.booking import Booking
from agent.brain.schema.business import Business, Faq, Service, service_tokens
from agent.brain.schema.calendar import Calendar
from agent.brain.schema.calls import MODEL_DOWN_LINE_FIELDS, Calls
from agent.brain.schema.escalation import Escalation
from agent.brain.schema.fields import PLACEHOLDER, FieldProblems, Loc, Model, Text
from agent.brain.schema.hours import Closure, WeeklyHours
from agent.brain.schema.leads import Leads
from agent.brain.schema.notify import Notify
from agent.brain.schema.privacy import Privacy
from agent.brain.schema.recording import RECORDING_WORD, Recording

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
        if first in (None, "en") or not isinstance(calls, dict):
            return data
        down = calls.get("model_down", {})
        if not isinstance(down, dict):
            return data
        if shipped is None:
            # a language we ship no lines for: the busy line came later than the others, so a brain
            # written before it asks for a message after the tone in its own words, the message line
            if "busy_line" in down or "message_line" not in down:
                return data
            shipped = {"busy_line": down["message_line"]}
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
        unknown = [p for p in PLACEHOLDER.findall(v) if p != "business"]
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
    def _codes_need_texts(self) -> Brain:
        if self.privacy.verify_by_text and not self.notify.caller_texts:
            raise FieldProblems([(("privacy", "verify_by_text"), (
                "texts a code to the caller, but this business sends no texts: set notify.caller_texts"
                " true, or verify_by_text false"
            ))])  # fmt: skip
        return self

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
        unwritten = [
            f for f in ("voice", *MODEL_DOWN_LINE_FIELDS) if f not in down.model_fields_set
        ]
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
        if RECORDING_WORD.search(self.greeting):
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
                key = " ".join(service_tokens(name))
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
        query = set(service_tokens(name))
        if not query:
            return None
        names = [(s, [set(service_tokens(n)) for n in (s.name, *s.aliases)]) for s in self.services]
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
