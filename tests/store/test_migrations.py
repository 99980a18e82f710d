"""Migrations apply once, in order, even when several replicas start together."""

import asyncio
import uuid

import psycopg

from agent.store.db import migrate, migration_files


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
