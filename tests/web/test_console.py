"""The console's pages on calls that scenarios really made, as an owner reads them: the call in Calls,
its transcript on its page, a message marked called back in Postgres, and nothing of another owner's
business reachable by list or by URL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.types.json import Jsonb

from agent.store.audio import AudioStore
from tests.web.conftest import ROOT, csrf_of, log_in, receptionist
from web.app import ConsoleConfig, create_app

PLUMBING, DENTAL = "Rose City Plumbing", "Lakeview Family Dental"


def _simulate(db_url: str, tmp_path: Path, *names: str) -> None:
    scenarios = [str(ROOT / "tests/scenarios" / f"{n}.yaml") for n in names]
    ran = receptionist("simulate", "--database", "env", *scenarios, db_url=db_url, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]


def _call_ids(html: str) -> list[str]:
    return re.findall(r'href="/calls/([0-9a-f-]{36})"', html)


async def test_an_owner_reads_the_calls_scenarios_made_and_acts_on_a_message(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    _simulate(db_url, tmp_path, "book-drain-cleaning", "take-message")
    with psycopg.connect(db_url) as conn:
        ids = dict(conn.execute("SELECT business, id::text FROM calls").fetchall())
        message_id = conn.execute("SELECT id::text FROM messages").fetchone()[0]
        # what the summary model wrote about her call (CALL_SUMMARY_MODEL), as any text: escaped
        prose = {"text": "Dana booked a drain cleaning <tomorrow> & asked for a text.", "model": "gpt-4.1-mini"}
        conn.execute("UPDATE calls SET summary = jsonb_set(summary, '{prose}', %s) WHERE id = %s",
                     (Jsonb(prose), ids[PLUMBING]))  # fmt: skip
    add_user("ann@rosecity.example", PLUMBING)
    add_user("raj@lakeview.example", DENTAL)

    # owner A: her booking call is listed, and its page reads the transcript and the booking tool call
    await log_in(console, "ann@rosecity.example")
    calls = await console.get("/calls", params={"from": "2026-11-01", "to": "2026-11-30"})
    assert calls.status_code == 200 and _call_ids(calls.text) == [ids[PLUMBING]]
    assert "booked" in calls.text
    page = await console.get(f"/calls/{ids[PLUMBING]}")
    assert page.status_code == 200
    assert "my kitchen sink is clogged" in page.text and "Rose City Plumbing" in page.text
    assert "book_appointment" in page.text and "Dana Whitfield" in page.text
    assert "<h2>Summary</h2>\n<p>Dana booked a drain cleaning &lt;tomorrow&gt; &amp; asked for a text.</p>" in page.text
    # transcript times run from the greeting: the first turn at 0:00.0, the rest seconds after it
    assert re.search(r"<td>0:00\.0</td>\s*<th>#1 agent</th>", page.text), page.text
    assert re.search(r"<td>0:0\d\.\d</td>\s*<th>#2 caller</th>", page.text)
    # B's call: by URL it is as absent as a call that never was; in A's lists it never appears
    assert (await console.get(f"/calls/{ids[DENTAL]}")).status_code == 404
    assert (await console.get(f"/calls/{uuid.uuid4()}")).status_code == 404
    for path in ("/", "/calls", "/messages?show=all", "/quality?since=1000w"):
        text = (await console.get(path)).text
        assert ids[DENTAL] not in text and "Jordan Reyes" not in text and "Lakeview" not in text, path
    assert (await console.get("/quality", params={"business": DENTAL})).status_code == 404
    # nor can she mark B's message
    forged = await console.post(f"/messages/{message_id}/called-back", data={"csrf_token": csrf_of(page.text)})
    assert forged.status_code == 404

    # owner B marks his caller called back, as the htmx button does
    console.cookies.clear()
    await log_in(console, "raj@lakeview.example")
    awaiting = await console.get("/messages")
    assert "Jordan Reyes" in awaiting.text and "Mark called back" in awaiting.text
    marked = await console.post(f"/messages/{message_id}/called-back",
                                headers={"HX-Request": "true", "X-CSRF-Token": csrf_of(awaiting.text)})  # fmt: skip
    assert marked.status_code == 200 and "Called back" in marked.text and "raj@lakeview.example" in marked.text
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT m.called_back_at IS NOT NULL, u.email FROM messages m JOIN users u ON u.id = m.called_back_by"
        ).fetchone()
    assert row == (True, "raj@lakeview.example")
    assert "Jordan Reyes" not in (await console.get("/messages")).text  # no longer awaiting
    assert "Jordan Reyes" in (await console.get(f"/calls/{ids[DENTAL]}")).text
    assert (await console.get(f"/calls/{ids[PLUMBING]}")).status_code == 404

    quality = await console.get("/quality", params={"from": "2026-11-01", "to": "2026-11-30"})
    assert quality.status_code == 200 and quality.text.count("<svg") == 1  # calls by hour; no bookings, no flags


async def _insert_call(db_url: str, business: str, *, at: datetime, outcome: str, flags: list[str] = (),
                       caller: str = "+15035550100") -> str:  # fmt: skip
    cid = str(uuid.uuid4())
    summary = {"version": 1, "flags": [{"flag": f, "turns": [1]} for f in flags]}
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO calls (id, business, caller_number, started_at, ended_at, outcome, summary)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (cid, business, caller, at, at + timedelta(minutes=1), outcome, Jsonb(summary)),
        )
    return cid


async def test_calls_filter_by_day_outcome_flag_and_caller_and_page(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str
) -> None:
    t0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)  # 10 AM in Portland
    booked = await _insert_call(db_url, PLUMBING, at=t0, outcome="booked")
    flagged = await _insert_call(db_url, PLUMBING, at=t0 + timedelta(days=1), outcome="message",
                                 flags=["dead_air"], caller="+15035550199")  # fmt: skip
    late = await _insert_call(db_url, PLUMBING, at=t0 + timedelta(days=2), outcome="abandoned")
    other = await _insert_call(db_url, DENTAL, at=t0, outcome="booked")
    add_user("ann@rosecity.example", PLUMBING)
    await log_in(console, "ann@rosecity.example")

    async def listed(**params: str) -> list[str]:
        got = await console.get("/calls", params=params)
        assert got.status_code == 200, got.text
        return _call_ids(got.text)

    assert await listed() == [late, flagged, booked]
    assert await listed(outcome="booked") == [booked]
    assert await listed(flag="dead_air") == [flagged]
    assert await listed(caller="0199") == [flagged]
    assert await listed(**{"from": "2026-11-21", "to": "2026-11-21"}) == [flagged]
    assert await listed(page="2") == []
    assert other not in await listed()

    for bad in ({"from": "2026-13-01"}, {"outcome": "won"}, {"flag": "x' OR 1=1"}, {"page": "0"},
                {"page": "99999999"}, {"page": "two"}, {"caller": "abc"}, {"from": "2026-11-22", "to": "2026-11-21"}):  # fmt: skip
        refused = await console.get("/calls", params=bad)
        assert refused.status_code == 400 and "<h1>400" in refused.text, bad
    assert (await console.get("/calls/not-a-uuid")).status_code == 404
    assert (await console.get("/messages", params={"show": "everything"})).status_code == 400
    assert (await console.get("/quality", params={"since": "seven days"})).status_code == 400


async def test_an_operator_sees_every_business(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str
) -> None:
    t0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    mine = await _insert_call(db_url, PLUMBING, at=t0, outcome="booked")
    theirs = await _insert_call(db_url, DENTAL, at=t0, outcome="booked")
    add_user("ops@example.org", role="operator")
    await log_in(console, "ops@example.org")
    assert sorted(_call_ids((await console.get("/calls")).text)) == sorted([mine, theirs])
    assert (await console.get(f"/calls/{theirs}")).status_code == 200


@pytest.mark.parametrize("path", ["/", "/calls", "/messages", "/quality"])
async def test_pages_need_a_session(console: httpx.AsyncClient, path: str) -> None:
    sent = await console.get(path)
    assert sent.status_code == 303 and sent.headers["location"].startswith("/login?next=")


async def test_an_owner_plays_her_calls_recording_and_no_one_elses(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    t0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    mine = await _insert_call(db_url, PLUMBING, at=t0, outcome="answered")
    theirs = await _insert_call(db_url, DENTAL, at=t0, outcome="answered")
    unrecorded = await _insert_call(db_url, PLUMBING, at=t0, outcome="answered")
    audio = {cid: (tmp_path / f"{cid}.ogg") for cid in (mine, theirs)}
    for cid, path in audio.items():
        path.write_bytes(b"OggS" + cid.encode())  # the route serves the bytes as they are
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        for cid, path in audio.items():
            await conn.execute("UPDATE calls SET recording_path = %s, recording_seconds = 61.5 WHERE id = %s",
                               (str(path), cid))  # fmt: skip
    add_user("ann@rosecity.example", PLUMBING)
    await log_in(console, "ann@rosecity.example")

    page = await console.get(f"/calls/{mine}")
    assert f'<audio controls preload="none" src="/calls/{mine}/recording">' in page.text
    played = await console.get(f"/calls/{mine}/recording")
    assert played.status_code == 200 and played.headers["content-type"] == "audio/ogg"
    assert played.content == b"OggS" + mine.encode()
    # another business's recording is as absent as one never made; a call without one has no player
    assert (await console.get(f"/calls/{theirs}/recording")).status_code == 404
    assert (await console.get(f"/calls/{unrecorded}/recording")).status_code == 404
    assert "<audio" not in (await console.get(f"/calls/{unrecorded}")).text
    # a file gone from disk (deleted by hand) is a 404, not a crash
    audio[mine].unlink()
    assert (await console.get(f"/calls/{mine}/recording")).status_code == 404
    console.cookies.clear()
    assert (await console.get(f"/calls/{mine}/recording")).status_code == 303


async def test_an_owner_plays_a_voicemail_left_for_her_and_no_one_elses(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    """A voicemail taken while the model was unreachable: the message's row names the caller's audio,
    and the owner plays it from her messages and from the call's page."""
    t0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    mine = await _insert_call(db_url, PLUMBING, at=t0, outcome="message")
    theirs = await _insert_call(db_url, DENTAL, at=t0, outcome="message")
    messages: dict[str, str] = {}
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        for cid, business in ((mine, PLUMBING), (theirs, DENTAL)):
            path = tmp_path / f"{cid}.wav"
            path.write_bytes(b"RIFF" + cid.encode())
            messages[cid] = str(uuid.uuid4())
            await conn.execute(
                "INSERT INTO messages (id, call_id, business, phone, body, callback_requested, audio_path, created_at)"
                " VALUES (%s, %s, %s, '+15035550123', 'Voicemail (9 s, taken while the AI assistant was unreachable)',"
                " true, %s, %s)", (messages[cid], cid, business, str(path), t0))  # fmt: skip
        # a row pointing anywhere but the worker's file for its call plays nothing
        stray = str(uuid.uuid4())
        await conn.execute(
            "INSERT INTO messages (id, call_id, business, body, audio_path, created_at)"
            " VALUES (%s, %s, %s, 'Voicemail', '/etc/passwd', %s)", (stray, mine, PLUMBING, t0))  # fmt: skip
    add_user("ann@rosecity.example", PLUMBING)
    await log_in(console, "ann@rosecity.example")

    player = f'<audio controls preload="none" src="/messages/{messages[mine]}/audio">'
    assert player in (await console.get("/messages")).text
    assert player in (await console.get(f"/calls/{mine}")).text
    played = await console.get(f"/messages/{messages[mine]}/audio")
    assert played.status_code == 200 and played.headers["content-type"] == "audio/wav"
    assert played.content == b"RIFF" + mine.encode()
    assert (await console.get(f"/messages/{messages[theirs]}/audio")).status_code == 404
    assert (await console.get(f"/messages/{stray}/audio")).status_code == 404
    assert (await console.get("/messages/not-a-uuid/audio")).status_code == 404
    (tmp_path / f"{mine}.wav").unlink()
    assert (await console.get(f"/messages/{messages[mine]}/audio")).status_code == 404
    console.cookies.clear()
    assert (await console.get(f"/messages/{messages[mine]}/audio")).status_code == 303


async def test_audio_the_workers_moved_to_the_bucket_plays_from_there(
    add_user: Callable[..., str], db_url: str, s3: AudioStore
) -> None:
    t0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
    mine = await _insert_call(db_url, PLUMBING, at=t0, outcome="message")
    elsewhere = await _insert_call(db_url, PLUMBING, at=t0, outcome="message")
    client = s3._s3()
    for key in (f"rose-city/recordings/{mine}.ogg", f"rose-city/voicemails/{mine}.wav",
                f"{elsewhere}.ogg"):  # fmt: skip
        client.put_object(Bucket=s3.bucket.name, Key=key, Body=key.encode())
    voicemail = str(uuid.uuid4())
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute("UPDATE calls SET recording_path = %s, recording_seconds = 12 WHERE id = %s",
                           (s3.bucket.url(f"rose-city/recordings/{mine}.ogg"), mine))  # fmt: skip
        # a row naming an object outside the workers' prefix reaches nothing
        await conn.execute("UPDATE calls SET recording_path = %s, recording_seconds = 12 WHERE id = %s",
                           (s3.bucket.url(f"{elsewhere}.ogg"), elsewhere))  # fmt: skip
        await conn.execute(
            "INSERT INTO messages (id, call_id, business, body, audio_path, created_at)"
            " VALUES (%s, %s, %s, 'Voicemail (9 s)', %s, %s)",
            (voicemail, mine, PLUMBING, s3.bucket.url(f"rose-city/voicemails/{mine}.wav"), t0))  # fmt: skip
    add_user("ann@rosecity.example", PLUMBING)
    app = create_app(ConsoleConfig(db_url, audio=s3))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://console.test"
    ) as console:
        await log_in(console, "ann@rosecity.example")
        played = await console.get(f"/calls/{mine}/recording")
        assert played.status_code == 200 and played.headers["content-type"] == "audio/ogg"
        assert played.content == f"rose-city/recordings/{mine}.ogg".encode()
        # a player asking for a range gets it (Safari plays nothing without)
        part = await console.get(f"/calls/{mine}/recording", headers={"Range": "bytes=10-"})
        assert part.status_code == 206 and part.content == f"rose-city/recordings/{mine}.ogg".encode()[10:]
        assert part.headers["content-range"].startswith("bytes 10-")
        heard = await console.get(f"/messages/{voicemail}/audio")
        assert heard.status_code == 200 and heard.content == f"rose-city/voicemails/{mine}.wav".encode()
        assert (await console.get(f"/calls/{elsewhere}/recording")).status_code == 404
        client.delete_object(Bucket=s3.bucket.name, Key=f"rose-city/recordings/{mine}.ogg")
        assert (await console.get(f"/calls/{mine}/recording")).status_code == 404


async def test_a_turn_the_caller_said_in_parts_reads_as_one_line(
    console: httpx.AsyncClient, add_user: Callable[..., str], db_url: str, tmp_path: Path
) -> None:
    """A number dictated in groups is stored a row per group (each pause was committed while the agent
    waited for the rest); the owner reads what the caller said, once, in one line."""
    _simulate(db_url, tmp_path, "book-drain-cleaning")
    parts = ["five oh three", "five five five", "oh one eight seven"]
    with psycopg.connect(db_url) as conn:
        call_id, last, ended = conn.execute(
            "SELECT call_id::text, max(seq), max(coalesce(ended_at, started_at)) FROM transcript_turns"
            " GROUP BY call_id").fetchone()  # fmt: skip
        for n, text in enumerate([*parts, "Thanks, I have five oh three, five five five, oh one eight seven."]):
            conn.execute(
                "INSERT INTO transcript_turns (id, call_id, seq, role, text, started_at, ended_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (uuid.uuid4(), call_id, last + 1 + n, "caller" if n < len(parts) else "agent", text,
                 ended + timedelta(seconds=2 * n + 1), ended + timedelta(seconds=2 * n + 2)),
            )  # fmt: skip
    add_user("ann@rosecity.example", PLUMBING)
    await log_in(console, "ann@rosecity.example")
    page = await console.get(f"/calls/{call_id}")
    assert page.status_code == 200
    line = re.search(rf"<th>#{last + 1}-{last + 3} caller</th>\s*<td>([^<]*)</td>", page.text)
    assert line is not None, page.text
    assert line.group(1) == "five oh three five five five oh one eight seven"
    assert re.search(rf"<th>#{last + 4} agent</th>", page.text)
    # the rows themselves stay as recorded
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT text FROM transcript_turns WHERE call_id = %s AND seq > %s AND role = 'caller'"
                              " ORDER BY seq", (call_id, last)).fetchall()  # fmt: skip
    assert [t for (t,) in stored] == parts
