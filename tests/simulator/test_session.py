"""`receptionist simulate` over several scenarios, as the README runs it: each scenario's call sees
only its own rows, and a scenario that crashes costs its own report, never the others'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECEPTIONIST = str(Path(sys.executable).parent / "receptionist")


def simulate(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # no DATABASE_URL: every run gets a throwaway local Postgres, as on a newcomer's machine
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "DATABASE_URL"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [RECEPTIONIST, "simulate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_scenarios_seeding_the_same_slot_each_get_their_own_database() -> None:
    # both seed an inspection on 2026-11-30 13:00: in one shared database the second cannot
    out = simulate("tests/scenarios/cancel-someone-elses.yaml", "tests/scenarios/cancel.yaml")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "Scenario: cancel-someone-elses" in out.stdout
    assert "Scenario: cancel " in out.stdout
    assert out.stdout.count("RESULT: PASS") == 2
    assert out.stdout.splitlines()[-1] == "2 of 2 scenarios passed"


def test_a_crashing_scenario_gets_an_error_line_and_the_others_still_report(tmp_path: Path) -> None:
    crashing = tmp_path / "seeds-an-unknown-service.yaml"
    crashing.write_text(
        (ROOT / "tests/scenarios/hours-saturday.yaml")
        .read_text()
        .replace("name: hours-saturday", "name: seeds-an-unknown-service")
        + 'seed: {appointments: [{service: chimney sweeping, start: "2026-11-25T09:00"}]}\n'
    )
    scenarios = [str(crashing), str(ROOT / "tests/scenarios/hours-saturday.yaml")]

    out = simulate(*scenarios, cwd=tmp_path)
    assert out.returncode == 1
    assert "Traceback" not in out.stdout + out.stderr
    crashed, passed = out.stdout.split("Scenario: hours-saturday")
    assert "Scenario: seeds-an-unknown-service" in crashed
    assert (
        "ERROR  ValueError: seed: 'chimney sweeping' is not a service of Rose City Plumbing"
        in crashed
    )
    assert "RESULT: FAIL" in crashed
    assert "RESULT: PASS" in passed
    assert passed.splitlines()[-1] == "1 of 2 scenarios passed; failed: seeds-an-unknown-service"

    reports = json.loads(simulate(*scenarios, "--json", cwd=tmp_path).stdout)
    assert [(r["scenario"], r["passed"]) for r in reports] == [
        ("seeds-an-unknown-service", False),
        ("hours-saturday", True),
    ]
    assert "chimney sweeping" in reports[0]["error"]
