"""A throwaway PostgreSQL cluster on loopback: for simulated calls (`receptionist simulate`), benchmarks
and tests. It runs as the `postgres` OS user when started as root (initdb refuses root)."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def watch_parent(cleanup: str) -> subprocess.Popen[bytes]:
    """Run the shell command `cleanup` once this process is gone, even if it was killed without a
    chance to tear down (SIGTERM/SIGKILL skip atexit). Terminate the returned watcher to cancel."""
    script = f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; {cleanup}"
    return subprocess.Popen(
        ["sh", "-c", script],
        start_new_session=True,  # survives a signal sent to the test run's process group
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class PgServer:
    """One local cluster; `dsn(dbname)` gives a TCP DSN (trust auth, user postgres)."""

    def __init__(
        self,
        root: Path | None = None,
        port: int | None = None,
        durable: bool = False,
        max_connections: int = 300,
    ) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="pgtest-"))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "postgres.log"
        self.port = port or free_port()
        self._as_postgres = os.geteuid() == 0
        self.durable = durable  # benchmarks want production-like commits; tests want speed
        self.max_connections = max_connections  # a test of the connection budget sets it low
        self.initialised = False
        self._watcher: subprocess.Popen[bytes] | None = None

    # -- process control -------------------------------------------------------------------------
    def _as_user(self) -> tuple[str, ...]:
        return ("runuser", "-u", "postgres", "--") if self._as_postgres else ()

    def _run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [*self._as_user(), *(str(a) for a in args)]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def init(self) -> None:
        self.sockets.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        self._run(
            PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            if not self.durable:  # durability is pointless for a throwaway test cluster
                conf.write("\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
            conf.write(
                f"\nmax_connections = {self.max_connections}\nshared_buffers = 64MB\n"
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.sockets}'\n"
            )
        self.initialised = True
        stop = " ".join(
            shlex.quote(str(a))
            for a in (
                *self._as_user(),
                PG_BIN / "pg_ctl",
                "-D",
                self.data,
                "-m",
                "immediate",
                "stop",
            )
        )
        self._watcher = watch_parent(f"{stop}; rm -rf {shlex.quote(str(self.root))}")

    def start(self) -> None:
        if not self.initialised:
            self.init()
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30", "start")
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server ("fast" closes client connections; "immediate" is a crash)."""
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    @property
    def running(self) -> bool:
        return self._run(PG_BIN / "pg_ctl", "-D", self.data, "status", check=False).returncode == 0

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def destroy(self) -> None:
        if self.initialised and self.data.exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
        if self._watcher is not None:
            self._watcher.terminate()
            self._watcher.wait()
            self._watcher = None

    # -- databases -------------------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> None:
        with psycopg.connect(self.dsn(dbname), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def create_database(self, name: str, template: str | None = None) -> str:
        tmpl = f" TEMPLATE {template}" if template else ""
        self.execute(f'CREATE DATABASE "{name}"{tmpl}')
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.asynccontextmanager
async def migrated_database(prefix: str) -> AsyncIterator[str]:
    """A throwaway cluster with one database on the current schema: its DSN, for a benchmark's
    worker; the cluster is destroyed at the end."""
    from agent.store.db import migrate

    pg = PgServer()
    pg.start()
    try:
        dsn = pg.create_database(f"{prefix}_{uuid.uuid4().hex[:6]}")
        await migrate(dsn)
        yield dsn
    finally:
        pg.destroy()
