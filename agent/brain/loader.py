"""Reading brain files: YAML to a validated `Brain`, or a `BrainError` naming the file, field and reason.

The worker loads every brain at start-up, so a bad file stops it with a message a person can act on.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers
import yaml
from pydantic import BaseModel, ValidationError

from agent.brain.schema.brain import Brain
from agent.brain.schema.business import Business
from agent.brain.schema.fields import WEEKDAYS, FieldProblems, Loc, format_loc


class BrainError(Exception):
    """A brain file that cannot be used; `problems` holds (field path, reason) pairs."""

    def __init__(
        self,
        path: str | Path,
        problems: list[tuple[str, str]],
        lines: list[int | None] | None = None,
    ):
        self.path = Path(path)
        self.problems = problems
        self.lines = lines or [None] * len(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        out = []
        for (where, reason), line in zip(self.problems, self.lines, strict=True):
            at = f" (line {line})" if line else ""
            out.append(f"{self.path}: {where + ': ' if where else ''}{reason}{at}")
        return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# YAML, read the way a person writing a brain file expects


class _BrainYaml(yaml.SafeLoader):
    """SafeLoader minus YAML 1.1 surprises: 8:00 stays text (not 480), yes/no/on/off stay text."""


def _resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    plain_bool = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
    clock = ("tag:yaml.org,2002:str", re.compile(r"^\d{1,2}:\d{2}(?::\d{2})?$"))
    table: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        table[first] = [
            (tag, plain_bool if tag == "tag:yaml.org,2002:bool" else regexp)
            for tag, regexp in entries
        ]
    for digit in "0123456789":
        table[digit] = [clock, *table.get(digit, [])]
    return table


_BrainYaml.yaml_implicit_resolvers = _resolvers()


def duplicate_keys(node: yaml.Node, loc: Loc = ()) -> Iterator[tuple[Loc, int]]:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name in seen:
                yield (*loc, name), key.start_mark.line + 1
            seen.add(name)
            yield from duplicate_keys(value, (*loc, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            yield from duplicate_keys(item, (*loc, i))


def _line_of(root: yaml.Node | None, loc: Loc) -> int | None:
    """Line of the deepest node on `loc` (the key itself for a key that should not be there)."""
    node, line = root, (root.start_mark.line + 1) if root is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((kv for kv in node.value if getattr(kv[0], "value", None) == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
            if not isinstance(node, yaml.MappingNode | yaml.SequenceNode):
                line = node.start_mark.line + 1
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


# ---------------------------------------------------------------------------------------------
# pydantic errors, said plainly


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class that holds the last key of `loc`, walking the schema like the data."""
    current: Any = Brain
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return None
    return _unwrap(current, None)


def _unwrap(tp: Any, part: str | int | None) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            tp = next((a for a in typing.get_args(tp) if a is not type(None)), None)
        else:
            break
    if part is None:
        return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None
    if isinstance(part, int):
        return typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
    if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
        return tp.model_fields[part].annotation
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_PLAIN = {
    "string_type": "expected text",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "list_type": "expected a list",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "dict_type": "expected a mapping of keys",
    "date_type": "expected a date like 2026-12-25",
    "date_parsing": "expected a date like 2026-12-25",
    "date_from_datetime_parsing": "expected a date like 2026-12-25",
    "date_from_datetime_inexact": "expected a date like 2026-12-25",
}


def _reasons(err: dict[str, Any]) -> list[tuple[Loc, str]]:
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "value_error" and isinstance(ctx.get("error"), FieldProblems):
        return [((*loc, *sub), reason) for sub, reason in ctx["error"].problems]
    if kind == "value_error":
        return [(loc, str(ctx.get("error", err["msg"])))]
    if kind == "missing":
        return [(loc, "required field is missing")]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        reason = f"unknown key {loc[-1]!r}"
        if model is not None:
            close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
            reason += (
                f" (did you mean {close[0]!r}?)"
                if close
                else f" (allowed: {', '.join(model.model_fields)})"
            )
        return [(loc, reason)]
    if kind == "literal_error":
        return [(loc, f"expected one of {ctx.get('expected')}, got {_shown(err['input'])}")]
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {
            "greater_than_equal": ">=",
            "greater_than": ">",
            "less_than_equal": "<=",
            "less_than": "<",
        }[kind]
        bound = next(iter(ctx.values()))
        return [(loc, f"must be {sign} {bound}, got {_shown(err['input'])}")]
    if kind in ("too_short", "string_too_short"):
        return [(loc, "must not be empty")]
    if kind == "string_pattern_mismatch" and loc == ("currency",):
        return [(loc, f"expected a 3-letter currency code like 'USD', got {_shown(err['input'])}")]
    if kind in _PLAIN:
        return [(loc, f"{_PLAIN[kind]}, got {_shown(err['input'])}")]
    return [(loc, f"{err['msg']}, got {_shown(err['input'])}")]


# ---------------------------------------------------------------------------------------------
# the public loaders


def load_brain(path: str | Path) -> Brain:
    """Read and validate one brain file; raises BrainError listing every problem found."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BrainError(path, [("", f"cannot read the file: {exc}")]) from None
    return parse_brain(text, path)


def parse_brain(text: str, path: str | Path = "<brain>") -> Brain:
    """Validate brain YAML given as text; `path` only names it in errors."""
    loader = _BrainYaml(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BrainError(path, [("", f"invalid YAML{where}: {problem}")]) from None
    finally:
        loader.dispose()

    dupes = list(duplicate_keys(root)) if root is not None else []
    if dupes:
        raise BrainError(
            path,
            [
                (format_loc(loc), "key appears twice; the second would silently win")
                for loc, _ in dupes
            ],
            [line for _, line in dupes],
        )
    if not isinstance(data, dict):
        raise BrainError(
            path,
            [("", f"expected a mapping of sections (business, hours, ...), got {_shown(data)}")],
        )

    try:
        return Brain.model_validate(data)
    except ValidationError as exc:
        found = [item for err in exc.errors() for item in _reasons(err)]
        raise BrainError(
            path,
            [(format_loc(loc), reason) for loc, reason in found],
            [_line_of(root, loc) for loc, _ in found],
        ) from None


def _e164(number: str) -> str | None:
    number = number.strip()
    for prefix in ("tel:", "sip:"):
        if number.startswith(prefix):
            number = number[len(prefix) :].split("@", 1)[0]
    try:
        parsed = phonenumbers.parse(number, None if number.startswith("+") else "US")
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass
class BrainDirectory:
    """Every loaded brain, found by the number the caller dialed."""

    by_path: dict[Path, Brain] = field(default_factory=dict)
    _by_number: dict[str, Brain] = field(default_factory=dict, repr=False)

    @property
    def all(self) -> list[Brain]:
        return list(self.by_path.values())

    @property
    def default(self) -> Brain | None:
        """The brain for calls whose dialed number is unknown: the only brain, or None among several."""
        return self.all[0] if len(self.by_path) == 1 else None

    def unknown_number_brain(self) -> Brain:
        """A brain for a call to a number no business claims: it says so and takes a message."""
        tz = self.all[0].business.timezone if self.by_path else "UTC"
        return unknown_number_brain(tz)

    def by_business_id(self, business_id: str | None) -> Brain | None:
        """The brain whose file is `<business_id>.yaml` (the id sip.provision puts in dispatch rules)."""
        if not business_id:
            return None
        return next((b for p, b in self.by_path.items() if p.stem == business_id), None)

    def for_number(self, number: str | None) -> Brain | None:
        if not number:
            return None
        e164 = _e164(number)
        return self._by_number.get(e164) if e164 else None


def unknown_number_brain(timezone: str = "UTC") -> Brain:
    """Honest fallback: no facts, never open, nothing bookable, so every answer becomes a message."""
    closed: dict[str, list[Any]] = {day: [] for day in WEEKDAYS}
    business = Business.model_construct(  # no public number to give out, so not validated as a file
        name="this office", timezone=timezone, address="not on file", phone="", numbers=[]
    )
    brain = Brain.model_validate(
        {
            "greeting": "Thanks for calling, you've reached an AI assistant. This line isn't set up yet, "
            "but I can take a message and make sure it gets to the right person.",
            "business": {
                "name": "x",
                "timezone": timezone,
                "address": "x",
                "phone": "+12025550100",
                "numbers": ["+12025550100"],
            },
            "hours": closed,
            "services": [
                {
                    "name": "Message for the team",
                    "duration_minutes": 5,
                    "description": "Taking the caller's name, number and message for a call back.",
                    "bookable": False,
                }
            ],
        }
    )
    return brain.model_copy(update={"business": business})


def load_brains(path_or_dir: str | Path) -> BrainDirectory:
    """Load one brain file or every *.yaml / *.yml in a directory (sorted by name)."""
    root = Path(path_or_dir)
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            raise BrainError(root, [("", "no brain files (*.yaml) in this directory")])
    else:
        files = [root]
    directory = BrainDirectory()
    owner: dict[str, Path] = {}
    for path in files:
        brain = load_brain(path)
        clashes = [
            (f"business.numbers[{i}]", f"{n} is also dialed for {owner[n]}")
            for i, n in enumerate(brain.business.numbers)
            if n in owner
        ]
        if clashes:
            raise BrainError(path, clashes)
        for n in brain.business.numbers:
            owner[n] = path
            directory._by_number[n] = brain
        directory.by_path[path] = brain
    return directory
