"""The shipped alert rules (deploy/prometheus/alerts.yaml) load in Prometheus and fire when, and only
when, their unit tests (alerts.test.yaml) say: what an operator relies on to be woken up. Both
commands are run as README "Operator metrics" shows them."""

from __future__ import annotations

import shlex
import subprocess

import yaml

from tests.fixtures.prometheus import tool
from tests.fixtures.stack import ROOT

CHECK = "promtool check rules deploy/prometheus/alerts.yaml"
UNIT_TESTS = "promtool test rules deploy/prometheus/alerts.test.yaml"


def promtool(command: str) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    return subprocess.run(
        [tool(argv[0]), *argv[1:]], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_alert_rules_are_valid() -> None:
    check = promtool(CHECK)
    assert check.returncode == 0, check.stdout + check.stderr
    shipped = {
        rule["alert"]
        for group in yaml.safe_load((ROOT / "deploy/prometheus/alerts.yaml").read_text())["groups"]
        for rule in group["rules"]
    }
    # dead air, slow greetings, errors, records stuck on disk, the database gone (issue 10)
    assert {
        "ReceptionistDeadAir", "ReceptionistSlowGreeting", "ReceptionistCallErrors",
        "ReceptionistSpillBacklog", "ReceptionistPostgresUnreachable",
    } <= shipped  # fmt: skip
    # callers past a full fleet's slots (issue 13): scale before they hear busy
    assert "ReceptionistAllLinesBusy" in shipped


def test_alerts_fire_as_their_unit_tests_expect() -> None:
    run = promtool(UNIT_TESTS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout, run.stdout
