"""Postgres plumbing: schema migrations and the async connection pool the call path uses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)
# run on each new connection of a pool before its first use (see open_pool)
ConnectionHook = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# one fixed advisory-lock key, so replicas starting together apply migrations one at a time
_MIGRATE_LOCK = zlib.crc32(b"receptionist.schema_migrations")

# errors meaning "the database is not reachable right now", as opposed to "your request is wrong"
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    OSError,
    TimeoutError,
)


class StoreUnavailable(Exception):
    """Postgres could not be reached (or answered too slowly); the caller should hear a fallback."""


class DatabaseNotReady(Exception):
    """The configured database cannot be used yet. The message is one line for an operator, and
    never contains the password."""


class DatabaseUrlInvalid(DatabaseNotReady):
    """DATABASE_URL does not parse as a Postgres connection string."""


class DatabaseUnreachable(DatabaseNotReady):
    """Postgres refused or did not answer the connection (host, port, credentials, database name)."""


class SchemaBehind(DatabaseNotReady):
    """The database lacks migrations this code relies on."""


def database_target(dsn: str) -> str:
    """`host:port/dbname` of a DSN, for messages: enough to spot a typo, without the password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        # psycopg's own message quotes the string, password included
        raise DatabaseUrlInvalid(
            "DATABASE_URL is not a Postgres connection string "
            "(like postgresql://user:password@host:5432/dbname)"
        ) from None
    where = f"{params.get('host') or 'the local socket'}:{params.get('port') or 5432}"
    return f"{where}/{params['dbname']}" if params.get("dbname") else where


@contextlib.contextmanager
def _connect(dsn: str, connect_timeout: int = 10) -> Iterator[psycopg.Connection[Any]]:
    """A plain autocommit connection for schema work, failing with one line naming the target."""
    target = database_target(dsn)
    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout)
    except psycopg.Error as exc:
        raise DatabaseUnreachable(
            f"cannot connect to Postgres at {target}: {_reason(exc, dsn)}"
        ) from exc
    with conn:
        yield conn


def _reason(exc: psycopg.Error, dsn: str) -> str:
    # 'connection failed: connection to server at "h", port 5999 failed: Connection refused\n\tIs the
    # server running...': the last clause of the first line is the news; the rest repeats the target
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = reason.rsplit(" failed: ", 1)[-1].removeprefix("connection is bad: ")
    reason = reason.removeprefix("FATAL:").strip()
    password = conninfo_to_dict(dsn).get("password")
    return reason.replace(password, "***") if password else reason


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    files = sorted(directory.glob("*.sql"))
    versions = [_version(f) for f in files]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration numbers in {directory}: {versions}")
    return files


def _version(path: Path) -> str:
    return path.name.split("_", 1)[0]


def pending_migrations(
    dsn: str, directory: Path = MIGRATIONS_DIR, connect_timeout: int = 10
) -> list[str]:
    """Names of the migrations this code has that the database has not applied, in order."""
    with _connect(dsn, connect_timeout) as conn:
        row = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
        done: set[str] = set()
        if row is not None and row[0] is not None:
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    return [p.name for p in migration_files(directory) if _version(p) not in done]


def require_current_schema(dsn: str, directory: Path = MIGRATIONS_DIR) -> None:
    """Refuse (SchemaBehind) to serve calls on a schema older than this code: production workers
    never migrate (one `receptionist db migrate` per release does), so a missed step shows here
    rather than as failed bookings mid-call. A database that cannot be reached right now does not
    stop a start: calls are still answered and their records spill to disk until it is back."""
    try:
        pending = pending_migrations(dsn, directory, connect_timeout=5)
    except DatabaseUnreachable as exc:
        log.warning("could not check the database schema (%s); starting anyway", exc)
        return
    if pending:
        raise SchemaBehind(
            f"the database schema is behind this code ({', '.join(pending)} not applied "
            f"at {database_target(dsn)}): run `receptionist db migrate` first"
        )


def migrate_sync(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations in order; returns the names applied by this call (idempotent)."""
    applied_now: list[str] = []
    with _connect(dsn) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version text PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for path in migration_files(directory):
                version = _version(path)
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, path.name),
                    )
                log.info("applied migration %s", path.name)
                applied_now.append(path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATE_LOCK,))
    return applied_now


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Async wrapper for start-up code; migrations are DDL, run once, off the event loop."""
    return await asyncio.to_thread(migrate_sync, dsn, directory)


# a connection back in the pool more recently than this is trusted without a round trip (the idea of
# HikariCP's aliveBypassWindow); one idle longer may sit behind a NAT or firewall that dropped it silently
TRUSTED_IDLE_S = 5.0


class _Liveness:
    """The pool's checkout check, without a round trip for a connection used moments ago.

    A server that restarts, or ends a backend, closes the socket or sends it a FATAL message: either
    makes it readable while the connection is idle, which a zero-timeout poll sees at no cost. Only
    then, or after a long idle spell, is the connection pinged. Under load this saves one of the two
    round trips a booking makes; a broken connection is still replaced at checkout, not by a caller.
    """

    def __init__(self, prepare: ConnectionHook | None) -> None:
        self._returned: WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = WeakKeyDictionary()
        self._prepare = prepare

    async def returned(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._returned[conn] = time.monotonic()

    async def opened(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._prepare is not None:
            await self._prepare(conn)
        await self.returned(conn)

    async def check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if conn.closed or conn.broken:
            raise psycopg.OperationalError("the connection is closed")
        idle = time.monotonic() - self._returned.get(conn, float("-inf"))
        poll = select.poll()
        poll.register(conn.fileno(), select.POLLIN)
        if idle > TRUSTED_IDLE_S or poll.poll(0):
            await AsyncConnectionPool.check_connection(conn)


async def open_pool(
    dsn: str,
    min_size: int = 1,
    max_size: int = 10,
    *,
    connect_timeout: int = 2,
    acquire_timeout: float = 2.0,
    statement_timeout_ms: int = 5000,
    name: str = "receptionist",
    prepare: ConnectionHook | None = None,
    pgbouncer: bool = False,
    wait: bool = True,
) -> AsyncConnectionPool:
    """An opened pool; raises (fail fast at start-up) if Postgres is unreachable, unless `wait` is False:
    then it connects as soon as Postgres lets it, and each checkout meanwhile times out.

    `prepare` runs on each new connection before it is handed out: a pool that serves callers passes
    `appointments.warm_up`, so a new backend's slow first booking is paid before anyone waits on it.

    Timeouts are short because a caller is waiting on every query made through this pool. Connections
    are in autocommit: a lone statement is its own transaction (no BEGIN/COMMIT round trips), and
    writes that need more than one statement open a transaction explicitly (`conn.transaction()`).

    `pgbouncer`: the DSN is PgBouncer in transaction pooling mode (DATABASE_PGBOUNCER), where each
    transaction may run on another server connection. Statements are then never prepared (a name
    prepared on one backend is missing, or taken, on the next; Debian 12's PgBouncer 1.18 predates
    `max_prepared_statements`), and the timeouts are not sent as `options`, a startup parameter
    PgBouncer refuses: its `connect_query` sets them on the server connections (README, PgBouncer).
    """
    liveness = _Liveness(prepare)
    session: dict[str, Any] = (
        {"prepare_threshold": None}
        if pgbouncer
        else {"options": f"-c statement_timeout={statement_timeout_ms} -c lock_timeout=2000"}
    )
    pool = AsyncConnectionPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=acquire_timeout,
        name=name,
        configure=liveness.opened,
        # a connection broken by a server restart is found and replaced at checkout, not by a caller
        check=liveness.check,
        reset=liveness.returned,
        reconnect_timeout=float("inf"),  # keep trying through an outage instead of giving up
        kwargs={
            "autocommit": True,
            "connect_timeout": connect_timeout,
            "tcp_user_timeout": 5000,
            "application_name": name,
            **session,
        },
    )
    await pool.open(wait=wait, timeout=max(acquire_timeout, float(connect_timeout) * 2))
    return pool
