"""`receptionist retention` and `receptionist forget` as an operator types them: what they print, their
exit codes, and what they leave in Postgres."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import yaml

from tests.fixtures.personal_data import TABLES, dump, rows_of_call, seed_call

ROOT = Path(__file__).resolve().parents[2]
RECEPTIONIST = str(Path(sys.executable).parent / "receptionist")
NOW = datetime.now(UTC)
DANA, SAM = "+15035550111", "+15035550222"


def receptionist(*args: str, db_url: str, brains: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LIVEKIT_", "BRAIN", "DATABASE_URL"))}
    env.update({"PYTHONPATH": str(ROOT), "DATABASE_URL": db_url, "BRAIN_PATH": str(brains or ROOT / "brains")})
    return subprocess.run([RECEPTIONIST, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def brains_keeping(tmp_path: Path, days: int) -> Path:
    """The two example businesses: plumbing keeps `days` days, dental has no retention set."""
    plumbing = yaml.safe_load((ROOT / "brains" / "plumbing.yaml").read_text())
    plumbing["privacy"] = {"retain_days": days}
    (tmp_path / "plumbing.yaml").write_text(yaml.safe_dump(plumbing))
    (tmp_path / "dental.yaml").write_text((ROOT / "brains" / "dental.yaml").read_text())
    return tmp_path


def test_retention_dry_run_then_run_then_once_a_day(db_url: str, tmp_path: Path) -> None:
    brains = brains_keeping(tmp_path, 30)
    old = seed_call(db_url, "Rose City Plumbing", DANA, NOW - timedelta(days=31), appointment_at=NOW - timedelta(days=31))
    recent = seed_call(db_url, "Rose City Plumbing", SAM, NOW - timedelta(days=29))
    dental = seed_call(db_url, "Lakeview Family Dental", DANA, NOW - timedelta(days=900))
    before = dump(db_url, (*TABLES, "retention_runs"))

    dry = receptionist("retention", "--dry-run", db_url=db_url, brains=brains)

    assert dry.returncode == 0, dry.stderr
    assert dump(db_url, (*TABLES, "retention_runs")) == before
    assert "dry run" in dry.stdout
    assert "  transcript_turns: 2 deleted" in dry.stdout and "  calls: 1 anonymised" in dry.stdout
    assert "Lakeview Family Dental: kept forever (no privacy.retain_days)" in dry.stdout

    kept = {c: rows_of_call(db_url, c) for c in (recent.id, dental.id)}
    run = receptionist("retention", db_url=db_url, brains=brains)

    assert run.returncode == 0, run.stderr
    assert "Rose City Plumbing: 30 days, personal data before" in run.stdout
    assert "  transcript_turns: 2 deleted" in run.stdout
    stripped = rows_of_call(db_url, old.id)
    assert stripped["calls"][0]["caller_number"] is None and stripped["transcript_turns"] == []
    assert stripped["appointments"][0]["customer_name"] is None
    assert {c: rows_of_call(db_url, c) for c in kept} == kept

    again = receptionist("retention", db_url=db_url, brains=brains)
    assert again.returncode == 0
    assert again.stdout.startswith("retention: already ran today")


def test_forget_a_number_as_people_write_it(db_url: str) -> None:
    dana = seed_call(db_url, "Rose City Plumbing", DANA, NOW - timedelta(days=3))
    sam = seed_call(db_url, "Rose City Plumbing", SAM, NOW - timedelta(days=3))
    sam_before = rows_of_call(db_url, sam.id)

    out = receptionist("forget", "(503) 555-0111", "--by", "alice at the front desk", db_url=db_url)

    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("forgot +*******0111 (requested by alice at the front desk; audit row 1")
    assert "  transcript_turns: 2 deleted" in out.stdout
    assert "5550111" not in out.stdout + out.stderr
    assert rows_of_call(db_url, dana.id)["calls"][0]["caller_number"] is None
    assert rows_of_call(db_url, sam.id) == sam_before
    again = receptionist("forget", "+15035550111", db_url=db_url)
    assert again.returncode == 0
    assert "  transcript_turns: 0" in again.stdout
    with psycopg.connect(db_url) as conn:
        audit = conn.execute("SELECT requested_by, number_masked FROM erasures ORDER BY id").fetchall()
    assert audit == [("alice at the front desk", "+*******0111"), (getpass.getuser(), "+*******0111")]


def test_forget_refuses_what_is_not_a_phone_number_and_touches_nothing(db_url: str) -> None:
    seed_call(db_url, "Rose City Plumbing", DANA, NOW - timedelta(days=3))
    before = dump(db_url, (*TABLES, "erasures"))
    for bad in ("Dana Reyes", "503 555 011", ""):
        out = receptionist("forget", bad, db_url=db_url)
        assert out.returncode == 2
        assert out.stdout == ""
        assert out.stderr.startswith(f"receptionist: not a phone number: {bad!r}")
        assert len(out.stderr.strip().splitlines()) == 1
    assert dump(db_url, (*TABLES, "erasures")) == before
