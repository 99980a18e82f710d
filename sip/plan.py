"""What provisioning wants and what it would change: settings, businesses read from brain files,
and the plan of create/update/keep/delete actions that both the LiveKit and Twilio sides produce."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import phonenumbers
import yaml
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Twilio Elastic SIP Trunking signalling sources, one /30 per edge (Twilio's "IP addresses" page).
# Twilio fails a trunk over across edges, so all of them must be allowed, not only the nearest.
TWILIO_SIGNALLING_CIDRS: tuple[str, ...] = (
    "54.172.60.0/30",  # North America, Virginia
    "54.244.51.0/30",  # North America, Oregon
    "54.171.127.192/30",  # Europe, Ireland
    "35.156.191.128/30",  # Europe, Frankfurt
    "54.65.63.192/30",  # Asia-Pacific, Tokyo
    "54.169.127.128/30",  # Asia-Pacific, Singapore
    "54.252.254.64/30",  # Asia-Pacific, Sydney
    "177.71.206.192/30",  # South America, Sao Paulo
)

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SECRET_SHOWN_AS = "<secret>"


Side = Literal["livekit", "twilio"]
SIDES: tuple[Side, ...] = ("livekit", "twilio")

# what each side cannot be provisioned without, and how to do without that side
REQUIRED_SETTINGS: dict[Side, tuple[tuple[str, ...], str]] = {
    "livekit": (
        ("livekit_api_key", "livekit_api_secret"),
        "needed for the LiveKit side; or pass --only twilio",
    ),
    "twilio": (
        ("sip_host", "twilio_account_sid", "twilio_auth_token"),
        "needed for the Twilio side; or pass --only livekit",
    ),
}


class ProvisionError(Exception):
    """A problem the operator must fix; the message names the input, setting or service at fault."""


def check_voice_fallback_url(value: str | None) -> str | None:
    """TWILIO_VOICE_FALLBACK_URL (or None): the TwiML's own requests go to the paths beside it, so it
    must be notify inbound's /twilio/voice as Twilio reaches it."""
    if value and not re.fullmatch(r"https?://[^/\s]+(/\S*)?/twilio/voice", value):
        raise ValueError("give the http(s) URL at which Twilio reaches `receptionist notify inbound`,"
                         " ending in /twilio/voice")  # fmt: skip
    return value or None


class ProvisionSettings(BaseSettings):
    """Environment for `python -m sip.provision`; names match the worker's env vars where shared."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    livekit_url: str = "ws://127.0.0.1:7880"  # the worker's default too (agent/settings.py)
    livekit_api_key: str | None = None
    livekit_api_secret: SecretStr | None = None
    agent_name: str = "receptionist"  # the worker registers under this name (explicit dispatch)
    # the worker's BRAIN_PATH: the businesses whose numbers are routed, and whose rules are kept
    brain_path: Path = Field(Path("brains"), validation_alias=AliasChoices("brain_path", "brains"))

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None

    # Public address of livekit-sip as Twilio should reach it: host or host:port.
    sip_host: str | None = None
    sip_transport: Literal["tcp", "udp", "tls"] = "tcp"
    # Digest auth livekit-sip demands from the peer (407). Twilio origination sends no
    # credentials, so leave unset for Twilio and rely on SIP_ALLOWED_CIDRS.
    sip_auth_username: str | None = None
    sip_auth_password: SecretStr | None = None
    # Comma-separated; "none" disables the source-address filter (then digest auth carries security).
    sip_allowed_cidrs: Annotated[list[str], NoDecode] = list(TWILIO_SIGNALLING_CIDRS)
    sip_ringing_timeout_seconds: int = 30
    # Hard stop on the SIP leg beyond the brain's own wrap-up (calls.max_duration_minutes).
    sip_max_call_grace_minutes: int = 5

    livekit_trunk_name: str = "receptionist-inbound"
    # Where warm transfers ring the person (brain `transfer: warm`): host or host:port of the SIP
    # server that reaches the departments' numbers (Twilio: TWILIO_TRUNK_DOMAIN; locally: a SIP phone).
    # Set: a LiveKit outbound trunk of this name dials through it, with the termination credentials.
    sip_outbound_address: str | None = None
    sip_outbound_trunk_name: str = "receptionist-outbound"  # the worker's SIP_OUTBOUND_TRUNK_NAME too
    twilio_trunk_name: str = "receptionist"
    twilio_trunk_domain: str | None = None  # <name>.pstn.twilio.com, needed only for termination
    twilio_termination_username: str | None = None
    twilio_termination_password: SecretStr | None = None
    # the public URL of `receptionist notify inbound`'s /twilio/voice: the trunk's disaster-recovery URL,
    # where Twilio sends the calls livekit-sip does not take (agent/notify/voice_fallback.py)
    twilio_voice_fallback_url: str | None = None

    @field_validator("twilio_voice_fallback_url")
    @classmethod
    def _check_fallback_url(cls, value: str | None) -> str | None:
        return check_voice_fallback_url(value)

    @field_validator("sip_allowed_cidrs", mode="before")
    @classmethod
    def _split_cidrs(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().lower() in ("", "none"):
                return []
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("sip_allowed_cidrs")
    @classmethod
    def _check_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not an IP address or CIDR range") from exc
        return value

    @field_validator("sip_host", "sip_outbound_address")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("sip:") or ";" in value or "@" in value):
            raise ValueError("give a host or host:port, not a SIP URI (sip:... is built from it)")
        return value or None

    def require(self, *names: str, why: str) -> None:
        """Fail naming every missing env var at once, with what needed it."""
        missing = self._missing(names)
        if missing:
            raise ProvisionError(f"missing setting {', '.join(missing)} ({why})")

    def require_sides(self, sides: Sequence[Side]) -> None:
        """Fail naming every setting missing for any of `sides`, so one run tells the whole story."""
        problems = []
        for side in sides:
            names, why = REQUIRED_SETTINGS[side]
            missing = self._missing(names)
            if missing:
                problems.append(f"{', '.join(missing)} ({why})")
        if problems:
            raise ProvisionError("missing setting " + "; ".join(problems))

    def _missing(self, names: Sequence[str]) -> list[str]:
        return [n.upper() for n in names if not _present(getattr(self, n))]

    @property
    def origination_uri(self) -> str:
        return f"sip:{self.sip_host};transport={self.sip_transport}"


def _present(value: Any) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)


def load_settings() -> ProvisionSettings:
    try:
        return ProvisionSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ProvisionError(f"bad setting {problems}") from None


@dataclass(frozen=True)
class Business:
    """The slice of a brain file that routing needs."""

    id: str  # brain file stem, e.g. "bright-smile-dental"
    name: str
    numbers: tuple[str, ...]
    max_call_minutes: float = 15
    source: str = ""


def check_e164(number: Any, where: str) -> str:
    if not isinstance(number, str) or not _E164.match(number):
        raise ProvisionError(f"{where}: {number!r} is not an E.164 number (like +15555550100)")
    try:
        possible = phonenumbers.is_possible_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        possible = False
    if not possible:
        raise ProvisionError(f"{where}: {number!r} is not a possible phone number")
    return number


def load_businesses(path: str | Path) -> list[Business]:
    """Read `business.name` and `business.numbers` from one brain file or a directory of them.

    Deliberately minimal: the full brain schema lives in agent.brain; routing needs only these.
    """
    root = Path(path)
    if root.is_dir():
        files = sorted([*root.glob("*.yaml"), *root.glob("*.yml")])
    elif root.is_file():
        files = [root]
    else:
        raise ProvisionError(f"no brains found: {root} does not exist")
    if not files:
        raise ProvisionError(f"no brains found: {root} holds no *.yaml brain files")

    businesses: list[Business] = []
    owner_of: dict[str, str] = {}
    for file in files:
        try:
            doc = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ProvisionError(f"{file}: not valid YAML ({exc})") from None
        business = doc.get("business") if isinstance(doc, dict) else None
        if not isinstance(business, dict):
            raise ProvisionError(
                f"{file}: business: missing (expected business.name and business.numbers)"
            )
        name = business.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ProvisionError(f"{file}: business.name: missing")
        raw_numbers = business.get("numbers")
        if not isinstance(raw_numbers, list) or not raw_numbers:
            raise ProvisionError(f"{file}: business.numbers: needs at least one dialed number")
        numbers: list[str] = []
        for i, raw in enumerate(raw_numbers):
            number = check_e164(raw, f"{file}: business.numbers[{i}]")
            if number in owner_of:
                raise ProvisionError(
                    f"{file}: business.numbers[{i}]: {number} already reaches {owner_of[number]}"
                )
            owner_of[number] = file.name
            numbers.append(number)
        calls = doc.get("calls") if isinstance(doc.get("calls"), dict) else {}
        max_minutes = calls.get("max_duration_minutes", 15)
        if not isinstance(max_minutes, int | float) or max_minutes <= 0:
            raise ProvisionError(f"{file}: calls.max_duration_minutes: must be a positive number of minutes")
        businesses.append(
            Business(
                id=file.stem,
                name=name.strip(),
                numbers=tuple(numbers),
                max_call_minutes=max_minutes,
                source=str(file),
            )
        )
    return businesses


# ---------------------------------------------------------------- the plan

Verb = Literal["create", "update", "delete", "keep"]


@dataclass
class FieldChange:
    field: str
    current: Any
    desired: Any
    secret: bool = False

    def describe(self) -> str:
        if self.secret:
            return f"{self.field} (secret changed)"
        return f"{self.field}: {_short(self.current)} -> {_short(self.desired)}"

    def to_json(self) -> dict[str, Any]:
        if self.secret:
            return {"field": self.field, "current": SECRET_SHOWN_AS, "desired": SECRET_SHOWN_AS}
        return {"field": self.field, "current": self.current, "desired": self.desired}


@dataclass
class Action:
    system: Literal["livekit", "twilio"]
    kind: str  # "inbound trunk", "dispatch rule", "trunk", "origination url", "phone number", ...
    name: str
    verb: Verb
    id: str | None = None
    changes: list[FieldChange] = field(default_factory=list)
    note: str = ""

    def line(self) -> str:
        text = f"{self.verb:<6} {self.system} {self.kind} {self.name!r}"
        if self.id:
            text += f" [{self.id}]"
        if self.changes:
            text += ": " + "; ".join(c.describe() for c in self.changes)
        if self.note:
            text += f" ({self.note})"
        return text

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["changes"] = [c.to_json() for c in self.changes]
        return data


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)

    def add(self, action: Action) -> Action:
        self.actions.append(action)
        return action

    @property
    def drifted(self) -> list[Action]:
        return [a for a in self.actions if a.verb != "keep"]

    def lines(self) -> list[str]:
        return [a.line() for a in self.actions]

    def to_json(self, mode: str, applied: bool) -> str:
        return json.dumps(
            {
                "mode": mode,
                "applied": applied,
                "drift": bool(self.drifted),
                "actions": [a.to_json() for a in self.actions],
            },
            indent=2,
            default=str,
        )


def diff(
    current: dict[str, Any], desired: dict[str, Any], secrets: frozenset[str] = frozenset()
) -> list[FieldChange]:
    """Field-by-field drift between two flat views of the same object (desired keys only)."""
    return [
        FieldChange(key, current.get(key), want, secret=key in secrets)
        for key, want in desired.items()
        if current.get(key) != want
    ]


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 160 else text[:157] + "..."
