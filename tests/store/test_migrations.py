"""Migrations apply once, in order, even when several replicas start together; a schema behind the
code is noticed before a worker takes calls."""

import asyncio
import uuid

import psycopg
import pytest

from agent.store.db import (
    DatabaseUrlInvalid,
    SchemaBehind,
    migrate,
    migrate_sync,
    migration_files,
    pending_migrations,
    require_current_schema,
)


async def test_migrate_is_idempotent(pg_server):
    name = f"m_{uuid.uuid4().hex[:10]}"
    dsn = pg_server.create_database(name)
    try:
        first = await migrate(dsn)
        assert first == [p.name for p in migration_files()]
        assert await migrate(dsn) == []
        with psycopg.connect(dsn) as conn:
            tables = {r[0] for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}  # fmt: skip
            versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
        assert {"calls", "transcript_turns", "tool_calls", "appointments", "leads", "messages",
                "violations", "schema_migrations"} <= tables  # fmt: skip
        assert len(versions) == len(first)
    finally:
        pg_server.drop_database(name)


async def test_concurrent_migrate_applies_each_file_once(pg_server):
    name = f"m_{uuid.uuid4().hex[:10]}"
    dsn = pg_server.create_database(name)
    try:
        results = await asyncio.gather(*(migrate(dsn) for _ in range(6)))
        applied = [name for result in results for name in result]
        assert sorted(applied) == [p.name for p in migration_files()]
    finally:
        pg_server.drop_database(name)


def test_pending_migrations_say_how_far_behind_the_schema_is(pg_server):
    name = f"m_{uuid.uuid4().hex[:10]}"
    dsn = pg_server.create_database(name)
    every = [p.name for p in migration_files()]
    try:
        assert pending_migrations(dsn) == every
        with pytest.raises(SchemaBehind, match=r"receptionist db migrate"):
            require_current_schema(dsn)
        migrate_sync(dsn)
        assert pending_migrations(dsn) == []
        require_current_schema(dsn)  # up to date: no complaint
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM schema_migrations WHERE name = %s", (every[-1],))
        assert pending_migrations(dsn) == [every[-1]]
        with pytest.raises(SchemaBehind, match=every[-1]):
            require_current_schema(dsn)
    finally:
        pg_server.drop_database(name)


def test_an_unreachable_database_does_not_stop_a_start_but_a_malformed_url_does(caplog):
    from simulator.postgres import free_port

    require_current_schema(f"postgresql://postgres:pw@127.0.0.1:{free_port()}/receptionist")
    assert "could not check the database schema" in caplog.text
    with pytest.raises(DatabaseUrlInvalid):
        require_current_schema("postgres//postgres:pw@db.example/receptionist")


async def test_a_voicemail_recorded_before_its_column_is_read_back_into_it(pg_server, tmp_path):
    """Before 015 a voicemail's path was written only at the end of its message's text; the migration
    reads it into messages.audio_path, where erasure and retention find it, when it is the call's own."""
    name = f"m_{uuid.uuid4().hex[:10]}"
    dsn = pg_server.create_database(name)
    before = tmp_path / "before"
    before.mkdir()
    for path in migration_files():
        if path.name < "015":
            (before / path.name).write_text(path.read_text())
    try:
        await migrate(dsn, before)
        call_id = uuid.uuid4()
        old = f"Voicemail (12 s, taken while the AI assistant was unreachable): /app/var/my voicemail/{call_id}.wav"
        other = f"Voicemail (4 s, taken while the AI assistant was unreachable): /app/var/voicemail/{uuid.uuid4()}.wav"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO calls (id, business, started_at) VALUES (%s, 'B', now())", (call_id,))
            for body in (old, other, "Call me back about the invoice: /not/a/voicemail.wav", "Voicemail (3 s): gone"):
                conn.execute("INSERT INTO messages (id, call_id, business, body, created_at)"
                             " VALUES (%s, %s, 'B', %s, now())", (uuid.uuid4(), call_id, body))  # fmt: skip
        assert (await migrate(dsn))[0] == "015_message_audio.sql"
        with psycopg.connect(dsn) as conn:
            rows = dict(conn.execute("SELECT body, audio_path FROM messages").fetchall())
        assert rows[old] == f"/app/var/my voicemail/{call_id}.wav"  # spaces in a path too
        # a path that is not this call's file (a model's words, another call's) is not taken
        assert [p for body, p in rows.items() if body != old] == [None, None, None]
    finally:
        pg_server.drop_database(name)


def test_calls_recorded_with_livekits_close_reasons_read_as_the_receptionists_end_reasons(pg_server, tmp_path):
    # rows a worker wrote before 017: a hang-up under LiveKit's name, a job LiveKit shut down, another reason
    earlier = tmp_path / "before-017"
    earlier.mkdir()
    for path in migration_files():
        if path.name < "017":
            (earlier / path.name).write_text(path.read_text())
    name = f"m_{uuid.uuid4().hex[:10]}"
    dsn = pg_server.create_database(name)
    rows = {
        uuid.uuid4(): ("participant_disconnected", {"end_reason": "participant_disconnected", "flags": []}),
        uuid.uuid4(): ("user_initiated", {"end_reason": "user_initiated"}),
        uuid.uuid4(): ("agent_goodbye", {"end_reason": "agent_goodbye"}),
        uuid.uuid4(): ("participant_disconnected", None),
    }
    try:
        migrate_sync(dsn, earlier)
        with psycopg.connect(dsn) as conn:
            for call_id, (reason, summary) in rows.items():
                conn.execute(
                    "INSERT INTO calls (id, business, started_at, ended_at, outcome, end_reason, summary)"
                    " VALUES (%s, 'Rose City Plumbing', now(), now(), 'abandoned', %s, %s)",
                    (call_id, reason, psycopg.types.json.Jsonb(summary) if summary is not None else None),
                )
        assert migrate_sync(dsn)[0] == "017_caller_hangup.sql"
        with psycopg.connect(dsn) as conn:
            now = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, end_reason, summary FROM calls")}
    finally:
        pg_server.drop_database(name)
    ids = list(rows)
    assert now == {
        ids[0]: ("caller_hangup", {"end_reason": "caller_hangup", "flags": []}),
        ids[1]: ("job_shutdown", {"end_reason": "job_shutdown"}),
        ids[2]: ("agent_goodbye", {"end_reason": "agent_goodbye"}),
        ids[3]: ("caller_hangup", None),
    }
