"""Caller numbers in log lines, ours or a library's, are masked to their last 4 digits; other numbers
(times, ports, counts, ids) are left readable."""

from __future__ import annotations

import logging
import sys

import pytest

from agent import log_privacy


@pytest.mark.parametrize(
    ("said", "logged"),
    [
        ("caller sip_+15035550187 never became active", "caller sip_+*******0187 never became active"),
        ("no brain for dialed number +15035550100; answering", "no brain for dialed number +*******0100; answering"),
        ("'503-555-0187' is not an E.164 phone number", "'******0187' is not an E.164 phone number"),
        ("call back (503) 555 0187 today", "call back (******0187 today"),
        # LiveKit's name for a SIP call's room
        ("hanging up call-_+15035550187_8fkajvTe4baC: agent_goodbye",
         "hanging up call-_+*******0187_8fkajvTe4baC: agent_goodbye"),
        # in a URL's query: an access log line, Twilio's client asking for a number's texts
        ('"GET /api/v1/calls?caller=%2B15035550187 HTTP/1.1" 200',
         '"GET /api/v1/calls?caller=%2B*******0187 HTTP/1.1" 200'),
        ("GET /Messages.json?To=%2b15035550187&From=%2B15035550100&PageSize=20",
         "GET /Messages.json?To=%2b*******0187&From=%2B*******0100&PageSize=20"),
        ("/calls?q=503+555+0187", "/calls?q=******0187"),
        ("/calls?q=503%20555%200187", "/calls?q=******0187"),
    ],
)
def test_numbers_are_masked(said: str, logged: str) -> None:
    assert log_privacy.mask_numbers(said) == logged


@pytest.mark.parametrize(
    "kept",
    [
        "replaying var/spill/abc.jsonl (123456 bytes) left by an earlier process",
        "Postgres is back after 12.5s; catching up",
        "listening on 127.0.0.1:8081",
        "call 2f0c1d2e-4b6a-4c1e-9d3f-123456789012 ended",
        "journal flushed 1000 events in 2026-11-28T08:15:00",
        "job AJ_1234567_x of worker AW_7654321",
        "call 12345678-1234-4abc-9def-123456789012 ended",  # a call's id may begin with 8 digits
        "digest of 2025-01-01 12:00 queued",
    ],
)
def test_other_numbers_stay_readable(kept: str) -> None:
    assert log_privacy.mask_numbers(kept) == kept


def test_every_logger_is_masked_once_installed(caplog: pytest.LogCaptureFixture) -> None:
    log_privacy.install()
    with caplog.at_level(logging.INFO):
        logging.getLogger("livekit.agents").info("participant %s joined", "sip_+15035550187")
        try:
            raise ValueError("'+15035550187' is not an E.164 phone number")
        except ValueError:
            logging.getLogger("receptionist.tools").exception("tool %s failed", "book_appointment")
    text = caplog.text
    assert "5035550187" not in text and "sip_+*******0187" in text and "+*******0187" in text


def test_the_fields_livekit_adds_to_a_record_are_masked_too(caplog: pytest.LogCaptureFixture) -> None:
    """LiveKit's worker adds each job's room (named after the caller) to the job's records as it hands
    them to the handlers, and passes the room as an extra field of its own lines: past any record
    factory, so the handlers mask them."""
    log_privacy.install()
    caplog.handler.addFilter(log_privacy.MaskedFields())
    with caplog.at_level(logging.INFO):
        logging.getLogger("livekit.agents").info(
            "received job request", extra={"room": "call-_+15035550187_8fkajvTe4baC", "job_id": "AJ_ambeonC3ViTx"}
        )
    [record] = caplog.records
    assert (record.room, record.job_id) == ("call-_+*******0187_8fkajvTe4baC", "AJ_ambeonC3ViTx")  # type: ignore[attr-defined]


def test_a_traceback_is_masked_whichever_formatter_writes_it() -> None:
    """LiveKit's JSON formatter writes a record's traceback from exc_info, not from its text."""
    from livekit.agents.cli.log import JsonFormatter

    try:
        raise ValueError("'+15035550187' is not an E.164 phone number")
    except ValueError:
        record = logging.getLogger("receptionist.tools").makeRecord(
            "receptionist.tools", logging.ERROR, __file__, 1, "tool failed", None, sys.exc_info()
        )
    assert log_privacy.MaskedFields().filter(record)
    for formatter in (JsonFormatter(), logging.Formatter()):
        text = formatter.format(record)
        assert "5035550187" not in text and "+*******0187" in text and "ValueError" in text


def test_a_formatter_that_reads_a_records_arguments_still_can(capsys: pytest.CaptureFixture[str]) -> None:
    """uvicorn's access log (`receptionist web` at INFO) unpacks client, method, path, version and
    status from a record's arguments: masked where they stand, not folded into the text, or every
    request logged a formatting error instead of its line."""
    from uvicorn.logging import AccessFormatter

    log_privacy.install()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))
    access = logging.getLogger("test.uvicorn.access")
    access.addHandler(handler)
    access.propagate = False
    try:
        access.warning('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/api/v1/calls?caller=%2B15035550187", "1.1", 200)
    finally:
        access.removeHandler(handler)
    err = capsys.readouterr().err
    assert err.splitlines()[0] == '127.0.0.1:5000 - "GET /api/v1/calls?caller=%2B*******0187 HTTP/1.1" 200 OK', err
    assert "Logging error" not in err and "5035550187" not in err
    # a number passed as a number is no plain value: folded into the text and masked there
    record = logging.getLogger("test").makeRecord("test", logging.INFO, __file__, 1, "call back %d", (15035550187,), None)
    assert record.getMessage() == "call back *******0187"
