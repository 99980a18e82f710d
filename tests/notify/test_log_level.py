"""LOG_LEVEL reaches the long-running `receptionist` services as it reaches the worker: from the process
environment or, as the README's set-up leaves it, from a `.env` file with nothing exported; a value it
cannot take is refused in one line, and a one-off command prints warnings only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECEPTIONIST = str(Path(sys.executable).parent / "receptionist")
DEBUG_LINE = "DEBUG asyncio: Using selector"  # the first thing an asyncio program logs at DEBUG


def _run(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    # nothing of ours exported: what the command knows comes from cwd's .env
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return subprocess.run([RECEPTIONIST, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _dotenv(cwd: Path, db_url: str, level: str) -> None:
    (cwd / ".env").write_text(f"DATABASE_URL={db_url}\nBRAIN_PATH={ROOT / 'brains'}\nLOG_LEVEL={level}\n")


def test_notify_logs_at_the_level_a_dotenv_file_sets(db_url: str, tmp_path: Path) -> None:
    _dotenv(tmp_path, db_url, "DEBUG")
    ran = _run(tmp_path, "notify", "run", "--once")
    assert ran.returncode == 0, ran.stderr
    assert DEBUG_LINE in ran.stderr, ran.stderr
    _dotenv(tmp_path, db_url, "WARNING")
    ran = _run(tmp_path, "notify", "run", "--once")
    assert ran.returncode == 0 and DEBUG_LINE not in ran.stderr, ran.stderr


def test_a_one_off_command_prints_warnings_only_unless_asked(db_url: str, tmp_path: Path) -> None:
    _dotenv(tmp_path, db_url, "DEBUG")
    ran = _run(tmp_path, "outbox", "list")
    assert ran.returncode == 0 and "DEBUG" not in ran.stderr, ran.stderr
    ran = _run(tmp_path, "--log-level", "debug", "outbox", "list")
    assert ran.returncode == 0 and DEBUG_LINE in ran.stderr, ran.stderr


@pytest.mark.parametrize("command", [["notify", "run", "--once"], ["web", "--port", "0"]])
def test_a_log_level_it_cannot_take_is_refused_in_one_line(db_url: str, tmp_path: Path, command: list[str]) -> None:
    _dotenv(tmp_path, db_url, "LOUD")
    ran = _run(tmp_path, *command)
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.strip().splitlines()[-1] == "receptionist: error: LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, not 'LOUD'"
