"""The Twilio half of `python -m sip.provision`, driven through the real twilio client against the
local Twilio fake (tests/fixtures/twilio_fake.py)."""

from __future__ import annotations

import json

import pytest

from sip import provision
from tests.fixtures.twilio_fake import TwilioFake

from .conftest import BRAINS

NUMBERS = ["+12175550142", "+12175550143", "+15185550177"]
SIP_HOST = "sip.receptionist.example"


@pytest.fixture
def account(twilio_fake: TwilioFake, clean_env: pytest.MonkeyPatch) -> TwilioFake:
    """A Twilio account that owns the test businesses' numbers, with the env pointing at it."""
    for number in NUMBERS:
        twilio_fake.add_number(number)
    clean_env.setenv("TWILIO_ACCOUNT_SID", twilio_fake.account_sid)
    clean_env.setenv("TWILIO_AUTH_TOKEN", twilio_fake.auth_token)
    clean_env.setenv("SIP_HOST", SIP_HOST)
    return twilio_fake


def run(fake: TwilioFake, *args: str, brains: object = BRAINS) -> int:
    return provision.main(
        ["--only", "twilio", "--brains", str(brains), *args], twilio_http_client=fake.http_client()
    )


def test_first_run_creates_trunk_origination_and_numbers(account: TwilioFake, capsys) -> None:
    assert run(account) == 0

    [trunk] = account.state.trunks.values()
    assert trunk["friendly_name"] == "receptionist"
    assert trunk["transfer_mode"] == "enable-all"
    [origination] = account.state.origination_urls.values()
    assert origination["trunk_sid"] == trunk["sid"]
    assert origination["sip_url"] == f"sip:{SIP_HOST};transport=tcp"
    assert (origination["priority"], origination["weight"], origination["enabled"]) == (
        10,
        10,
        True,
    )
    assert account.trunk_numbers(trunk["sid"]) == NUMBERS

    writes = [(r.method, r.path, r.form) for r in account.requests() if r.method != "GET"]
    assert writes[0] == (
        "POST",
        "/v1/Trunks",
        {
            "FriendlyName": "receptionist",
            "TransferMode": "enable-all",
            "TransferCallerId": "from-transferee",
        },
    )
    assert writes[1][:2] == ("POST", f"/v1/Trunks/{trunk['sid']}/OriginationUrls")
    assert writes[1][2]["SipUrl"] == f"sip:{SIP_HOST};transport=tcp"
    assert [w[:2] for w in writes[2:]] == [("POST", f"/v1/Trunks/{trunk['sid']}/PhoneNumbers")] * 3
    assert all(w[2]["PhoneNumberSid"].startswith("PN") for w in writes[2:])
    out = capsys.readouterr().out
    assert "create twilio trunk 'receptionist'" in out
    assert "5 change(s) applied" in out


def test_second_run_only_reads(account: TwilioFake, capsys) -> None:
    assert run(account) == 0
    account.clear_requests()
    capsys.readouterr()

    assert run(account) == 0
    assert {r.method for r in account.requests()} == {"GET"}
    out = capsys.readouterr().out
    assert "nothing to change" in out
    assert all(line.startswith("keep") for line in out.splitlines()[:-1])


def test_dry_run_and_check_change_nothing(account: TwilioFake, capsys) -> None:
    assert run(account, "--dry-run") == 0
    assert run(account, "--check") == 1
    assert {r.method for r in account.requests()} == {"GET"}
    assert account.state.trunks == {}
    out = capsys.readouterr().out
    assert (
        "create twilio origination url 'livekit-sip' (sip:sip.receptionist.example;transport=tcp)"
        in out
    )
    assert "5 change(s) planned, nothing applied" in out
    assert "5 drifted" in out


def test_origination_drift_is_reported_then_fixed(account: TwilioFake, capsys) -> None:
    assert run(account) == 0
    trunk_sid = next(iter(account.state.trunks))
    # someone edits the trunk in the console
    client = account.client()
    [url] = client.trunking.v1.trunks(trunk_sid).origination_urls.list()
    client.trunking.v1.trunks(trunk_sid).origination_urls(url.sid).update(
        sip_url="sip:old-host.example;transport=udp"
    )
    capsys.readouterr()

    assert run(account, "--check") == 1
    out = capsys.readouterr().out
    assert (
        "update twilio origination url 'livekit-sip' "
        f"[{url.sid}]: sip_url: 'sip:old-host.example;transport=udp' -> 'sip:{SIP_HOST};transport=tcp'"
    ) in out
    assert "1 drifted" in out

    account.clear_requests()
    assert run(account) == 0
    writes = [(r.method, r.path, r.form) for r in account.requests() if r.method != "GET"]
    assert writes == [
        (
            "POST",
            f"/v1/Trunks/{trunk_sid}/OriginationUrls/{url.sid}",
            {
                "SipUrl": f"sip:{SIP_HOST};transport=tcp",
                "Priority": "10",
                "Weight": "10",
                "Enabled": "true",
            },
        )
    ]
    assert run(account, "--check") == 0


def test_check_json_names_the_drifted_field(account: TwilioFake, capsys) -> None:
    assert run(account) == 0
    trunk_sid = next(iter(account.state.trunks))
    account.client().trunking.v1.trunks(trunk_sid).update(transfer_mode="disable-all")
    capsys.readouterr()

    assert run(account, "--check", "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["drift"] is True and data["applied"] is False
    [trunk] = [a for a in data["actions"] if a["kind"] == "trunk"]
    assert trunk["verb"] == "update"
    assert trunk["changes"] == [
        {"field": "transfer_mode", "current": "disable-all", "desired": "enable-all"}
    ]


def test_wrong_token_is_a_clear_error(
    account: TwilioFake, clean_env: pytest.MonkeyPatch, capsys
) -> None:
    clean_env.setenv("TWILIO_AUTH_TOKEN", "not-the-token")
    assert run(account) == 2
    err = capsys.readouterr().err
    assert "Twilio rejected TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN" in err
    assert "401 Authenticate (code 20003)" in err
    assert account.state.trunks == {}


def test_number_outside_the_account_is_named(account: TwilioFake, tmp_path, capsys) -> None:
    brain = tmp_path / "cafe.yaml"
    brain.write_text('business: {name: Corner Cafe, numbers: ["+16175550199"]}\n')
    assert run(account, brains=brain) == 2
    err = capsys.readouterr().err
    assert (
        f"+16175550199 ({brain}) is not a phone number of Twilio account {account.account_sid}"
        in err
    )


def test_number_of_a_removed_business_leaves_the_trunk(
    account: TwilioFake, tmp_path, capsys
) -> None:
    assert run(account) == 0
    trunk_sid = next(iter(account.state.trunks))
    (tmp_path / "dental.yaml").write_text((BRAINS / "bright-smile-dental.yaml").read_text())
    capsys.readouterr()

    assert run(account, brains=tmp_path) == 0
    assert account.trunk_numbers(trunk_sid) == ["+12175550142", "+12175550143"]
    assert "delete twilio phone number '+15185550177'" in capsys.readouterr().out


def test_numbers_on_later_pages_and_other_trunks(account: TwilioFake) -> None:
    # more trunks than one page holds, ours last, and a number parked on another trunk
    client = account.client()
    for i in range(account.page_size_default + 5):
        client.trunking.v1.trunks.create(friendly_name=f"other-{i}")
    other = client.trunking.v1.trunks.create(friendly_name="legacy")
    mine = client.trunking.v1.trunks.create(friendly_name="receptionist")
    pn = next(s for s, n in account.state.numbers.items() if n["phone_number"] == "+15185550177")
    client.trunking.v1.trunks(other.sid).phone_numbers.create(phone_number_sid=pn)

    assert run(account) == 0
    assert (
        len([t for t in account.state.trunks.values() if t["friendly_name"] == "receptionist"]) == 1
    )
    assert account.trunk_numbers(mine.sid) == NUMBERS
    assert account.trunk_numbers(other.sid) == []


def test_termination_credentials_are_created_once(
    account: TwilioFake, clean_env: pytest.MonkeyPatch, capsys
) -> None:
    clean_env.setenv("TWILIO_TERMINATION_USERNAME", "livekit")
    clean_env.setenv("TWILIO_TERMINATION_PASSWORD", "Correct-Horse-42-Battery")
    assert run(account) == 0
    [cl] = account.state.credential_lists.values()
    assert cl["friendly_name"] == "receptionist-termination"
    [cred] = account.state.credentials.values()
    assert (cred["username"], cred["password"]) == ("livekit", "Correct-Horse-42-Battery")
    assert account.state.trunk_credential_lists == [(next(iter(account.state.trunks)), cl["sid"])]
    capsys.readouterr()

    account.clear_requests()
    assert run(account, "--check") == 0
    assert {r.method for r in account.requests()} == {"GET"}
    assert "keep   twilio credential 'livekit' (password not comparable)" in capsys.readouterr().out


def test_missing_twilio_settings_are_named(
    clean_env: pytest.MonkeyPatch, twilio_fake: TwilioFake, capsys
) -> None:
    clean_env.setenv("SIP_HOST", SIP_HOST)
    assert run(twilio_fake) == 2
    assert "missing setting TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN" in capsys.readouterr().err


def test_the_fallback_url_becomes_the_trunks_disaster_recovery_url(
    account: TwilioFake, clean_env: pytest.MonkeyPatch, capsys
) -> None:
    # a trunk made before the setting: the next run adds the URL, and then keeps it
    assert run(account) == 0
    [trunk] = account.state.trunks.values()
    assert trunk["disaster_recovery_url"] is None
    clean_env.setenv("TWILIO_VOICE_FALLBACK_URL", "https://hooks.example.com/twilio/voice")
    capsys.readouterr()

    assert run(account, "--check") == 1
    assert ("disaster_recovery_url: null -> 'https://hooks.example.com/twilio/voice'"
            in capsys.readouterr().out)  # fmt: skip
    assert run(account) == 0
    assert (trunk["disaster_recovery_url"], trunk["disaster_recovery_method"]) == (
        "https://hooks.example.com/twilio/voice", "POST")  # fmt: skip
    assert run(account, "--check") == 0


def test_a_fallback_url_that_is_not_notify_inbounds_is_refused(
    account: TwilioFake, clean_env: pytest.MonkeyPatch, capsys
) -> None:
    clean_env.setenv("TWILIO_VOICE_FALLBACK_URL", "https://hooks.example.com/voice")
    assert run(account) == 2
    assert "ending in /twilio/voice" in capsys.readouterr().err
    assert account.state.trunks == {}
