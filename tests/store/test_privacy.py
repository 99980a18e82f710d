"""Retention and erasure of callers' personal data, graded on what is left in Postgres."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import psycopg

from agent.store.privacy import RetentionPolicy, forget, sweep, written_forms
from tests.fixtures.personal_data import RECORDINGS, TABLES, dump, rows_of_call, seed_call

NOW = datetime.now(UTC)
PLUMBING, DENTAL, BAKERY = "Rose City Plumbing", "Lakeview Family Dental", "Corner Bakery"
POLICIES = [RetentionPolicy(PLUMBING, 30), RetentionPolicy(DENTAL, None), RetentionPolicy(BAKERY, 7)]
DANA, SAM, ALEX = "+15035550111", "+15035550222", "+15035550333"


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


def assert_call_stripped(rows: dict, *, appointment_kept_personal: bool = False) -> None:
    """A call past retention (or forgotten): the row and its booking stay, nobody's data does."""
    (call,) = rows["calls"]
    assert (call["caller_number"], call["room"], call["sip_call_id"], call["twilio_call_sid"]) == (None,) * 4
    # the recording, every word and the voice itself, is gone from the disk and the row
    assert (call["recording_path"], call["recording_seconds"]) == (None, None)
    assert not (RECORDINGS / f"{call['id']}.ogg").exists()
    assert not (RECORDINGS / f"{call['id']}.wav").exists()  # the voicemail they left: their voice too
    assert call["personal_erased_at"] is not None
    # what the business measures stays
    assert (call["outcome"], call["end_reason"], call["dialed_number"]) == ("booked", "caller_hangup", "+15035550100")
    assert call["ended_at"] is not None
    report = call["summary"]
    assert report["timing"] == {"duration_s": 95.0} and report["flags"] == [{"flag": "frustration", "turns": [1]}]
    assert report["bookings"][0]["service"] == "Drain cleaning"
    assert report["lead"] == {"score": 80, "hot": True}
    assert report["message"] == {"urgency": "soon", "callback_requested": True}
    assert report["escalation"] == {"reason": "angry_caller", "result": "refused"}
    assert "prose" not in report  # the summary model retells what the caller said
    for table in ("transcript_turns", "tool_calls", "violations", "leads", "messages", "outbox"):
        assert rows[table] == [], table
    (appointment,) = rows["appointments"]
    assert appointment["service"] == "Drain cleaning" and appointment["confirmation_code"]
    if not appointment_kept_personal:
        assert (appointment["customer_name"], appointment["customer_phone"]) == (None, None)


# ---------------------------------------------------------------------------------------------
# retention


async def test_retention_strips_only_what_is_past_each_businesses_retention(db_url: str) -> None:
    old = seed_call(db_url, PLUMBING, DANA, days_ago(31), appointment_at=days_ago(30.5))
    # booked 31 days ago for next week: the visit has not happened, so the name and number stay
    old_future_visit = seed_call(db_url, PLUMBING, SAM, days_ago(31), appointment_at=NOW + timedelta(days=7))
    recent = seed_call(db_url, PLUMBING, DANA, days_ago(29))
    forever = seed_call(db_url, DENTAL, DANA, days_ago(400))
    bakery_old = seed_call(db_url, BAKERY, ALEX, days_ago(8), appointment_at=days_ago(7.5))
    bakery_recent = seed_call(db_url, BAKERY, ALEX, days_ago(6))
    untouched = {c: rows_of_call(db_url, c.id) for c in (recent, forever, bakery_recent)}

    result = await sweep(db_url, POLICIES)

    assert result.ran
    assert_call_stripped(rows_of_call(db_url, old.id))
    assert_call_stripped(rows_of_call(db_url, bakery_old.id))
    kept = rows_of_call(db_url, old_future_visit.id)
    assert_call_stripped(kept, appointment_kept_personal=True)
    assert (kept["appointments"][0]["customer_name"], kept["appointments"][0]["customer_phone"]) == ("Dana Reyes", SAM)
    for call, before in untouched.items():
        assert rows_of_call(db_url, call.id) == before
        assert call.recording.exists() and call.voicemail.exists()
    assert result.counts[PLUMBING]["transcript_turns"] == {"deleted": 4}
    assert result.counts[PLUMBING]["calls"] == {"anonymised": 2}
    assert result.counts[PLUMBING]["voicemails"] == {"deleted": 2}
    assert result.counts[PLUMBING]["appointments"] == {"anonymised": 1}
    assert result.counts[BAKERY]["leads"] == {"deleted": 1}
    assert DENTAL not in result.counts
    with psycopg.connect(db_url) as conn:
        (run,) = conn.execute("SELECT finished_at, counts FROM retention_runs").fetchall()
    assert run[0] is not None and run[1] == json.loads(json.dumps(result.counts))


async def test_retention_deletes_in_batches_until_everything_old_is_gone(db_url: str, monkeypatch) -> None:
    from agent.store import privacy

    monkeypatch.setattr(privacy, "BATCH_ROWS", 3)  # 5 calls' records: two batches per table
    calls = [seed_call(db_url, PLUMBING, DANA, days_ago(40 + i)) for i in range(5)]
    result = await sweep(db_url, POLICIES)
    assert result.counts[PLUMBING]["transcript_turns"] == {"deleted": 10}
    assert result.counts[PLUMBING]["calls"] == {"anonymised": 5}
    for call in calls:
        assert_call_stripped(rows_of_call(db_url, call.id))


async def test_dry_run_counts_what_a_run_would_touch_and_changes_nothing(db_url: str) -> None:
    seed_call(db_url, PLUMBING, DANA, days_ago(31))
    seed_call(db_url, PLUMBING, SAM, days_ago(1))
    before = dump(db_url, tables=(*TABLES, "retention_runs"))

    dry = await sweep(db_url, POLICIES, dry_run=True)

    assert dump(db_url, tables=(*TABLES, "retention_runs")) == before
    real = await sweep(db_url, POLICIES)
    assert dry.counts == real.counts
    assert dry.counts[PLUMBING]["calls"] == {"anonymised": 1}


async def test_two_sweepers_at_once_do_the_work_once(db_url: str) -> None:
    old = seed_call(db_url, PLUMBING, DANA, days_ago(31), appointment_at=days_ago(30.5))
    first, second = await asyncio.gather(sweep(db_url, POLICIES), sweep(db_url, POLICIES))
    assert sorted([first.ran, second.ran]) == [False, True]
    winner = first if first.ran else second
    assert winner.counts[PLUMBING]["calls"] == {"anonymised": 1}
    assert_call_stripped(rows_of_call(db_url, old.id))
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM retention_runs").fetchone() == (1,)


async def test_a_sweep_while_another_holds_the_lock_touches_nothing(db_url: str) -> None:
    from agent.store.privacy import _RETENTION_LOCK

    seed_call(db_url, PLUMBING, DANA, days_ago(31))
    before = dump(db_url)
    with psycopg.connect(db_url, autocommit=True) as other:  # a sweeper on another machine, mid-run
        other.execute("SELECT pg_advisory_lock(%s)", (_RETENTION_LOCK,))
        result = await sweep(db_url, POLICIES)
    assert not result.ran and result.why_not == "another retention sweep is running"
    assert dump(db_url) == before


async def test_the_fleet_sweeps_once_a_day_and_again_after_a_run_that_died(db_url: str) -> None:
    # every run on the test's own clock: a suite that crosses midnight UTC between collecting this
    # module (NOW) and running it saw "today" move under it
    assert (await sweep(db_url, POLICIES, now=NOW)).ran
    seed_call(db_url, PLUMBING, DANA, days_ago(31))
    again = await sweep(db_url, POLICIES, now=NOW)
    assert not again.ran and again.why_not.startswith("already ran today")
    assert (await sweep(db_url, POLICIES, now=NOW + timedelta(days=1))).ran  # tomorrow
    # a run that started and never finished (its machine died) is no reason to skip the day
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO retention_runs (day) VALUES (%s)", ((NOW + timedelta(days=2)).date(),))
    assert (await sweep(db_url, POLICIES, now=NOW + timedelta(days=2))).ran


# ---------------------------------------------------------------------------------------------
# erasure


async def test_forget_erases_everything_personal_of_that_number_and_nothing_of_another(db_url: str) -> None:
    dana_past = seed_call(db_url, PLUMBING, DANA, days_ago(3))
    dana_dental = seed_call(db_url, DENTAL, DANA, days_ago(2), appointment_at=NOW + timedelta(days=5))
    sam = seed_call(db_url, PLUMBING, SAM, days_ago(3), callback_number=SAM)
    # Alex books for Dana and says her number: Alex's call holds Dana's number in its words and tools
    alex_for_dana = seed_call(db_url, PLUMBING, ALEX, days_ago(1), booked_for=DANA, appointment_at=days_ago(0.5),
                              said="It's for my mother, her number is (503) 555-0111.")  # fmt: skip
    sam_before = rows_of_call(db_url, sam.id)

    result = await forget(db_url, DANA, requested_by="alice")

    assert_call_stripped(rows_of_call(db_url, dana_past.id))
    assert_call_stripped(rows_of_call(db_url, dana_dental.id))
    # her future booking is cancelled: nobody could confirm or move it any more, and the slot is free
    with psycopg.connect(db_url) as conn:
        status = conn.execute("SELECT status FROM appointments WHERE id = %s", (dana_dental.appointment_id,)).fetchone()
    assert status == ("cancelled",)
    assert [(c.business, c.confirmation_code) for c in result.cancelled] == [(DENTAL, dana_dental.code)]
    # Alex's call keeps Alex, loses what was Dana's
    alex = rows_of_call(db_url, alex_for_dana.id)
    assert alex["calls"][0]["caller_number"] == ALEX
    assert [t["role"] for t in alex["transcript_turns"]] == ["agent"]
    assert alex["tool_calls"] == [] and alex["leads"] == []
    # his callback message for her is gone; his voicemail on that call, like its recording, cannot be
    # cut, so its audio goes and the row saying he left one stays
    assert [(m["body"][:9], m["audio_path"]) for m in alex["messages"]] == [("Voicemail", None)]
    assert not alex_for_dana.voicemail.exists()
    assert "callback_number" not in alex["calls"][0]["summary"]["message"]
    assert alex["appointments"][0]["customer_phone"] is None
    # her number is in the words of Alex's call, so its recording (which cannot be cut) is gone too
    assert not alex_for_dana.recording.exists() and alex["calls"][0]["recording_path"] is None
    assert result.counts["recordings"] == {"deleted": 3}
    assert result.counts["voicemails"] == {"deleted": 3}
    # Sam is untouched
    assert rows_of_call(db_url, sam.id) == sam_before
    assert sam.recording.exists() and sam.voicemail.exists()
    # Dana's number is nowhere, in any form
    everything = json.dumps(dump(db_url))
    assert "5550111" not in everything
    assert result.counts["transcript_turns"] == {"deleted": 5}
    assert result.counts["appointments"] == {"anonymised": 2, "cancelled": 1}
    assert result.counts["calls"] == {"anonymised": 3}


async def test_forget_writes_an_audit_row_without_the_number_and_a_second_run_touches_nothing(db_url: str) -> None:
    seed_call(db_url, PLUMBING, DANA, days_ago(3))
    first = await forget(db_url, DANA, requested_by="alice")
    after_first = dump(db_url)
    second = await forget(db_url, DANA, requested_by="bob")

    assert dump(db_url) == after_first
    assert all(not any(n for n in done.values()) for done in second.counts.values())
    with psycopg.connect(db_url) as conn:
        audit = conn.execute(
            "SELECT id, requested_by, number_masked, counts, erased_at FROM erasures ORDER BY id"
        ).fetchall()
    assert [(a[0], a[1], a[2]) for a in audit] == [(first.audit_id, "alice", "+*******0111"),
                                                    (second.audit_id, "bob", "+*******0111")]  # fmt: skip
    assert audit[0][3]["calls"] == {"anonymised": 1} and audit[1][3]["calls"] == {"anonymised": 0}
    assert all(a[4] is not None for a in audit)
    assert "5035550111" not in json.dumps([list(map(str, a)) for a in audit])


def test_written_forms_match_the_number_as_people_write_it_and_nothing_longer(db_url: str) -> None:
    pattern = written_forms(DANA)
    with psycopg.connect(db_url) as conn:
        def matches(text: str) -> bool:
            row = conn.execute("SELECT %s ~ %s", (text, pattern)).fetchone()
            return bool(row and row[0])

        for text in ('{"phone": "+15035550111"}', "(503) 555-0111", "503.555.0111", "1 503 555 0111", "5035550111"):
            assert matches(text), text
        for text in ("25035550111", "503 555 01112", "+15035550112", "five oh three"):
            assert not matches(text), text


def _digest(db_url: str, day: datetime, text: str) -> None:
    """A daily digest as the sender queued it: the calls started in [day - 1, day)."""
    payload = {"version": 1, "kind": "digest", "business": PLUMBING, "text": text,
               "detail": {"from": (day - timedelta(days=1)).isoformat(), "to": day.isoformat()}}  # fmt: skip
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO outbox (key, business, kind, channel, destination, payload, status, created_at)"
            " VALUES (%s, %s, 'digest', 'email', 'owner@example.com', %s, 'sent', %s)",
            (f"digest:{PLUMBING}:{day.date()}/email:owner@example.com", PLUMBING, json.dumps(payload), day),
        )


async def test_forget_reaches_the_digest_that_listed_their_message_under_another_number(db_url: str) -> None:
    """The digest lists a message in the caller's words with the callback number they gave, not their
    caller ID: nothing in it names the number asked about, and it stayed."""
    seed_call(db_url, PLUMBING, DANA, days_ago(3), callback_number=SAM)
    _digest(db_url, days_ago(2.5), "Messages awaiting a callback:\n  Dana Reyes (+15035550222): \"Call me back\"")
    _digest(db_url, days_ago(1.5), "No calls.")  # a day she did not call keeps its digest
    await forget(db_url, DANA, requested_by="alice")
    with psycopg.connect(db_url) as conn:
        left = conn.execute("SELECT payload->>'text' FROM outbox WHERE kind = 'digest'").fetchall()
    assert left == [("No calls.",)]
