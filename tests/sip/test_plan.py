"""Provisioning inputs and the desired state: brain loading, settings, diffing, plan output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from agent.telephony import ATTR_VERSTAT, VERSTAT_HEADER
from sip.plan import (
    TWILIO_SIGNALLING_CIDRS,
    Action,
    FieldChange,
    Plan,
    ProvisionError,
    ProvisionSettings,
    diff,
    load_businesses,
    load_settings,
)
from sip.provision import desired_rules, desired_trunk, rule_info, rule_view, trunk_view

from .conftest import BRAINS

REPO_BRAINS = Path(__file__).parents[2] / "brains"


def write_brain(directory: Path, stem: str, name: str, numbers: object) -> Path:
    path = directory / f"{stem}.yaml"
    path.write_text(json.dumps({"business": {"name": name, "numbers": numbers}}))
    return path


def test_loads_every_business_with_its_numbers() -> None:
    businesses = load_businesses(BRAINS)
    assert [(b.id, b.name, b.numbers) for b in businesses] == [
        ("bright-smile-dental", "Bright Smile Dental", ("+12175550142", "+12175550143")),
        ("northside-plumbing", "Northside Plumbing & Heating", ("+15185550177",)),
    ]
    assert [b.max_call_minutes for b in businesses] == [15, 20]


def test_single_brain_file_is_accepted() -> None:
    [business] = load_businesses(BRAINS / "northside-plumbing.yaml")
    assert business.id == "northside-plumbing"


def test_repository_example_brains_are_provisionable() -> None:
    businesses = load_businesses(REPO_BRAINS)
    assert len(businesses) >= 2
    assert all(n.startswith("+") for b in businesses for n in b.numbers)


@pytest.mark.parametrize(
    "bad", ["312-555-0142", "+0123456", "13125550142", 3125550142, "+1312555014299999"]
)
def test_non_e164_number_is_refused_naming_file_and_field(tmp_path: Path, bad: object) -> None:
    write_brain(tmp_path, "shop", "Shop", ["+13125550100", bad])
    with pytest.raises(ProvisionError) as err:
        load_businesses(tmp_path)
    message = str(err.value)
    assert "shop.yaml: business.numbers[1]" in message
    assert "E.164" in message or "not a possible" in message


def test_a_number_cannot_reach_two_businesses(tmp_path: Path) -> None:
    write_brain(tmp_path, "a", "A", ["+13125550100"])
    write_brain(tmp_path, "b", "B", ["+13125550100"])
    with pytest.raises(
        ProvisionError, match=r"b.yaml: business.numbers\[0\]: \+13125550100 already reaches a.yaml"
    ):
        load_businesses(tmp_path)


def test_missing_numbers_and_empty_directories_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="no brains found: .* holds no"):
        load_businesses(tmp_path)
    with pytest.raises(ProvisionError, match="no brains found: .* does not exist"):
        load_businesses(tmp_path / "missing")
    write_brain(tmp_path, "shop", "Shop", [])
    with pytest.raises(ProvisionError, match="business.numbers: needs at least one"):
        load_businesses(tmp_path)


def test_call_limit_is_a_positive_number_of_minutes_and_the_trunk_rounds_up(tmp_path: Path) -> None:
    brain = json.loads(write_brain(tmp_path, "shop", "Shop", ["+13125550100"]).read_text())
    path = tmp_path / "shop.yaml"
    for bad in (0, -1, "ten"):
        path.write_text(json.dumps({**brain, "calls": {"max_duration_minutes": bad}}))
        with pytest.raises(ProvisionError, match="shop.yaml: calls.max_duration_minutes: must be a positive number"):
            load_businesses(tmp_path)
    path.write_text(json.dumps({**brain, "calls": {"max_duration_minutes": 0.25}}))
    trunk = desired_trunk(ProvisionSettings(sip_max_call_grace_minutes=0), load_businesses(tmp_path))
    assert trunk.max_call_duration.seconds == 15


def test_settings_parse_cidrs_and_name_missing_env_vars(
    monkeypatch: pytest.MonkeyPatch, clean_env
) -> None:
    assert load_settings().sip_allowed_cidrs == list(TWILIO_SIGNALLING_CIDRS)
    monkeypatch.setenv("SIP_ALLOWED_CIDRS", "127.0.0.1/32, 10.0.0.0/8")
    assert load_settings().sip_allowed_cidrs == ["127.0.0.1/32", "10.0.0.0/8"]
    monkeypatch.setenv("SIP_ALLOWED_CIDRS", "none")
    assert load_settings().sip_allowed_cidrs == []
    monkeypatch.setenv("SIP_ALLOWED_CIDRS", "10.0.0.0/8,twilio")
    with pytest.raises(ProvisionError, match="SIP_ALLOWED_CIDRS: .*'twilio' is not an IP"):
        load_settings()
    monkeypatch.delenv("SIP_ALLOWED_CIDRS")
    monkeypatch.setenv("SIP_HOST", "sip:lk.example.com")
    with pytest.raises(ProvisionError, match="SIP_HOST: .*not a SIP URI"):
        load_settings()
    monkeypatch.delenv("SIP_HOST")
    with pytest.raises(
        ProvisionError, match="missing setting TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN"
    ):
        ProvisionSettings().require("twilio_account_sid", "twilio_auth_token", why="test")


def test_desired_state_routes_each_business_to_the_agent() -> None:
    settings = ProvisionSettings(agent_name="front-desk", sip_ringing_timeout_seconds=25)
    businesses = load_businesses(BRAINS)
    trunk = desired_trunk(settings, businesses)
    assert list(trunk.numbers) == ["+12175550142", "+12175550143", "+15185550177"]
    assert list(trunk.allowed_addresses) == sorted(TWILIO_SIGNALLING_CIDRS)
    # livekit-sip maps X-Twilio-CallSid itself; the STIR/SHAKEN verdict needs the trunk's mapping
    assert dict(trunk.headers_to_attributes) == {VERSTAT_HEADER: ATTR_VERSTAT}
    assert trunk.krisp_enabled is False
    assert trunk.ringing_timeout.seconds == 25
    assert trunk.max_call_duration.seconds == (20 + 5) * 60  # longest brain limit + grace

    rules = desired_rules(settings, businesses)
    assert [r.name for r in rules] == [
        "receptionist-bright-smile-dental",
        "receptionist-northside-plumbing",
        "receptionist-fallback",
    ]
    info = rule_info(rules[0], "ST_test", settings.agent_name)
    assert info.rule.dispatch_rule_individual.room_prefix == "call-"
    assert list(info.trunk_ids) == ["ST_test"]
    assert list(info.numbers) == ["+12175550142", "+12175550143"]
    [agent] = info.room_config.agents
    assert agent.agent_name == "front-desk"
    assert json.loads(agent.metadata) == {
        "business": "bright-smile-dental",
        "numbers": ["+12175550142", "+12175550143"],
    }
    assert json.loads(info.metadata)["name"] == "Bright Smile Dental"
    assert dict(info.attributes) == {"receptionist.business": "bright-smile-dental"}
    fallback = rule_info(rules[-1], "ST_test", settings.agent_name)
    assert list(fallback.numbers) == []


def test_views_of_the_same_desired_object_do_not_drift() -> None:
    settings = ProvisionSettings()
    businesses = load_businesses(BRAINS)
    trunk = desired_trunk(settings, businesses)
    assert diff(trunk_view(trunk), trunk_view(trunk)) == []
    rule = rule_info(desired_rules(settings, businesses)[0], "ST_x", "receptionist")
    assert diff(rule_view(rule), rule_view(rule)) == []


def test_diff_names_fields_and_hides_secrets() -> None:
    changes = diff(
        {"numbers": ["+1"], "auth_password": "old", "krisp_enabled": False},
        {"numbers": ["+1", "+2"], "auth_password": "new", "krisp_enabled": False},
        secrets=frozenset({"auth_password"}),
    )
    assert [c.field for c in changes] == ["numbers", "auth_password"]
    text = "; ".join(c.describe() for c in changes)
    assert "old" not in text and "new" not in text
    assert 'numbers: ["+1"] -> ["+1", "+2"]' in text
    assert changes[1].to_json() == {
        "field": "auth_password",
        "current": "<secret>",
        "desired": "<secret>",
    }


def test_plan_lines_and_json() -> None:
    plan = Plan()
    plan.add(Action("livekit", "inbound trunk", "receptionist-inbound", "keep", "ST_1"))
    plan.add(
        Action(
            "twilio",
            "origination url",
            "livekit-sip",
            "update",
            "OU1",
            [FieldChange("sip_url", "sip:old;transport=tcp", "sip:new;transport=tcp")],
        )
    )
    assert plan.lines() == [
        "keep   livekit inbound trunk 'receptionist-inbound' [ST_1]",
        "update twilio origination url 'livekit-sip' [OU1]: sip_url: 'sip:old;transport=tcp' -> 'sip:new;transport=tcp'",
    ]
    data = json.loads(plan.to_json("check", applied=False))
    assert data["drift"] is True
    assert data["actions"][1]["changes"] == [
        {"field": "sip_url", "current": "sip:old;transport=tcp", "desired": "sip:new;transport=tcp"}
    ]


def provision_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m sip.provision` as an operator types it, from an empty directory (no .env)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LIVEKIT_", "TWILIO_", "SIP_")) and k != "AGENT_NAME"
    }
    with tempfile.TemporaryDirectory() as cwd:
        return subprocess.run(
            [sys.executable, "-m", "sip.provision", "--brains", str(REPO_BRAINS), *args],
            cwd=cwd,
            env={**environ, "PYTHONPATH": str(REPO_BRAINS.parent), **(env or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )


def test_every_missing_setting_is_named_at_once_for_the_sides_provisioned() -> None:
    both = provision_cli("--dry-run")
    assert both.returncode == 2
    [line] = both.stderr.splitlines()
    for name in (
        "LIVEKIT_API_KEY",
        "LIVEKIT_API_SECRET",
        "SIP_HOST",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
    ):
        assert name in line
    assert "LIVEKIT_URL" not in line  # it has the worker's default

    livekit_only = provision_cli("--dry-run", "--only", "livekit")
    assert livekit_only.returncode == 2
    assert livekit_only.stderr.splitlines() == [
        "error: missing setting LIVEKIT_API_KEY, LIVEKIT_API_SECRET "
        "(needed for the LiveKit side; or pass --only twilio)"
    ]

    twilio_only = provision_cli("--check", "--only", "twilio", env={"TWILIO_ACCOUNT_SID": "AC123"})
    assert twilio_only.returncode == 2
    assert twilio_only.stderr.splitlines() == [
        "error: missing setting SIP_HOST, TWILIO_AUTH_TOKEN "
        "(needed for the Twilio side; or pass --only livekit)"
    ]


def test_livekit_url_defaults_like_the_worker(clean_env) -> None:
    from agent.settings import Settings

    assert load_settings().livekit_url == Settings.model_fields["livekit_url"].default
