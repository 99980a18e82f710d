"""Caller numbers never reach the logs whole: every log record in a worker process, ours or LiveKit's
(a SIP participant's identity is "sip_+1503...", a call's room "call-_+1503..._..."), has its phone
numbers masked to the last 4 digits, in its message and in the fields added to it."""

from __future__ import annotations

import logging
import re
from typing import Any

# E.164, or digits in the groups people write (503-555-0187, (503) 555 0187): 7 to 15 digits in all.
# Years, ports, durations and uuids stay: fewer than 7 digits in a run, or glued to letters. An
# underscore after it still ends a number: LiveKit names a SIP room `call-_<number>_<random>`. In a
# URL's query (an access log, Twilio's client) `+` is `%2B` and a space is `+` or `%20`.
_PHONE = re.compile(r"(?<![\w.:/-])(?:\+|%2[bB])?\d(?:(?:[ ()+.-]|%20){0,2}\d){6,14}(?![^\W_]|:)")
_ENCODED_PLUS = "%2B"  # a number's "+" as a URL writes it
_installed = False


# what looks like a number and is not one: a uuid (a call's id may start with 8 decimal digits) and an
# ISO date; matched first, and left as they are
_NOT_A_PHONE = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|\d{4}-\d{2}-\d{2}(?![\d-])")
_EITHER = re.compile(f"(?P<kept>{_NOT_A_PHONE.pattern})|{_PHONE.pattern}")


def mask_numbers(text: str) -> str:
    """'+15035550187' -> '+*******0187'; anything shorter than a phone number is left alone."""

    def mask(m: re.Match[str]) -> str:
        if m.group("kept"):
            return m.group()
        found = m.group()
        plus = "+" if found.startswith("+") else found[:3] if found[:3].upper() == _ENCODED_PLUS else ""
        digits = re.sub(r"\D", "", found[len(plus):].replace("%20", " "))
        if len(digits) < 7:
            return found
        return plus + "*" * (len(digits) - 4) + digits[-4:]

    return _EITHER.sub(mask, text)


def _plain(value: object) -> bool:
    """A log argument masked where it stands: text, or a number too short to be a phone number."""
    return isinstance(value, str) or (isinstance(value, (int, float)) and abs(value) < 1_000_000)


def install() -> None:
    """Mask numbers in every record this process creates (idempotent). A record factory, not a
    handler filter, so it holds whichever handlers LiveKit's CLI or a job process sets up later."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: let logging report it as it always has
            return record
        if isinstance(record.args, tuple) and all(_plain(a) for a in record.args):
            # plain values keep their places: a formatter may read them (uvicorn's access log unpacks
            # client, method, path, version and status from them), and each number stands in one
            record.msg = mask_numbers(str(record.msg))
            record.args = tuple(mask_numbers(a) if isinstance(a, str) else a for a in record.args)
        else:
            record.msg, record.args = mask_numbers(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_numbers(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(masked_record)


class MaskedFields(logging.Filter):
    """Masks the numbers in a record's added fields, which a record factory runs too early to see:
    LiveKit's worker adds each job's room name (it holds the caller's number) to every record of that
    job as it passes them to the handlers, and logs it as an extra field itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            # LiveKit's JSON formatter writes the traceback from exc_info itself, past the masked text
            record.exc_text = mask_numbers(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for key, value in list(record.__dict__.items()):
            if isinstance(value, str) and key != "msg":
                masked = mask_numbers(value)
                if masked != value:
                    setattr(record, key, masked)
        return True


def mask_handlers() -> None:
    """Add MaskedFields to the root logger's handlers (idempotent): once LiveKit's CLI has set them up."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskedFields) for f in handler.filters):
            handler.addFilter(MaskedFields())
