"""Calls no worker can take: Twilio's trunk sends them to its disaster-recovery URL, served by `notify
inbound`. Requests are signed the way Twilio signs them (its own RequestValidator), in the order Twilio
sends them for each path a caller takes; the recording is fetched from the local Twilio fake."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import aiohttp
import psycopg
import pytest
from twilio.request_validator import RequestValidator

from agent.brain import load_brains
from agent.notify.inbound import inbound_app
from agent.notify.voice_fallback import (
    DIAL_ENDED_PATH,
    MESSAGE_ENDED_PATH,
    RECORDING_PATH,
    VOICE_PATH,
    TwilioFallback,
)
from agent.store.privacy import forget
from agent.store.webhook_backlog import WebhookBacklog
from tests.fixtures.processes import answering
from tests.fixtures.twilio_fake import TwilioFake
from tests.notify.conftest import free_port, served

REPO = Path(__file__).resolve().parents[2]
BRAINS = REPO / "brains"
PLUMBING, DENTAL = "+15035550100", "+13125550142"  # numbers the repository's brains claim
CALLER = "+15035550123"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(64))  # what the fake serves as the caller's voice
# a Tuesday: 10:00 in Chicago (the dental office is open), and 23:30 there (closed)
DAYTIME = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
NIGHT = datetime(2026, 12, 2, 5, 30, tzinfo=UTC)


class Line:
    """Twilio's side of one call: its requests, signed, to the public URL the trunk was given."""

    def __init__(self, base: str, token: str, call_sid: str, dialed: str, caller: str = CALLER) -> None:
        self.base, self.token = base, token
        self.call = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": caller, "To": dialed,
                     "Direction": "inbound", "CallStatus": "in-progress"}  # fmt: skip

    async def post(self, path: str, token: str | None = None, **fields: str) -> tuple[int, str]:
        url = self.base + path
        form = {**self.call, **fields}
        signature = RequestValidator(token or self.token).compute_signature(url, form)
        async with aiohttp.ClientSession() as http, http.post(
            url, data=urlencode(form), headers={"X-Twilio-Signature": signature,
                                                "Content-Type": "application/x-www-form-urlencoded"},  # fmt: skip
        ) as resp:
            return resp.status, await resp.text()

    async def twiml(self, path: str, **fields: str) -> ElementTree.Element:
        status, body = await self.post(path, **fields)
        assert status == 200, body
        return ElementTree.fromstring(body)


def verbs(response: ElementTree.Element) -> list[tuple[str, str]]:
    """(verb, its text or the number it dials) in order, what the caller's call does."""
    out = []
    for verb in response:
        if verb.tag == "Dial":
            out += [("Dial", child.text or "") for child in verb]
        else:
            out.append((verb.tag, (verb.text or "").strip()))
    return out


def serving(
    pool, token: str, calls: TwilioFallback, voice_url: str | None = None
) -> contextlib.AbstractAsyncContextManager[str]:
    """`notify inbound` on a free port, as Twilio reaches it: `async with` yields its base URL."""
    return served(inbound_app(pool, token, backlog=calls.backlog, calls=calls, voice_url=voice_url))


@pytest.fixture
def clock() -> list[datetime]:
    return [DAYTIME]


@pytest.fixture
async def webhook(pool, twilio_fake: TwilioFake, tmp_path, clock) -> AsyncIterator[tuple[str, TwilioFallback]]:
    """`notify inbound` on a free port, as Twilio reaches it; yields its base URL."""
    calls = TwilioFallback(pool, load_brains(BRAINS), WebhookBacklog(tmp_path / "spill"), account_sid=twilio_fake.account_sid,
                           auth_token=twilio_fake.auth_token, voicemail_dir=tmp_path / "voicemail",
                           clock=lambda: clock[0])  # fmt: skip
    async with serving(pool, twilio_fake.auth_token, calls) as base:
        yield base, calls


def kept(audio_path: str) -> bytes:
    """The voicemail's audio where its row says it is."""
    return Path(audio_path).read_bytes()


def rows(db_url: str, sql: str, *args: object) -> list[tuple]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(sql, args).fetchall()


async def test_the_people_are_rung_and_a_voicemail_is_taken_when_nobody_answers(
    db_url, webhook, twilio_fake: TwilioFake
) -> None:
    base, calls = webhook
    line = Line(base, twilio_fake.auth_token, "CA" + "1" * 32, PLUMBING)

    answer = await line.twiml(VOICE_PATH)
    assert verbs(answer) == [
        ("Say", "I'm sorry, I'm having technical trouble. Let me put you through to a member of our team."),
        ("Dial", "+15035550188"),  # the on-call plumber, open around the clock
    ]  # fmt: skip
    assert answer.find("Dial").get("action") == base + DIAL_ENDED_PATH
    [call] = rows(db_url, "SELECT business, caller_number, dialed_number, twilio_call_sid, outcome, end_reason"
                          " FROM calls")  # fmt: skip
    assert call == ("Rose City Plumbing", CALLER, PLUMBING, line.call["CallSid"], "error", "fleet_unreachable")

    voicemail = await line.twiml(DIAL_ENDED_PATH, DialCallStatus="no-answer")
    assert [v for v, _ in verbs(voicemail)] == ["Say", "Record", "Hangup"]
    assert "leave your name, your number and a short message" in verbs(voicemail)[0][1]
    record = voicemail.find("Record")
    assert (record.get("action"), record.get("recordingStatusCallback"), record.get("maxLength")) == (
        base + MESSAGE_ENDED_PATH, base + RECORDING_PATH, "60")  # fmt: skip

    recording_url = twilio_fake.add_recording(WAV)
    recording_sid = recording_url.rsplit("/", 1)[1]
    done = await line.twiml(MESSAGE_ENDED_PATH, RecordingUrl=recording_url, RecordingSid=recording_sid,
                            RecordingDuration="14")  # fmt: skip
    assert verbs(done) == [("Say", "Thank you, we have your message. Goodbye."), ("Hangup", "")]
    # then the recording's status callback; Twilio may send it twice
    for _ in range(2):
        status, _ = await line.post(RECORDING_PATH, RecordingUrl=recording_url, RecordingSid=recording_sid,
                                    RecordingDuration="14", RecordingStatus="completed")  # fmt: skip
        assert status == 200

    [message] = rows(db_url, "SELECT m.business, m.phone, m.callback_requested, m.body, m.audio_path, c.outcome"
                             " FROM messages m JOIN calls c ON c.id = m.call_id")  # fmt: skip
    business, phone, callback, body, audio_path, outcome = message
    assert (business, phone, callback, outcome) == ("Rose City Plumbing", CALLER, True, "message")
    assert body.startswith("Voicemail (14 s), left with Twilio") and recording_sid in body
    assert kept(audio_path) == WAV
    assert Path(audio_path).name == f"{rows(db_url, 'SELECT id FROM calls')[0][0]}.wav"  # the console's name
    assert recording_sid not in twilio_fake.state.recordings  # the voice is kept in one place: ours


async def test_a_caller_who_hangs_up_during_the_message_still_leaves_it(db_url, webhook, twilio_fake, clock) -> None:
    clock[0] = NIGHT  # the dental office's front desk is closed: straight to the voicemail, in its lines
    base, _ = webhook
    line = Line(base, twilio_fake.auth_token, "CA" + "2" * 32, DENTAL)
    answer = await line.twiml(VOICE_PATH)
    assert [v for v, _ in verbs(answer)] == ["Say", "Record", "Hangup"]

    # no action request (they hung up): the recording's status callback is the first word of it
    recording_url = twilio_fake.add_recording(WAV)
    status, _ = await line.post(RECORDING_PATH, RecordingUrl=recording_url, RecordingSid=recording_url[-34:],
                                RecordingDuration="6", RecordingStatus="completed")  # fmt: skip
    assert status == 200
    [(business, phone, audio_path)] = rows(db_url, "SELECT business, phone, audio_path FROM messages")
    assert (business, phone) == ("Lakeview Family Dental", CALLER)
    assert kept(audio_path) == WAV
    assert rows(db_url, "SELECT outcome FROM calls") == [("message",)]


async def test_the_person_answering_ends_it_as_escalated(db_url, webhook, twilio_fake) -> None:
    base, _ = webhook
    line = Line(base, twilio_fake.auth_token, "CA" + "3" * 32, DENTAL)
    answer = await line.twiml(VOICE_PATH)
    assert verbs(answer)[1] == ("Dial", "sip:frontdesk@lakeviewfamilydental.example")
    assert verbs(await line.twiml(DIAL_ENDED_PATH, DialCallStatus="completed")) == [("Hangup", "")]
    assert rows(db_url, "SELECT outcome, end_reason FROM calls") == [("escalated", "fleet_unreachable")]
    assert rows(db_url, "SELECT count(*) FROM messages") == [(0,)]


async def test_a_caller_who_says_nothing_leaves_no_message(db_url, webhook, twilio_fake, clock) -> None:
    clock[0] = NIGHT
    base, _ = webhook
    line = Line(base, twilio_fake.auth_token, "CA" + "9" * 32, DENTAL)
    await line.twiml(VOICE_PATH)
    # Twilio's recording of the silence before the caller hung up, trimmed to nothing
    assert verbs(await line.twiml(MESSAGE_ENDED_PATH, RecordingUrl=twilio_fake.add_recording(b""),
                                  RecordingSid="RE" + "9" * 32, RecordingDuration="0")) == [("Hangup", "")]  # fmt: skip
    assert rows(db_url, "SELECT count(*) FROM messages") == [(0,)]
    assert rows(db_url, "SELECT outcome, end_reason FROM calls") == [("error", "fleet_unreachable")]


async def _voicemail_twilio_cannot_hand_over(line: Line, twilio_fake: TwilioFake) -> tuple[str, str, bytes]:
    """A voicemail whose recording Twilio does not hand over when it announces it: (its url, its sid,
    the audio Twilio will hand over later)."""
    await line.twiml(VOICE_PATH)
    url = twilio_fake.add_recording(WAV)
    sid = url.rsplit("/", 1)[1]
    audio = twilio_fake.state.recordings.pop(sid)  # not there yet (404)
    status, _ = await line.post(RECORDING_PATH, RecordingUrl=url, RecordingSid=sid, RecordingDuration="9",
                                RecordingStatus="completed")  # fmt: skip
    assert status == 200
    return url, sid, audio


async def test_a_recording_twilio_cannot_hand_over_is_fetched_later(db_url, pool, twilio_fake, tmp_path) -> None:
    calls = TwilioFallback(pool, load_brains(BRAINS), WebhookBacklog(tmp_path / "spill"), account_sid=twilio_fake.account_sid,
                           auth_token=twilio_fake.auth_token, voicemail_dir=tmp_path / "voicemail",
                           clock=lambda: DAYTIME)  # fmt: skip
    # as `notify inbound` runs, with its waits made short: tried again 0.2 s after each failure
    calls.recordings.fetch_retry_s, calls.recordings.retry_after_s, calls.recordings.retry_every_s = 0.0, 0.2, 0.1
    async with serving(pool, twilio_fake.auth_token, calls) as base:
        line = Line(base, twilio_fake.auth_token, "CA" + "4" * 32, PLUMBING)
        url, sid, audio = await _voicemail_twilio_cannot_hand_over(line, twilio_fake)
        [(body, audio_path)] = rows(db_url, "SELECT body, audio_path FROM messages")
        assert f"Twilio recording {sid}" in body and audio_path is None  # the owner can still find it
        assert rows(db_url, "SELECT outcome FROM calls") == [("message",)]
        [(tries, error)] = rows(db_url, "SELECT tries, last_error FROM twilio_recordings")
        assert tries >= 1 and "HTTP 404" in error, error

        twilio_fake.state.recordings[sid] = audio  # Twilio hands it over now
        for _ in range(100):
            if not rows(db_url, "SELECT 1 FROM twilio_recordings"):
                break
            await asyncio.sleep(0.1)
        [(audio_path,)] = rows(db_url, "SELECT audio_path FROM messages")
        assert audio_path is not None and kept(audio_path) == WAV, audio_path
        assert sid not in twilio_fake.state.recordings  # deleted at Twilio once ours
        assert rows(db_url, "SELECT 1 FROM twilio_recordings") == []


async def test_a_voicemail_erased_while_twilio_holds_it_is_deleted_there(db_url, webhook, twilio_fake) -> None:
    base, calls = webhook
    calls.recordings.fetch_retry_s = 0.0
    line = Line(base, twilio_fake.auth_token, "CA" + "6" * 32, PLUMBING)
    url, sid, audio = await _voicemail_twilio_cannot_hand_over(line, twilio_fake)
    result = await forget(db_url, CALLER, "test")  # the caller asks to be forgotten meanwhile
    assert result.counts["messages"] == {"deleted": 1} and rows(db_url, "SELECT 1 FROM messages") == []
    twilio_fake.state.recordings[sid] = audio
    twilio_fake.clear_requests()
    # its next try was 5 minutes away: the erasure makes it due at once
    assert await calls.recordings.retry_due() == 1
    # deleted at Twilio without being fetched: the caller's voice is nowhere
    assert [(r.method, r.path.rsplit("/", 1)[1]) for r in twilio_fake.requests()] == [("DELETE", f"{sid}.json")]
    assert sid not in twilio_fake.state.recordings
    assert not (calls.recordings.voicemail_dir.exists() and any(calls.recordings.voicemail_dir.iterdir()))
    assert rows(db_url, "SELECT 1 FROM twilio_recordings") == []


async def test_unsigned_requests_and_unknown_numbers_leave_nothing(db_url, webhook, twilio_fake) -> None:
    base, _ = webhook
    line = Line(base, twilio_fake.auth_token, "CA" + "5" * 32, PLUMBING)
    status, _ = await line.post(VOICE_PATH, token="someone-elses-token")
    assert status == 403
    status, _ = await line.post(RECORDING_PATH, token="someone-elses-token", RecordingStatus="completed",
                                RecordingUrl=twilio_fake.add_recording(WAV))  # fmt: skip
    assert status == 403
    stranger = Line(base, twilio_fake.auth_token, "CA" + "6" * 32, "+16175550199")
    assert verbs(await stranger.twiml(VOICE_PATH)) == [
        ("Say", "Sorry, this number cannot take calls right now. Please try again later."), ("Hangup", "")]  # fmt: skip
    assert rows(db_url, "SELECT count(*) FROM calls") == [(0,)]
    assert rows(db_url, "SELECT count(*) FROM messages") == [(0,)]



async def test_behind_a_proxy_twilio_signs_the_public_url_and_is_sent_back_to_it(
    db_url, pool, twilio_fake: TwilioFake, tmp_path
) -> None:
    public = "https://hooks.example.com/receptionist/twilio/voice"  # TWILIO_VOICE_FALLBACK_URL
    calls = TwilioFallback(pool, load_brains(BRAINS), WebhookBacklog(tmp_path / "spill"), account_sid=twilio_fake.account_sid,
                           auth_token=twilio_fake.auth_token, voicemail_dir=tmp_path, clock=lambda: NIGHT)  # fmt: skip
    async with serving(pool, twilio_fake.auth_token, calls, voice_url=public) as base:
        # the proxy forwards to this address; the signature is the public URL's
        line = Line(base, twilio_fake.auth_token, "CA" + "8" * 32, DENTAL)
        form = {**line.call}
        signature = RequestValidator(twilio_fake.auth_token).compute_signature(public, form)
        async with aiohttp.ClientSession() as http, http.post(
            line.base + VOICE_PATH, data=urlencode(form),
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        ) as resp:
            assert resp.status == 200
            record = ElementTree.fromstring(await resp.text()).find("Record")
        assert record.get("action") == "https://hooks.example.com/receptionist" + MESSAGE_ENDED_PATH
        # signed for the address it reached rather than the public one: refused
        assert (await line.post(VOICE_PATH))[0] == 403


def test_notify_inbound_with_a_bad_brain_file_is_one_line(db_url, monkeypatch, capsys, tmp_path) -> None:
    from agent.cli import main

    (tmp_path / "cafe.yaml").write_text("business: {name: Corner Cafe, timezone: Mars/Olympus}\n")
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "test-token")
    monkeypatch.setenv("BRAIN_PATH", str(tmp_path))
    assert main(["notify", "inbound", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("receptionist: ") and "cafe.yaml" in err and "Mars/Olympus" in err


async def test_with_a_bucket_the_voicemail_goes_there_and_leaves_no_file(db_url, pool, twilio_fake, tmp_path, s3) -> None:
    from tests.fixtures.s3 import objects

    calls = TwilioFallback(pool, load_brains(BRAINS), WebhookBacklog(tmp_path / "spill"), account_sid=twilio_fake.account_sid,
                           auth_token=twilio_fake.auth_token, voicemail_dir=tmp_path / "voicemail", audio=s3,
                           clock=lambda: NIGHT)  # fmt: skip
    async with serving(pool, twilio_fake.auth_token, calls) as base:
        line = Line(base, twilio_fake.auth_token, "CA" + "a" * 32, DENTAL)
        await line.twiml(VOICE_PATH)
        recording_url = twilio_fake.add_recording(WAV)
        status, _ = await line.post(RECORDING_PATH, RecordingUrl=recording_url, RecordingSid=recording_url[-34:],
                                    RecordingDuration="5", RecordingStatus="completed")  # fmt: skip
        assert status == 200
    [(call_id,)] = rows(db_url, "SELECT id FROM calls")
    key = f"rose-city/voicemails/{call_id}.wav"
    assert rows(db_url, "SELECT audio_path FROM messages") == [(f"s3://call-audio/{key}",)]
    assert objects(s3) == {key: WAV}
    assert not list((tmp_path / "voicemail").glob("*.wav"))


OWNER_CELL = "+15035550177"


def brains_telling(tmp_path: Path, **at_once: list[str] | None) -> Path:
    """The repository's brains, each texting the owner's cell; `at_once` narrows a brain's kinds."""
    import yaml

    folder = tmp_path / "brains"
    folder.mkdir()
    for name in ("plumbing", "dental"):
        raw = yaml.safe_load((BRAINS / f"{name}.yaml").read_text())
        raw["notify"] = {"sms": [OWNER_CELL]} | ({"at_once": at_once[name]} if at_once.get(name) else {})
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    return folder


async def inbound_metric(name: str) -> dict[str, float]:
    """A series of `notify inbound --metrics-port`, by its business label (`` when it has none)."""
    from prometheus_client.parser import text_string_to_metric_families

    from agent.notify.inbound import metrics_app

    async with served(metrics_app()) as base, aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    return {sample.labels.get("business", ""): sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name}  # fmt: skip


async def fallback_calls() -> dict[str, float]:
    return await inbound_metric("receptionist_fallback_calls_total")


async def test_the_owner_is_told_at_once_by_text_that_the_assistant_could_not_take_a_call(
    db_url, pool, twilio_fake: TwilioFake, tmp_path
) -> None:
    from agent.notify.channels import SmsChannel
    from agent.notify.sender import OutboxSender

    twilio_fake.add_number(PLUMBING)
    # the dental office wants only urgent messages at once
    brains = load_brains(brains_telling(tmp_path, dental=["urgent_message"]))
    calls = TwilioFallback(pool, brains, WebhookBacklog(tmp_path / "spill"), account_sid=twilio_fake.account_sid, auth_token=twilio_fake.auth_token,
                           voicemail_dir=tmp_path / "voicemail", clock=lambda: DAYTIME)  # fmt: skip
    before = await fallback_calls()
    async with serving(pool, twilio_fake.auth_token, calls) as base:
        line = Line(base, twilio_fake.auth_token, "CA" + "a" * 32, PLUMBING)
        await line.twiml(VOICE_PATH)
        await line.twiml(VOICE_PATH)  # Twilio sends a request again when our answer was slow
        await Line(base, twilio_fake.auth_token, "CA" + "b" * 32, DENTAL).twiml(VOICE_PATH)
    # and the operator's Prometheus counts each call once (the alert ReceptionistFleetUnreachable)
    after = await fallback_calls()
    assert {b: after[b] - before.get(b, 0) for b in after} == {"Rose City Plumbing": 1, "Lakeview Family Dental": 1}

    [(business, kind, channel, destination, call_id)] = rows(
        db_url, "SELECT business, kind, channel, destination, call_id FROM outbox")  # fmt: skip
    assert (business, kind, channel, destination) == ("Rose City Plumbing", "assistant_unreachable", "sms", OWNER_CELL)
    assert rows(db_url, "SELECT twilio_call_sid FROM calls WHERE id = %s", call_id) == [(line.call["CallSid"],)]
    assert await OutboxSender(pool, {"sms": SmsChannel(twilio_fake.client(), pool)}).deliver_due() == 1
    [sms] = twilio_fake.state.messages
    assert (sms["to"], sms["from"]) == (OWNER_CELL, PLUMBING)
    assert sms["body"] == (
        "Rose City Plumbing: Your assistant could not take a call from +15035550123, so the phone line answered"
        " it: it rings your on-call plumber line (+15035550188), then offers the voicemail if nobody answers."
    )


async def until(read, within: float = 60.0):
    """`read()` once it gives something (a wait with a deadline, not a timing)."""
    deadline = asyncio.get_running_loop().time() + within
    while not (found := read()):
        assert asyncio.get_running_loop().time() < deadline, "never came"
        await asyncio.sleep(0.1)
    return found


async def voicemail_call(line: Line, twilio_fake: TwilioFake) -> str:
    """Twilio's requests for a caller whom nobody answered and who left a voicemail, asserting what the
    caller hears; the recording's sid."""
    assert [v for v, _ in verbs(await line.twiml(VOICE_PATH))] == ["Say", "Dial"]
    assert [v for v, _ in verbs(await line.twiml(DIAL_ENDED_PATH, DialCallStatus="no-answer"))] == [
        "Say", "Record", "Hangup"]  # fmt: skip
    recording_url = twilio_fake.add_recording(WAV)
    recording = recording_url.rsplit("/", 1)[1]
    done = await line.twiml(MESSAGE_ENDED_PATH, RecordingUrl=recording_url, RecordingDuration="9",
                            RecordingSid=recording)  # fmt: skip
    assert verbs(done) == [("Say", "Thank you, we have your message. Goodbye."), ("Hangup", "")]
    status, _ = await line.post(RECORDING_PATH, RecordingUrl=recording_url, RecordingSid=recording,
                                RecordingDuration="9", RecordingStatus="completed")  # fmt: skip
    assert status == 200
    return recording


def left_by(db_url: str, line: Line) -> list[tuple]:
    """What the call left: its row, its voicemail (with where its audio is) and the owner's text."""
    return rows(db_url, "SELECT c.started_at, c.outcome, c.end_reason, m.phone, m.audio_path IS NOT NULL,"
                        " (SELECT count(*) FROM outbox o WHERE o.call_id = c.id AND o.kind = 'assistant_unreachable')"
                        " FROM calls c JOIN messages m ON m.call_id = c.id WHERE c.twilio_call_sid = %s"
                        " AND m.audio_path IS NOT NULL", line.call["CallSid"])  # fmt: skip


async def test_with_postgres_down_too_the_call_is_recorded_once_it_is_back(
    db_url, pool, twilio_fake: TwilioFake, pg_server, tmp_path
) -> None:
    backlog = WebhookBacklog(tmp_path / "spill", retry_s=0.2)
    calls = TwilioFallback(pool, load_brains(brains_telling(tmp_path)), backlog, account_sid=twilio_fake.account_sid,
                           auth_token=twilio_fake.auth_token, voicemail_dir=tmp_path / "voicemail",
                           clock=lambda: DAYTIME)  # fmt: skip
    async with serving(pool, twilio_fake.auth_token, calls) as base:
        line = Line(base, twilio_fake.auth_token, "CA" + "c" * 32, PLUMBING)
        pg_server.stop()
        # the caller is put through, then offered the voicemail, as with Postgres up
        recording = await voicemail_call(line, twilio_fake)
        # nothing could be written yet: the caller's voice stays at Twilio, the requests on disk
        assert twilio_fake.state.recordings == {recording: WAV}
        # the call's answer, the message's end, the recording's status: the operator sees them wait
        assert await inbound_metric("receptionist_inbound_requests_waiting") == {"": 3}
        pg_server.start()
        [(started, outcome, reason, phone, _, told)] = await until(lambda: left_by(db_url, line))
    # as if Postgres had never been down: the call at the time it came, the voice fetched, the owner told
    assert (started, outcome, reason, phone, told) == (DAYTIME, "message", "fleet_unreachable", CALLER, 1)
    assert twilio_fake.state.recordings == {}
    assert await inbound_metric("receptionist_inbound_requests_waiting") == {"": 0}
    assert [p.stat().st_size for p in (tmp_path / "spill").glob("webhook-*.jsonl")] == []


async def test_a_call_waiting_on_disk_keeps_its_order_when_postgres_comes_back_mid_call(
    db_url, pool, twilio_fake: TwilioFake, pg_server, tmp_path
) -> None:
    # no replay of its own until the test asks: the voicemail reaches a Postgres that is up before the
    # call's first request, still on disk, is written
    backlog = WebhookBacklog(tmp_path / "spill", retry_s=3600)
    calls = TwilioFallback(pool, load_brains(BRAINS), backlog, account_sid=twilio_fake.account_sid,
                           auth_token=twilio_fake.auth_token, voicemail_dir=tmp_path / "voicemail",
                           clock=lambda: DAYTIME)  # fmt: skip
    async with serving(pool, twilio_fake.auth_token, calls) as base:
        line = Line(base, twilio_fake.auth_token, "CA" + "d" * 32, PLUMBING)
        pg_server.stop()
        assert [v for v, _ in verbs(await line.twiml(VOICE_PATH))] == ["Say", "Dial"]
        pg_server.start()
        await until(lambda: rows(db_url, "SELECT 1"))
        await line.twiml(DIAL_ENDED_PATH, DialCallStatus="no-answer")
        recording_url = twilio_fake.add_recording(WAV)
        done = await line.twiml(MESSAGE_ENDED_PATH, RecordingUrl=recording_url, RecordingDuration="9",
                                RecordingSid=recording_url.rsplit("/", 1)[1])  # fmt: skip
        assert verbs(done)[0] == ("Say", "Thank you, we have your message. Goodbye.")
        assert rows(db_url, "SELECT count(*) FROM messages") == [(0,)]  # behind the call's row, on disk
        assert await backlog.replay() == 2
    assert rows(db_url, "SELECT c.outcome, m.phone FROM calls c JOIN messages m ON m.call_id = c.id") == [
        ("message", CALLER)]  # fmt: skip


async def test_a_call_split_between_two_processes_is_one_call_with_its_voicemail(
    db_url, pool, twilio_fake: TwilioFake, pg_server, tmp_path
) -> None:
    # two `notify inbound` replicas behind one address, each with its own disk: the call's first
    # request waits on the first one's while the voicemail reaches Postgres through the second
    def replica(name: str, clock: datetime) -> TwilioFallback:
        return TwilioFallback(pool, load_brains(brains_telling(tmp_path / name)), WebhookBacklog(tmp_path / name,
                              retry_s=3600), account_sid=twilio_fake.account_sid, auth_token=twilio_fake.auth_token,
                              voicemail_dir=tmp_path / "voicemail", clock=lambda: clock)  # fmt: skip

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first, second = replica("a", DAYTIME), replica("b", DAYTIME + timedelta(seconds=30))
    async with serving(pool, twilio_fake.auth_token, first) as base_a, \
            serving(pool, twilio_fake.auth_token, second) as base_b:  # fmt: skip
        pg_server.stop()
        line_a = Line(base_a, twilio_fake.auth_token, "CA" + "f" * 32, PLUMBING)
        assert [v for v, _ in verbs(await line_a.twiml(VOICE_PATH))] == ["Say", "Dial"]
        pg_server.start()
        await until(lambda: rows(db_url, "SELECT 1"))
        line_b = Line(base_b, twilio_fake.auth_token, "CA" + "f" * 32, PLUMBING)
        await line_b.twiml(DIAL_ENDED_PATH, DialCallStatus="no-answer")
        recording_url = twilio_fake.add_recording(WAV)
        recording = recording_url.rsplit("/", 1)[1]
        done = await line_b.twiml(MESSAGE_ENDED_PATH, RecordingUrl=recording_url, RecordingDuration="9",
                                  RecordingSid=recording)  # fmt: skip
        assert verbs(done)[0] == ("Say", "Thank you, we have your message. Goodbye.")
        await line_b.post(RECORDING_PATH, RecordingUrl=recording_url, RecordingSid=recording,
                          RecordingDuration="9", RecordingStatus="completed")  # fmt: skip
        # the voicemail is kept and fetched without waiting for the call's first request...
        assert twilio_fake.state.recordings == {}
        assert await first.backlog.replay() == 1  # ...which lands later, into the same call
    [(started, outcome, reason, phone, _, told)] = left_by(db_url, line_a)
    assert (started, outcome, reason, phone, told) == (DAYTIME, "message", "fleet_unreachable", CALLER, 1)
    assert rows(db_url, "SELECT count(*) FROM calls") == [(1,)]


async def test_with_postgres_and_the_disk_down_the_caller_still_hears_the_way_on(
    db_url, pool, twilio_fake: TwilioFake, pg_server, tmp_path
) -> None:
    (tmp_path / "not-a-folder").write_text("")  # JOURNAL_SPILL_DIR cannot be written
    calls = TwilioFallback(pool, load_brains(BRAINS), WebhookBacklog(tmp_path / "not-a-folder"),
                           account_sid=twilio_fake.account_sid, auth_token=twilio_fake.auth_token,
                           voicemail_dir=tmp_path / "voicemail", clock=lambda: DAYTIME)  # fmt: skip
    async with serving(pool, twilio_fake.auth_token, calls) as base:
        pg_server.stop()
        line = Line(base, twilio_fake.auth_token, "CA" + "9" * 32, PLUMBING)
        assert [v for v, _ in verbs(await line.twiml(VOICE_PATH))] == ["Say", "Dial"]
        assert [v for v, _ in verbs(await line.twiml(DIAL_ENDED_PATH, DialCallStatus="no-answer"))] == [
            "Say", "Record", "Hangup"]  # fmt: skip


def test_a_notify_inbound_killed_during_an_outage_leaves_the_calls_to_the_next_one(
    db_url, pg_server, twilio_fake: TwilioFake, tmp_path
) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "DATABASE_URL": db_url,
           "BRAIN_PATH": str(brains_telling(tmp_path)), "TWILIO_ACCOUNT_SID": twilio_fake.account_sid,
           "TWILIO_AUTH_TOKEN": twilio_fake.auth_token, "JOURNAL_SPILL_DIR": str(tmp_path / "spill"),
           "VOICEMAIL_DIR": str(tmp_path / "voicemail"), "PYTHONPATH": str(REPO)}  # fmt: skip
    pg_server.stop()
    with inbound_process(env, tmp_path / "first.log") as (first, base):
        # Postgres is down from its start: it serves the calls all the same
        line = Line(base, twilio_fake.auth_token, "CA" + "e" * 32, PLUMBING)
        recording = asyncio.run(voicemail_call(line, twilio_fake))
        first.kill()
    assert "Postgres is unreachable" in (tmp_path / "first.log").read_text()
    assert twilio_fake.state.recordings == {recording: WAV}
    pg_server.start()
    with inbound_process(env, tmp_path / "second.log"):
        [(_, outcome, reason, phone, _, told)] = asyncio.run(until(lambda: left_by(db_url, line)))
    assert (outcome, reason, phone, told) == ("message", "fleet_unreachable", CALLER, 1)
    assert twilio_fake.state.recordings == {}
    assert list((tmp_path / "spill").glob("webhook-*.jsonl")) == []


@contextlib.contextmanager
def inbound_process(env: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """`receptionist notify inbound` on a free port, once it answers, until the block ends (SIGTERM);
    yields the process and its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with answering([sys.executable, "-m", "agent.cli", "notify", "inbound", "--port", str(port)], url=base + "/",
                   log=log, env=env, cwd=Path(env["HOME"])) as (proc, _):  # fmt: skip
        yield proc, base
