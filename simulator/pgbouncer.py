"""Debian's PgBouncer on loopback in front of a throwaway PgServer, in transaction pooling mode: for
the connection-budget test and benchmark. It runs deploy/pgbouncer/pgbouncer.ini with only the
addresses, the auth and the files changed, so the shipped configuration is the one measured. PgBouncer
refuses to run as root, so it runs as `postgres` like the cluster."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from simulator.postgres import PgServer, free_port, watch_parent

PGBOUNCER = Path("/usr/sbin/pgbouncer")  # Debian's `pgbouncer` (Makefile TEST_APT_PACKAGES)
CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "pgbouncer" / "pgbouncer.ini"


class PgBouncer:
    """One PgBouncer on a loopback port in front of `server`; `dsn(dbname)` reaches a database through it."""

    def __init__(self, server: PgServer) -> None:
        self.server = server
        self.root = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        self.port = free_port()
        self.log = self.root / "pgbouncer.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._watcher: subprocess.Popen[bytes] | None = None

    def _config(self) -> configparser.ConfigParser:
        config = configparser.ConfigParser(interpolation=None)
        config.optionxform = str  # type: ignore[assignment,method-assign]  # keys as written
        config.read(CONFIG)
        for name, entry in config["databases"].items():
            entry = re.sub(r"\bhost=\S+", "host=127.0.0.1", entry)
            config["databases"][name] = re.sub(r"\bport=\d+", f"port={self.server.port}", entry)
        config["pgbouncer"].update(
            listen_addr="127.0.0.1",
            listen_port=str(self.port),
            unix_socket_dir="",
            auth_type="trust",  # as the cluster's own auth; the user must still be listed
            auth_file=str(self.root / "userlist.txt"),
            logfile=str(self.log),
        )
        return config

    def start(self) -> None:
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        with open(self.root / "pgbouncer.ini", "w") as f:
            self._config().write(f)
        as_postgres: tuple[str, ...] = ()
        if self.server._as_user():
            for path in (self.root, *self.root.iterdir()):
                shutil.chown(path, "postgres", "postgres")
            as_postgres = self.server._as_user()
        self._process = subprocess.Popen(
            [*as_postgres, str(PGBOUNCER), str(self.root / "pgbouncer.ini")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # runuser passes the TERM on to PgBouncer
        self._watcher = watch_parent(f"kill {self._process.pid}; rm -rf {shlex.quote(str(self.root))}")
        self.wait_ready()

    def wait_ready(self, attempts: int = 200) -> None:
        for _ in range(attempts):
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log.read_text() if self.log.exists() else ''}")
            try:
                psycopg.connect(self.dsn("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.05)  # as PgServer.wait_ready: nothing to wait on but the port
        raise RuntimeError(f"pgbouncer did not answer on {self.port}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
        shutil.rmtree(self.root, ignore_errors=True)
        if self._watcher is not None:
            self._watcher.terminate()
            self._watcher.wait()
            self._watcher = None

    def dsn(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"
