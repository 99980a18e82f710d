"""A journal event as one line of a spill file (JSON with its journal sequence number n), and back."""

from __future__ import annotations

import dataclasses
import json
import typing
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent.store.journal.events import EVENT_TYPES, Event


def _field_parser(hint: Any) -> Callable[[Any], Any] | None:
    kinds = typing.get_args(hint) or (hint,)
    if datetime in kinds:
        return lambda v: None if v is None else datetime.fromisoformat(v)
    if uuid.UUID in kinds:
        return lambda v: None if v is None else uuid.UUID(v)
    return None


_PARSERS: dict[str, dict[str, Callable[[Any], Any]]] = {}
for _name, _cls in EVENT_TYPES.items():
    _hints = typing.get_type_hints(_cls)
    _PARSERS[_name] = {
        f.name: p
        for f in dataclasses.fields(_cls)
        if (p := _field_parser(_hints[f.name])) is not None
    }


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # uuids; anything odd in tool arguments is kept as text rather than lost


def encode_event(n: int, event: Event) -> bytes:
    body = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    line = {"n": n, "type": event.type, "event": body}
    return json.dumps(line, default=json_default, separators=(",", ":")).encode() + b"\n"


def decode_event(line: bytes) -> tuple[int, Event]:
    raw = json.loads(line)
    kind = raw["type"]
    body = raw["event"]
    for name, parse in _PARSERS[kind].items():
        if name in body:
            body[name] = parse(body[name])
    return raw["n"], EVENT_TYPES[kind](**body)


def line_n(line: bytes) -> int:
    try:
        return int(json.loads(line)["n"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # unreadable: keep it, never lose it
