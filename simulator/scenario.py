"""Call scenarios: one YAML file describes a whole call (the business, the clock, what the caller says,
what the simulated model does, and what must be true afterwards)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.brain.loader import duplicate_keys
from simulator.faults import Fault
from simulator.recordings import check_words, voice_for
from simulator.script import ModelStep
from simulator.speech import CALLER_VOICE, MODEL_VOICE

REPO_ROOT = Path(__file__).resolve().parent.parent

Outcome = Literal["booked", "lead", "message", "escalated", "answered", "abandoned", "error"]


class ScenarioError(Exception):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallerTurn(_Strict):
    """One caller turn; `...` in `caller` is a mid-turn pause (as when dictating a number)."""

    caller: str | None = Field(None, description="what the caller says (spoken with espeak-ng in audio runs)")
    silence_s: float | None = Field(
        None, ge=0, description="instead of speaking, the caller stays silent this long"
    )
    barge_in_ms: int | None = Field(
        None, ge=0, description="audio runs: start speaking this many ms into the agent's reply"
    )
    pause_before_ms: int = Field(400, ge=0, description="audio runs: silence before the caller speaks")
    pause_ms: int = Field(800, ge=0, le=5000, description="audio runs: length of each '...' pause")
    pauses_ms: list[Annotated[int, Field(ge=0, le=5000)]] | None = Field(
        None, description="audio runs: each '...' pause in order, instead of one `pause_ms` for all"
    )
    voice: Literal["espeak", "recorded"] = Field(
        "espeak",
        description="audio runs: espeak-ng, or a human voice's recordings of digits and letters "
        "spliced word by word, in the language of `caller_voice` (en, es or fr: simulator/recordings.py)",
    )
    audio: list[Path] | None = Field(
        None,
        description="audio runs: one recording (WAV, any rate) per phrase of `caller`, played with the turn's "
        "pauses instead of a voice speaking the words; relative to the scenario file or the repository",
    )
    dtmf: str | None = Field(None, pattern=r"^[0-9*#]+$", description="keys the caller presses")
    after_tone: bool = Field(
        False, description="audio runs: speak once the voicemail tone has played (the model is down)"
    )
    hangup: bool = Field(False, description="the caller hangs up after this turn (mid-sentence if cut)")
    model: list[ModelStep] = Field(default_factory=list, description="what the model does in reply")

    @property
    def words(self) -> str:
        """What the caller says, without the pause marks (what a transcriber would hear)."""
        return " ".join(p.strip() for p in (self.caller or "").split("...") if p.strip())

    @property
    def phrases(self) -> list[str]:
        return [p.strip() for p in (self.caller or "").split("...") if p.strip()]

    @property
    def pauses(self) -> list[int]:
        """The length (ms) of each pause between phrases."""
        return self.pauses_ms if self.pauses_ms is not None else [self.pause_ms] * (len(self.phrases) - 1)

    @model_validator(mode="after")
    def _one_action(self) -> CallerTurn:
        if self.caller is None and self.silence_s is None and self.dtmf is None and not self.hangup:
            raise ValueError("a turn needs `caller`, `dtmf`, `silence_s` or `hangup`")
        if self.pauses_ms is not None and len(self.pauses_ms) != len(self.phrases) - 1:
            raise ValueError(f"`pauses_ms` has {len(self.pauses_ms)} pauses for {len(self.phrases) - 1} '...'")
        if self.audio is not None and len(self.audio) != len(self.phrases):
            raise ValueError(f"`audio` has {len(self.audio)} recordings for {len(self.phrases)} phrases of `caller`")
        return self


class ExpectedRows(_Strict):
    """Rows that must be in Postgres after the call; each dict matches a row on the keys it names."""

    calls: list[dict[str, Any]] | None = None
    appointments: list[dict[str, Any]] | None = Field(
        None, description="appointments this call booked, moved or cancelled ([]: it changed none)"
    )
    business_appointments: list[dict[str, Any]] | None = Field(
        None, description="every appointment of the business after the call, seeded ones included "
        "(e.g. another caller's booking still stands)"
    )
    leads: list[dict[str, Any]] | None = None
    messages: list[dict[str, Any]] | None = None
    violations: list[dict[str, Any]] | None = None
    call_events: list[dict[str, Any]] | None = Field(
        None, description="the steps the call's flows took, in order, e.g. {flow: booking, step: slot_held}"
    )


class Expectations(_Strict):
    said: list[str] = Field(default_factory=list, description="phrases the agent must say")
    not_said: list[str] = Field(default_factory=list, description="phrases the agent must never say")
    greeting_discloses_ai: bool = True
    tools: list[str] = Field(default_factory=list, description="tools called, in this order")
    tool_errors: list[str] = Field(default_factory=list, description="tools that must have refused")
    instructed: list[str] = Field(
        default_factory=list,
        description="phrases the agent's instructions must hold as the simulator received them (the "
        "instructions of the session.update the call sent), e.g. the brain's language rules",
    )
    model_told: list[str] = Field(
        default_factory=list,
        description="phrases the call itself must send the model with a reply request (the instructions of a "
        "response.create, e.g. the grounding guard's correction), as the simulator received them",
    )
    outcome: Outcome | None = None
    ended_by: Literal["caller", "agent", "transfer"] | None = None
    transferred_to: list[str] | None = Field(
        None, description="every destination the line was asked to transfer to (REFER), in order; [] = none"
    )
    db: ExpectedRows | None = None
    flags: list[str] = Field(default_factory=list, description="quality flags the call report must raise")
    no_flags: list[str] = Field(default_factory=list, description="quality flags it must not raise")
    report: dict[str, Any] | None = Field(
        None, description="fields the stored call report must hold, e.g. {escalation: {result: refused}}; "
        'a number may be bounded: {cost: {total: "> 0"}}'
    )


class SeedAppointment(_Strict):
    """An appointment already booked (by someone else, or by this caller on an earlier call)."""

    service: str
    start: datetime = Field(description="local start; without an offset, the business's timezone")
    customer_name: str = "Another Caller"
    customer_phone: str = "+15035550999"
    confirmation_code: str | None = None
    at_turn: int = Field(0, ge=0, description="0: before the call; N: just before caller turn N is spoken")


class Seed(_Strict):
    appointments: list[SeedAppointment] = Field(default_factory=list)
    calls_this_hour: int = Field(
        0, ge=0, description="calls the caller's number already made in the last hour, counted by the "
        "same rate limit as the worker's (needs live state: Redis)",
    )


class Scenario(_Strict):
    name: str
    description: str = ""
    brain: Path
    brain_overrides: dict[str, Any] | None = Field(
        None, description="merged into the brain file before validation (e.g. shorter silence timers)"
    )
    transfer_accepts: bool = Field(True, description="whether a transfer's far end accepts the REFER")
    clock: datetime = Field(description="pinned 'now' (ISO 8601 with offset)")
    caller_number: str | None = "+15035550123"
    caller_voice: str = Field(
        CALLER_VOICE, description="audio runs: the espeak-ng voice the caller speaks with (es, fr, ...)"
    )
    model_voice: str = Field(
        MODEL_VOICE, description="audio runs: the espeak-ng voice the scripted model's replies are spoken in"
    )
    dialed_number: str | None = None
    model_delay_ms: int = Field(300, ge=0, le=10_000)
    fault: Fault | None = Field(None, description="what goes wrong with the model on this call")
    greeting: list[ModelStep] = Field(min_length=1)
    turns: list[CallerTurn] = Field(default_factory=list)
    seed: Seed = Field(default_factory=Seed)
    expect: Expectations = Field(default_factory=Expectations)
    source: Path | None = Field(None, exclude=True)

    @field_validator("clock")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("clock needs a UTC offset, e.g. 2026-11-24T10:00:00-08:00")
        return v

    @model_validator(mode="after")
    def _recorded_voice_speaks_the_callers_language(self) -> Scenario:
        if any(t.voice == "recorded" for t in self.turns):
            voice_for(self.caller_voice)  # raises, naming the languages there are recordings of
            for i, turn in enumerate(self.turns):
                if turn.voice == "recorded":
                    for phrase in turn.phrases:
                        check_words(phrase, self.caller_voice, f"turns[{i}].caller")
        return self

    def brain_path(self) -> Path:
        return self.file(self.brain)

    def file(self, path: Path) -> Path:
        """A path the scenario names (its brain, a recording), found beside the scenario file first,
        then in the repository."""
        if path.is_absolute():
            return path
        base = self.source.parent if self.source else REPO_ROOT
        for root in (base, REPO_ROOT):
            if (root / path).exists():
                return root / path
        return REPO_ROOT / path

    def model_steps(self) -> list[ModelStep]:
        """The whole script the simulated model follows, in the order the call consumes it."""
        steps = list(self.greeting)
        for turn in self.turns:
            steps.extend(turn.model)
        return steps


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read: {e.strerror}") from None
    # one pass: the node tree (for keys written twice) and the data built from it
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        raw = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as e:
        raise ScenarioError(f"{path}: not valid YAML: {e}") from None
    finally:
        loader.dispose()
    dupes = list(duplicate_keys(root)) if root is not None else []
    if dupes:
        # YAML lets the second one win without a word: an expectation written twice would go unchecked
        raise ScenarioError("\n".join(
            f"{path}:{line}: {'.'.join(str(p) for p in loc)} appears twice; write it once"
            for loc, line in dupes
        ))  # fmt: skip
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping of fields")
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top)"
            lines.append(f"{path}: {loc}: {err['msg']}")
        raise ScenarioError("\n".join(lines)) from None
    scenario.source = path.resolve()
    return scenario


def scenario_files(directory: str | Path) -> list[Path]:
    return sorted(Path(directory).glob("*.yaml"))
