"""What the simulated model says and does: an ordered list of steps, one per `response.create`,
plus the queue of caller transcripts that stand in for speech recognition."""

from __future__ import annotations

import ast
import json
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.speech import MODEL_VOICE

SCRIPT_ENDED_LINE = "(simulator) My script has ended."


class ModelStep(BaseModel):
    """One model response: a spoken line, a tool call, or a spoken lead-in followed by a tool call."""

    model_config = ConfigDict(extra="forbid")

    say: str | None = None
    tool: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_something_to_do(self) -> ModelStep:
        if self.say is None and self.tool is None:
            raise ValueError("a model step needs `say`, `tool`, or both")
        if self.args and self.tool is None:
            raise ValueError("`args` given without `tool`")
        return self


StepLike = ModelStep | dict[str, Any]

# `{output}`, `{output[a]}`, `{output[a][0]}`; `{{` and `}}` are literal braces as in str.format
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_OUTPUT_REF = re.compile(r"output((?:\[[^\[\]]*\])*)")


def render_say(template: str, output: str | None) -> tuple[str, list[str]]:
    """Fill `{output...}` placeholders from the latest tool output; never raises.

    Returns the text and the problems met (each unresolved placeholder is left in the text as is,
    so a broken scenario is audible in the transcript rather than a crash).
    """
    problems: list[str] = []
    parsed: Any = None
    parsed_ok = False
    if output is not None:
        parsed, parsed_ok = _parse_output(output)

    def substitute(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        ref = _OUTPUT_REF.fullmatch(match.group(1).strip())
        if ref is None:
            problems.append(f"say {template!r}: unknown placeholder {whole}")
            return whole
        if output is None:
            problems.append(f"say {template!r}: {whole} used before any tool output")
            return whole
        keys = re.findall(r"\[([^\[\]]*)\]", ref.group(1))
        if not keys:
            return output
        if not parsed_ok:
            problems.append(
                f"say {template!r}: {whole} but the tool output is neither JSON nor a Python literal: {output!r}"
            )
            return whole
        value = parsed
        for key in keys:
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif (
                isinstance(value, list)
                and key.lstrip("-").isdigit()
                and -len(value) <= int(key) < len(value)
            ):
                value = value[int(key)]
            else:
                problems.append(f"say {template!r}: {whole} not found in tool output {output!r}")
                return whole
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        if isinstance(value, bool):
            return "yes" if value else "no"
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(substitute, template), problems


def _parse_output(output: str) -> tuple[Any, bool]:
    # LiveKit sends str(return value): a tool returning a dict arrives as its Python repr, not JSON
    try:
        return json.loads(output), True
    except ValueError:
        pass
    try:
        return ast.literal_eval(output), True
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None, False


def to_steps(steps: Iterable[StepLike]) -> list[ModelStep]:
    return [s if isinstance(s, ModelStep) else ModelStep.model_validate(s) for s in steps]


@dataclass
class TimedTranscript:
    """A caller turn said in parts with pauses between them, transcribed as its audio is committed: a
    commit carries the parts whose audio it holds, as the real API transcribes each committed item.
    `parts`: each part's words and where its audio ends, in seconds from the caller's first voice."""

    parts: deque[tuple[str, float]]
    voice_at_ms: int | None = None  # the caller's first voice, in the call's input audio so far

    def take(self, heard_ms: int, slack_ms: int = 100) -> str:
        """The words of the parts whose audio is in the first `heard_ms` of input audio."""
        if self.voice_at_ms is None:
            return ""
        into_s = (heard_ms - self.voice_at_ms + slack_ms) / 1000
        words = []
        while self.parts and self.parts[0][1] <= into_s:
            words.append(self.parts.popleft()[0])
        return " ".join(words)


@dataclass
class Script:
    """The model's side of one simulated call; its cursor outlives any single connection."""

    steps: list[ModelStep] = field(default_factory=list)
    cursor: int = 0
    transcripts: deque[str | TimedTranscript] = field(default_factory=deque)
    heard_ms: int = 0  # caller audio appended so far, across the call's connections
    problems: list[str] = field(default_factory=list)
    last_output: str | None = None
    voice: str = MODEL_VOICE  # the espeak-ng voice the model's replies are spoken in

    @classmethod
    def of(cls, steps: Iterable[StepLike] = ()) -> Script:
        return cls(steps=to_steps(steps))

    @property
    def exhausted(self) -> bool:
        return self.cursor >= len(self.steps)

    @property
    def remaining(self) -> list[ModelStep]:
        return self.steps[self.cursor :]

    def extend(self, steps: Iterable[StepLike]) -> None:
        self.steps.extend(to_steps(steps))

    def next_step(self) -> ModelStep | None:
        """The step for the next response, or None (recorded) once the script has run out."""
        if self.exhausted:
            self.problems.append(
                f"response requested after the script ended ({len(self.steps)} steps)"
            )
            return None
        step = self.steps[self.cursor]
        self.cursor += 1
        return step

    def give_back(self, step: ModelStep | None) -> None:
        """A response was cancelled before it produced anything (a speculative reply the caller talked
        over): the model answers that turn afresh, so the step is replayed; past the end of the script,
        the request is no longer a problem."""
        if step is not None:
            self.cursor -= 1
            return
        for i in range(len(self.problems) - 1, -1, -1):
            if self.problems[i].startswith("response requested after the script ended"):
                del self.problems[i]
                return

    def render(self, say: str) -> str:
        text, problems = render_say(say, self.last_output)
        self.problems.extend(problems)
        return text

    def queue_transcript(self, text: str, parts: list[tuple[str, float]] | None = None) -> None:
        """What the caller 'says' in the next committed audio turn; with `parts` (each part's words and
        the end of its audio in seconds from the caller's first voice), transcribed part by part."""
        self.transcripts.append(TimedTranscript(deque(parts)) if parts else text)

    @property
    def awaiting_voice(self) -> TimedTranscript | None:
        """The turn being said in parts whose first voice has not been heard yet."""
        head = self.transcripts[0] if self.transcripts else None
        return head if isinstance(head, TimedTranscript) and head.voice_at_ms is None else None

    def next_transcript(self) -> str:
        if not self.transcripts:
            self.problems.append("caller audio committed with no queued transcript")
            return ""
        head = self.transcripts[0]
        if not isinstance(head, TimedTranscript):
            return self.transcripts.popleft()
        if head.voice_at_ms is None:  # never heard a voice: all of it, as an untimed turn
            self.transcripts.popleft()
            return " ".join(words for words, _ in head.parts)
        said = head.take(self.heard_ms)
        if not head.parts:
            self.transcripts.popleft()
        return said
