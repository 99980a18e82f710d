"""The brain's `leads` section: the questions asked of a prospective customer and how answers score."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from agent.brain.schema.fields import FieldProblems, Loc, Model, Text

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
