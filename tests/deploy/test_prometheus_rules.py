"""The shipped alert rules (deploy/prometheus/alerts.yaml) load in Prometheus and fire when, and only
when, their unit tests (alerts.test.yaml) say: what an operator relies on to be woken up."""

from __future__ import annotations

import subprocess

import yaml

from tests.fixtures.prometheus import tool
from tests.fixtures.stack import ROOT

RULES = ROOT / "deploy" / "prometheus"


def test_alert_rules_are_valid() -> None:
    check = subprocess.run(
        [tool("promtool"), "check", "rules", str(RULES / "alerts.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    shipped = {
        rule["alert"]
        for group in yaml.safe_load((RULES / "alerts.yaml").read_text())["groups"]
        for rule in group["rules"]
    }
    # dead air, slow greetings, errors, records stuck on disk, the database gone (issue 10)
    assert {
        "ReceptionistDeadAir", "ReceptionistSlowGreeting", "ReceptionistCallErrors",
        "ReceptionistSpillBacklog", "ReceptionistPostgresUnreachable",
    } <= shipped  # fmt: skip


def test_alerts_fire_as_their_unit_tests_expect() -> None:
    # promtool resolves rule_files against the tests file's directory
    run = subprocess.run(
        [tool("promtool"), "test", "rules", "alerts.test.yaml"],
        cwd=RULES, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout, run.stdout
