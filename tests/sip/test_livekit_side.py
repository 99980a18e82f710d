"""The LiveKit half of `python -m sip.provision` against a real livekit-server (tests/sip/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from livekit import api

from sip import provision

from .conftest import BRAINS, LiveKitServer, free_port

REPO = Path(__file__).parents[2]


@pytest.fixture
def env(livekit: LiveKitServer, clean_env: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in livekit.env().items():
        clean_env.setenv(name, value)
    clean_env.setenv("AGENT_NAME", "receptionist-test")
    clean_env.setenv("SIP_ALLOWED_CIDRS", "127.0.0.1/32")
    return clean_env


def run(*args: str, brains: object = BRAINS) -> int:
    return provision.main(["--only", "livekit", "--brains", str(brains), *args])


def state(
    livekit: LiveKitServer,
) -> tuple[list[api.SIPInboundTrunkInfo], list[api.SIPDispatchRuleInfo]]:
    async def read(lk: api.LiveKitAPI):
        trunks = await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())
        rules = await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())
        return list(trunks.items), sorted(rules.items, key=lambda r: r.name)

    return livekit.run(read)


def test_dry_run_then_run_creates_one_trunk_and_a_rule_per_business(
    env, livekit: LiveKitServer, capsys
) -> None:
    assert run("--dry-run") == 0
    assert state(livekit) == ([], [])
    planned = capsys.readouterr().out
    assert "create livekit inbound trunk 'receptionist-inbound'" in planned
    assert "4 change(s) planned, nothing applied" in planned

    assert run() == 0
    trunks, rules = state(livekit)
    [trunk] = trunks
    assert trunk.name == "receptionist-inbound"
    assert list(trunk.numbers) == ["+12175550142", "+12175550143", "+15185550177"]
    assert list(trunk.allowed_addresses) == ["127.0.0.1/32"]
    assert trunk.krisp_enabled is False
    assert trunk.max_call_duration.seconds == 25 * 60

    assert [r.name for r in rules] == [
        "receptionist-bright-smile-dental",
        "receptionist-fallback",
        "receptionist-northside-plumbing",
    ]
    dental, fallback, plumbing = rules
    for rule in rules:
        assert list(rule.trunk_ids) == [trunk.sip_trunk_id]
        assert rule.rule.dispatch_rule_individual.room_prefix == "call-"
        [agent] = rule.room_config.agents
        assert agent.agent_name == "receptionist-test"
    assert list(plumbing.numbers) == ["+15185550177"]
    assert json.loads(plumbing.room_config.agents[0].metadata) == {
        "business": "northside-plumbing",
        "numbers": ["+15185550177"],
    }
    assert json.loads(dental.metadata)["name"] == "Bright Smile Dental"
    assert list(fallback.numbers) == []
    applied = capsys.readouterr().out
    assert f"create livekit inbound trunk 'receptionist-inbound' [{trunk.sip_trunk_id}]" in applied
    assert "4 change(s) applied" in applied


def test_second_run_changes_nothing(env, livekit: LiveKitServer, capsys) -> None:
    assert run() == 0
    before = state(livekit)
    capsys.readouterr()

    assert run() == 0
    assert state(livekit) == before  # updated_at included: nothing was rewritten
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "nothing to change"
    assert all(line.startswith("keep") for line in out[:-1])
    assert run("--check") == 0


def test_changed_trunk_numbers_are_drift_until_the_next_run(
    env, livekit: LiveKitServer, capsys
) -> None:
    assert run() == 0
    [trunk], _ = state(livekit)

    async def drop_a_number(lk: api.LiveKitAPI) -> None:
        await lk.sip.update_inbound_trunk_fields(
            trunk.sip_trunk_id, numbers=["+12175550142", "+15185550177"]
        )

    livekit.run(drop_a_number)
    capsys.readouterr()

    assert run("--check") == 1
    out = capsys.readouterr().out
    assert (
        f"update livekit inbound trunk 'receptionist-inbound' [{trunk.sip_trunk_id}]: "
        'numbers: ["+12175550142", "+15185550177"] -> ["+12175550142", "+12175550143", "+15185550177"]'
    ) in out
    assert "1 drifted" in out

    assert run() == 0
    [fixed], _ = state(livekit)
    assert fixed.sip_trunk_id == trunk.sip_trunk_id  # updated in place: rules stay attached
    assert "+12175550143" in fixed.numbers
    assert run("--check") == 0


def test_changed_agent_name_is_drift_naming_the_field(env, livekit: LiveKitServer, capsys) -> None:
    assert run() == 0
    _, rules = state(livekit)
    dental = rules[0]
    dental.room_config.agents[0].agent_name = "someone-else"

    async def retarget(lk: api.LiveKitAPI) -> None:
        await lk.sip.update_dispatch_rule(dental.sip_dispatch_rule_id, dental)

    livekit.run(retarget)
    capsys.readouterr()

    assert run("--check", "--json") == 1
    data = json.loads(capsys.readouterr().out)
    [changed] = [a for a in data["actions"] if a["verb"] != "keep"]
    assert changed["name"] == "receptionist-bright-smile-dental"
    assert changed["changes"] == [
        {
            "field": "room_config.agents[0].agent_name",
            "current": "someone-else",
            "desired": "receptionist-test",
        }
    ]
    assert run() == 0
    assert run("--check") == 0


def test_removed_business_loses_its_rule_and_numbers_but_foreign_rules_stay(
    env, livekit: LiveKitServer, tmp_path: Path, capsys
) -> None:
    assert run() == 0
    [trunk], _ = state(livekit)

    async def add_foreign_rule(lk: api.LiveKitAPI) -> None:
        await lk.sip.create_dispatch_rule(
            api.CreateSIPDispatchRuleRequest(
                dispatch_rule=api.SIPDispatchRuleInfo(
                    name="receptionist-hand-made",
                    trunk_ids=[trunk.sip_trunk_id],
                    numbers=["+15185550177"],
                    rule=api.SIPDispatchRule(
                        dispatch_rule_direct=api.SIPDispatchRuleDirect(
                            room_name="lobby", pin="1234"
                        )
                    ),
                )
            )
        )

    livekit.run(add_foreign_rule)
    kept = tmp_path / "bright-smile-dental.yaml"
    kept.write_text((BRAINS / kept.name).read_text())
    capsys.readouterr()

    assert run(brains=tmp_path) == 0
    [trunk_after], rules = state(livekit)
    assert list(trunk_after.numbers) == ["+12175550142", "+12175550143"]
    assert [r.name for r in rules] == [
        "receptionist-bright-smile-dental",
        "receptionist-fallback",
        "receptionist-hand-made",  # no managed_by marker: never ours to delete
    ]
    assert (
        "delete livekit dispatch rule 'receptionist-northside-plumbing'" in capsys.readouterr().out
    )


def test_unreachable_livekit_names_the_url(env, capsys) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env.setenv("LIVEKIT_URL", url)
    assert run("--check") == 2
    assert f"error: LiveKit at {url} is unreachable" in capsys.readouterr().err


def test_wrong_secret_is_a_clear_error(env, livekit: LiveKitServer, capsys) -> None:
    env.setenv("LIVEKIT_API_SECRET", "x" * 40)
    assert run() == 2
    err = capsys.readouterr().err
    assert f"LiveKit at {livekit.url} rejected LIVEKIT_API_KEY/LIVEKIT_API_SECRET (401" in err


def test_cli_check_exit_codes(livekit: LiveKitServer, tmp_path: Path) -> None:
    """The module as an operator runs it: exit 1 on drift, 0 once applied."""
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "TWILIO_", "SIP_"))
    }
    environ |= livekit.env() | {"SIP_ALLOWED_CIDRS": "127.0.0.1/32", "PYTHONPATH": str(REPO)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "sip.provision",
                "--only",
                "livekit",
                "--brains",
                str(BRAINS),
                *args,
            ],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )

    drift = cli("--check")
    assert drift.returncode == 1, drift.stderr
    assert drift.stdout.splitlines()[-1] == "4 drifted"
    assert cli().returncode == 0
    settled = cli("--check", "--json")
    assert settled.returncode == 0, settled.stderr
    assert json.loads(settled.stdout)["drift"] is False


def test_receptionist_provision_takes_the_flags_of_sip_provision(
    livekit: LiveKitServer, tmp_path: Path
) -> None:
    """`receptionist provision` is the same command as `python -m sip.provision`, flags and all."""
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("LIVEKIT_", "TWILIO_", "SIP_"))
    }
    environ |= livekit.env() | {"SIP_ALLOWED_CIDRS": "127.0.0.1/32", "PYTHONPATH": str(REPO)}
    receptionist = str(Path(sys.executable).parent / "receptionist")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [receptionist, "provision", *args],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )

    helped = cli("--help")
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: receptionist provision")
    for flag in ("--dry-run", "--check", "--only {livekit,twilio}", "--brains", "--json"):
        assert flag in helped.stdout

    brains = ("--brains", str(BRAINS), "--only", "livekit")
    planned = cli("--dry-run", *brains)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.splitlines()[-1] == "4 change(s) planned, nothing applied"
    assert cli("--check", *brains).returncode == 1
    assert cli(*brains).returncode == 0
    assert cli("--check", *brains).returncode == 0
    refused = cli("--dry-run", "--check")
    assert refused.returncode == 2
    assert "not allowed with argument" in refused.stderr


def outbound_trunks(livekit: LiveKitServer) -> list[api.SIPOutboundTrunkInfo]:
    async def read(lk: api.LiveKitAPI) -> list[api.SIPOutboundTrunkInfo]:
        return list((await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())).items)

    return livekit.run(read)


def test_outbound_address_makes_the_warm_transfer_trunk_once(env, livekit: LiveKitServer, capsys) -> None:
    env.setenv("SIP_OUTBOUND_ADDRESS", "pbx.example.test:5060")
    env.setenv("SIP_TRANSPORT", "udp")
    env.setenv("TWILIO_TERMINATION_USERNAME", "receptionist")
    env.setenv("TWILIO_TERMINATION_PASSWORD", "s3cret-termination")
    assert run() == 0
    assert "create livekit outbound trunk 'receptionist-outbound'" in capsys.readouterr().out
    [trunk] = outbound_trunks(livekit)
    assert trunk.address == "pbx.example.test:5060"
    assert trunk.transport == api.SIPTransport.SIP_TRANSPORT_UDP
    # calls to the person leave from the business's own numbers
    assert list(trunk.numbers) == ["+12175550142", "+12175550143", "+15185550177"]
    assert trunk.auth_username == "receptionist"

    assert run() == 0
    assert capsys.readouterr().out.endswith("nothing to change\n")
    env.setenv("SIP_OUTBOUND_ADDRESS", "pbx2.example.test")
    assert run("--check") == 1
    assert "address: 'pbx.example.test:5060' -> 'pbx2.example.test'" in capsys.readouterr().out
    assert run() == 0
    [moved] = outbound_trunks(livekit)
    assert moved.sip_trunk_id == trunk.sip_trunk_id and moved.address == "pbx2.example.test"


def test_no_outbound_address_makes_no_outbound_trunk(env, livekit: LiveKitServer) -> None:
    assert run() == 0
    assert outbound_trunks(livekit) == []


def test_the_workers_brain_path_is_what_provisioning_routes_when_no_brains_are_named(
    env, livekit: LiveKitServer, tmp_path: Path, capsys
) -> None:
    """Run with the worker's environment from anywhere: BRAIN_PATH, not a `brains` folder in the
    current directory, says which businesses keep their rules (a stray folder would have had the
    others' rules deleted, and their calls reach no worker)."""
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "northside-plumbing.yaml").write_text((BRAINS / "northside-plumbing.yaml").read_text())
    stray = tmp_path / "elsewhere" / "brains"
    stray.mkdir(parents=True)
    (stray / "bright-smile-dental.yaml").write_text((BRAINS / "bright-smile-dental.yaml").read_text())
    env.setenv("BRAIN_PATH", str(ours))
    env.chdir(stray.parent)
    assert provision.main(["--only", "livekit"]) == 0
    _, rules = state(livekit)
    assert [r.name for r in rules] == ["receptionist-fallback", "receptionist-northside-plumbing"]
