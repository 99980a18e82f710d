"""Brain files that must load, and malformed ones that must be refused with the field and the reason."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.brain import Brain, BrainError, load_brain, load_brains, parse_brain

BRAINS = Path(__file__).resolve().parents[2] / "brains"
BASE: dict[str, Any] = yaml.safe_load((BRAINS / "plumbing.yaml").read_text())


def variant(change: Callable[[dict[str, Any]], None]) -> str:
    data = copy.deepcopy(BASE)
    change(data)
    return yaml.safe_dump(data, sort_keys=False)


def refused(text: str) -> BrainError:
    with pytest.raises(BrainError) as caught:
        parse_brain(text, "bad.yaml")
    return caught.value


def single_team(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """`change` applied to the plumbing brain written the single-team way: one transfer_to and its rota."""

    def written_as_one_team(data: dict[str, Any]) -> None:
        esc = data["escalation"]
        on_call = esc.pop("departments")[0]
        esc.update(transfer_to=on_call["transfer_to"], humans_available=on_call["hours"])
        change(data)

    return written_as_one_team


def setter(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return change


def deleter(path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[last]

    return change


def rename_key(path: str, new: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for p in parents:
            node = node[p]
        node[new] = node.pop(last)

    return change


def add_service(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["services"].append(
            {"name": "Sewer camera", "duration_minutes": 60, "description": "x", **fields}
        )

    return change


# (case id, brain text, field path, reason substring)
BAD: list[tuple[str, str, str, str]] = [
    ("yaml syntax", "business: {name: [unclosed\nhours: x\n", "", "invalid YAML at line"),
    ("not a mapping", "- just\n- a list\n", "", "expected a mapping of sections"),
    (
        "duplicate yaml key",
        (BRAINS / "plumbing.yaml").read_text() + "currency: EUR\n",
        "currency",
        "key appears twice",
    ),
    (
        "unknown top key",
        variant(rename_key("services", "servces")),
        "servces",
        "unknown key 'servces' (did you mean 'services'?)",
    ),
    (
        "unknown nested key",
        variant(rename_key("hours.wednesday", "wednsday")),
        "hours.wednsday",
        "did you mean 'wednesday'",
    ),
    (
        "missing weekday",
        variant(deleter("hours.sunday")),
        "hours.sunday",
        "required field is missing",
    ),
    (
        "wrong type",
        variant(setter("services.0.duration_minutes", "sixty")),
        "services[0].duration_minutes",
        "expected a whole number, got 'sixty'",
    ),
    (
        "bool as text",
        variant(setter("services.1.bookable", "yes")),
        "services[1].bookable",
        "expected true or false",
    ),
    (
        "overlapping hours",
        variant(
            setter(
                "hours.monday",
                [{"open": "07:00", "close": "12:00"}, {"open": "11:30", "close": "18:00"}],
            )
        ),
        "hours.monday[1]",
        "overlaps 07:00-12:00",
    ),
    (
        "open after close",
        variant(setter("hours.tuesday.0", {"open": "18:00", "close": "07:00"})),
        "hours.tuesday[0].close",
        "close 07:00 must be after open 18:00",
    ),
    (
        "open equals close",
        variant(setter("hours.saturday.0", {"open": "08:00", "close": "08:00"})),
        "hours.saturday[0].close",
        "must be after open",
    ),
    (
        "bad clock",
        variant(setter("hours.friday.0.open", "7am")),
        "hours.friday[0].open",
        'expected a time as "HH:MM"',
    ),
    (
        "hour 25",
        variant(setter("hours.friday.0.close", "25:00")),
        "hours.friday[0].close",
        'expected a time as "HH:MM"',
    ),
    (
        "24:00 opening",
        variant(setter("hours.friday.0.open", "24:00")),
        "hours.friday[0].open",
        "24:00 can only close a range",
    ),
    (
        "service without duration",
        variant(deleter("services.1.duration_minutes")),
        "services[1].duration_minutes",
        "required field is missing",
    ),
    (
        "duration too long",
        variant(setter("services.2.duration_minutes", 600)),
        "services[2].duration_minutes",
        "must be <= 480, got 600",
    ),
    (
        "duration too short",
        variant(setter("services.0.duration_minutes", 2)),
        "services[0].duration_minutes",
        "must be >= 5",
    ),
    (
        "price both forms",
        variant(setter("services.0.price", {"amount": 100, "min": 90, "max": 120})),
        "services[0].price",
        "either amount or min/max, not both",
    ),
    (
        "price min above max",
        variant(setter("services.0.price", {"min": 200, "max": 150})),
        "services[0].price.min",
        "min 200 is greater than max 150",
    ),
    (
        "price half a range",
        variant(setter("services.0.price", {"min": 200})),
        "services[0].price.max",
        "needs both min and max",
    ),
    (
        "negative price",
        variant(setter("services.4.price", {"amount": -5})),
        "services[4].price.amount",
        "must not be negative",
    ),
    (
        "price as text",
        variant(setter("services.4.price", {"amount": "89"})),
        "services[4].price.amount",
        "expected a number",
    ),
    (
        "unknown timezone",
        variant(setter("business.timezone", "America/Portland")),
        "business.timezone",
        "unknown IANA timezone 'America/Portland'",
    ),
    (
        "phone not e164",
        variant(setter("business.phone", "503-555-0100")),
        "business.phone",
        "not an E.164 phone number",
    ),
    (
        "phone spaced",
        variant(setter("business.phone", "+1 503 555 0100")),
        "business.phone",
        "E.164 form, e.g. '+15035550100'",
    ),
    (
        "phone too short",
        variant(setter("business.numbers", ["+1503555010"])),
        "business.numbers[0]",
        "not a valid phone number",
    ),
    (
        "duplicate dialed number",
        variant(setter("business.numbers", ["+15035550100", "+15035550101", "+15035550100"])),
        "business.numbers[2]",
        "duplicate of numbers[0]",
    ),
    (
        "duplicate service",
        variant(add_service(name="Drain Cleanings")),
        "services[5].name",
        "already the name of services[0]",
    ),
    (
        "alias clashes with a name",
        variant(add_service(aliases=["leak repair"])),
        "services[5].aliases[0]",
        "already the name of services[3]",
    ),
    ("empty services", variant(setter("services", [])), "services", "must not be empty"),
    (
        "closure ends before it starts",
        variant(
            setter(
                "closures.0",
                {"date": "2026-11-26", "end_date": "2026-11-20", "reason": "Thanksgiving"},
            )
        ),
        "closures[0].end_date",
        "end_date 2026-11-20 is before date 2026-11-26",
    ),
    (
        "overlapping closures",
        variant(setter("closures.1", {"date": "2026-11-26", "reason": "Again"})),
        "closures[1]",
        "overlaps closures[0] (Thanksgiving)",
    ),
    (
        "closure date text",
        variant(setter("closures.0.date", "next thursday")),
        "closures[0].date",
        "expected a date like 2026-12-25",
    ),
    (
        "greeting without AI",
        variant(setter("greeting", "Thanks for calling {business}, how can I help?")),
        "greeting",
        "tell the caller they are talking to an AI",
    ),
    (
        "AI only inside a word",
        variant(setter("greeting", "Thanks for calling {business}, email us at AIDS@x")),
        "greeting",
        "talking to an AI",
    ),
    (
        "AI too late",
        variant(setter("greeting", "Thanks for calling {business}. I'm an AI assistant.")),
        "greeting",
        "the first sentence must",
    ),
    (
        "unknown placeholder",
        variant(setter("greeting", "Hi {name}, I'm the AI for {business}.")),
        "greeting",
        "unknown placeholder {name}",
    ),
    (
        "transfer not tel",
        variant(single_team(setter("escalation.transfer_to", "+15035550188"))),
        "escalation.transfer_to",
        "must be 'tel:+<E.164>' or 'sip:user@host'",
    ),
    (
        "transfer tel bad number",
        variant(single_team(setter("escalation.transfer_to", "tel:5550188"))),
        "escalation.transfer_to",
        "E.164",
    ),
    (
        "warm transfer nowhere",
        variant(
            lambda d: (
                d["escalation"].pop("departments"),
                d["escalation"].update(warm_transfer=True),
            )
        ),
        "escalation.warm_transfer",
        "needs transfer_to or departments",
    ),
    (
        "transfer neither warm nor cold",
        variant(setter("escalation.departments.1.transfer", "hot")),
        "escalation.departments[1].transfer",
        "must be warm or cold",
    ),
    (
        "unknown trigger",
        variant(setter("escalation.triggers", ["emergency", "rudeness"])),
        "escalation.triggers[1]",
        "expected one of",
    ),
    (
        "rota overlap",
        variant(
            single_team(
                setter(
                    "escalation.humans_available.sunday",
                    [{"open": "00:00", "close": "12:00"}, {"open": "06:00", "close": "24:00"}],
                )
            )
        ),
        "escalation.humans_available.sunday[1]",
        "overlaps 00:00-12:00",
    ),
    ("department unknown reason", variant(setter("escalation.departments.1.reasons", ["billing", "refunds"])),
     "escalation.departments[1].reasons[1]", "expected one of"),
    ("department bad number", variant(setter("escalation.departments.1.transfer_to", "tel:5550192")),
     "escalation.departments[1].transfer_to", "E.164"),
    ("department number not tel", variant(setter("escalation.departments.1.transfer_to", "+15035550192")),
     "escalation.departments[1].transfer_to", "must be 'tel:+<E.164>' or 'sip:user@host'"),
    ("department without a number", variant(deleter("escalation.departments.1.transfer_to")),
     "escalation.departments[1].transfer_to", "required"),
    ("two default departments", variant(lambda d: [x.update(default=True) for x in d["escalation"]["departments"]]),
     "escalation.departments[1].default", "departments[0] (on-call plumber) is already the default"),
    ("department named twice", variant(setter("escalation.departments.1.name", "On-call plumber")),
     "escalation.departments[1].name", "duplicate of departments[0]"),
    ("departments and transfer_to", variant(setter("escalation.transfer_to", "tel:+15035550188")),
     "escalation.transfer_to", "give departments or transfer_to, not both"),
    ("departments and a rota", variant(setter("escalation.humans_available", BASE["escalation"]["departments"][0]["hours"])),
     "escalation.humans_available", "not both"),
    ("department hours overlap", variant(setter("escalation.departments.1.hours.monday",
     [{"open": "08:00", "close": "12:00"}, {"open": "11:00", "close": "17:00"}])),
     "escalation.departments[1].hours.monday[1]", "overlaps 08:00-12:00"),
    ("department unknown key", variant(setter("escalation.departments.1.open_hours", {})),
     "escalation.departments[1].open_hours", "unknown key 'open_hours'"),
    (
        "slot not dividing 60",
        variant(setter("booking.slot_minutes", 25)),
        "booking.slot_minutes",
        "must divide 60 evenly",
    ),
    (
        "negative notice",
        variant(setter("booking.min_notice_minutes", -5)),
        "booking.min_notice_minutes",
        "must be >= 0",
    ),
    (
        "no days ahead",
        variant(setter("booking.max_days_ahead", 0)),
        "booking.max_days_ahead",
        "must be >= 1",
    ),
    (
        "duplicate lead key",
        variant(
            lambda d: d["leads"]["questions"].append(
                {"key": "urgency", "question": "When?", "weight": 2}
            )
        ),
        "leads.questions[4].key",
        "duplicate key 'urgency' (also questions[1])",
    ),
    (
        "lead weight",
        variant(setter("leads.questions.0.weight", 11)),
        "leads.questions[0].weight",
        "must be <= 10",
    ),
    (
        "qualifying not an option",
        variant(setter("leads.questions.1.qualifying", ["today", "asap"])),
        "leads.questions[1].qualifying[1]",
        "'asap' is not one of options",
    ),
    ("hot score", variant(setter("leads.hot_score", 150)), "leads.hot_score", "must be <= 100"),
    (
        "silence hangup zero",
        variant(setter("calls.silence_hangup_seconds", 0)),
        "calls.silence_hangup_seconds",
        "must be >= 1",
    ),
    ("currency", variant(setter("currency", "dollars")), "currency", "3-letter currency code"),
    (
        "endpointing too short",
        variant(setter("calls.endpointing_seconds", 0.01)),
        "calls.endpointing_seconds",
        "must be >= 0.1",
    ),
    (
        "dictation shorter than endpointing",
        variant(lambda d: (setter("calls.endpointing_seconds", 0.8)(d),
                           setter("calls.dictation_endpointing_seconds", 0.5)(d))),
        "calls.dictation_endpointing_seconds",
        "not be shorter than endpointing_seconds",
    ),
    ("speculation not a flag", variant(setter("calls.speculative_reply", "sometimes")), "calls.speculative_reply", "expected true or false"),
    ("retention zero days", variant(setter("privacy.retain_days", 0)), "privacy.retain_days", "must be >= 1"),
    ("retention as text", variant(setter("privacy.retain_days", "a year")), "privacy.retain_days", "expected a whole number"),
    ("no call length", variant(setter("calls.max_duration_minutes", 0)), "calls.max_duration_minutes",
     "must be > 0.0, got 0"),
    ("negative call length", variant(setter("calls.max_duration_minutes", -0.5)), "calls.max_duration_minutes",
     "must be > 0.0, got -0.5"),
    ("retention misspelt", variant(rename_key("privacy.retain_days", "retain_day")), "privacy.retain_day", "did you mean 'retain_days'"),
    ("recording claimed while off", variant(lambda d: (
        setter("greeting", "Thanks for calling {business}, I'm the AI assistant. This call may be recorded.")(d),
        setter("recording", {"enabled": False})(d))),
     "greeting", "mentions recording, but recording is off"),
    ("recording said twice", variant(setter(
        "greeting", "Thanks for calling {business}, I'm the AI assistant. We record calls for training.")),
     "greeting", "the consent line (recording.consent_line) already says it"),
    ("consent line says nothing of recording", variant(setter("recording.consent_line", "Calls help us improve.")),
     "recording.consent_line", "must tell the caller the call is recorded"),
    ("recording not a flag", variant(setter("recording.enabled", "ask")), "recording.enabled", "expected true or false"),
    ("notify email", variant(setter("notify", {"email": ["owner@rosecity.example", "owner at home"]})),
     "notify.email[1]", "not an email address: 'owner at home'"),
    ("notify sms", variant(setter("notify", {"sms": ["503 555 0177"]})), "notify.sms[0]", "not an E.164 phone number"),
    ("notify webhook in clear", variant(setter("notify", {"webhook": "http://hooks.example/x"})),
     "notify.webhook", "must be an https:// URL"),
    ("notify unknown kind", variant(setter("notify", {"at_once": ["hot_lead", "every_call"]})),
     "notify.at_once[1]", "expected one of 'urgent_message'"),
    ("notify secret in the brain", variant(setter("notify", {"webhook": "https://h.example/x", "secret": "s3"})),
     "notify.secret", "unknown key 'secret'"),
    ("digest at no time", variant(setter("notify", {"digest_at": "7.30"})), "notify.digest_at",
     'expected a time as "HH:MM"'),
    ("quiet hours one time", variant(setter("notify", {"quiet_hours": "21:00"})), "notify.quiet_hours",
     'expected "HH:MM-HH:MM"'),
    ("quiet hours empty", variant(setter("notify", {"quiet_hours": "07:00-07:00"})), "notify.quiet_hours",
     "start and end are the same time"),
    ("digest in quiet hours", variant(setter("notify", {"digest_at": "06:30", "quiet_hours": "21:00-07:00"})),
     "notify.digest_at", "06:30 is inside quiet_hours 21:00-07:00"),
    ("caller texts not a flag", variant(setter("notify", {"caller_texts": "yes please"})), "notify.caller_texts",
     "expected true or false"),
    ("caldav in clear", variant(setter("calendar", {"caldav": {"url": "http://dav.example/owner/cal/",
     "username": "owner", "password_env": "CALDAV_PASSWORD"}})), "calendar.caldav.url", "must be an https:// URL"),
    ("caldav password in the brain", variant(setter("calendar", {"caldav": {"url": "https://dav.example/c/",
     "username": "owner", "password_env": "hunter2 secret"}})), "calendar.caldav.password_env",
     "must name an environment variable"),
    ("caldav without a user", variant(setter("calendar", {"caldav": {"url": "https://dav.example/c/",
     "password_env": "CALDAV_PASSWORD"}})), "calendar.caldav.username", "required"),
]


@pytest.mark.parametrize(("text", "where", "reason"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_malformed_brain_is_refused_with_field_and_reason(
    text: str, where: str, reason: str
) -> None:
    err = refused(text)
    matching = [r for w, r in err.problems if w == where]
    assert matching, f"no problem at {where!r}; got {err.problems}"
    assert any(reason in r for r in matching), f"{reason!r} not in {matching}"
    # one line per problem, each naming the file
    lines = str(err).splitlines()
    assert len(lines) == len(err.problems)
    assert all(line.startswith("bad.yaml: ") for line in lines)


def test_error_line_names_file_field_reason_and_yaml_line() -> None:
    text = (
        (BRAINS / "plumbing.yaml")
        .read_text()
        .replace(
            'monday:    [{open: "07:00", close: "18:00"}]',
            'monday:    [{open: "07:00", close: "12:00"}, {open: "11:00", close: "18:00"}]',
        )
    )
    err = refused(text)
    assert err.problems == [("hours.monday[1]", "overlaps 07:00-12:00")]
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith("monday:"))
    assert str(err) == f"bad.yaml: hours.monday[1]: overlaps 07:00-12:00 (line {line})"


def test_a_call_limit_may_be_a_fraction_of_a_minute() -> None:
    # a scenario reaches the limit in seconds; a whole shop's limit is minutes (15 left out)
    assert parse_brain(variant(setter("calls.max_duration_minutes", 0.25))).calls.max_duration_minutes == 0.25
    assert parse_brain(variant(deleter("calls.max_duration_minutes"))).calls.max_duration_minutes == 15


def test_the_silence_hang_up_may_be_shorter_than_the_prompt() -> None:
    # it counts from when the caller heard "are you still there?", not from their last word
    calls = parse_brain(variant(setter("calls.silence_hangup_seconds", 5))).calls
    assert (calls.silence_prompt_seconds, calls.silence_hangup_seconds) == (8, 5)


def test_retention_error_names_its_line_and_left_out_means_kept_forever() -> None:
    text = (BRAINS / "plumbing.yaml").read_text().replace("retain_days: 365", "retain_days: -30")
    err = refused(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip().startswith("retain_days:"))
    assert str(err) == f"bad.yaml: privacy.retain_days: must be >= 1, got -30 (line {line})"
    assert parse_brain(variant(deleter("privacy"))).privacy.retain_days is None
    assert load_brain(BRAINS / "plumbing.yaml").privacy.retain_days == 365


def test_recording_consent_line_follows_the_ai_disclosure_and_off_adds_nothing() -> None:
    brain = load_brain(BRAINS / "plumbing.yaml")
    assert brain.recording.enabled
    disclosure, consent, rest = (
        "Thanks for calling Rose City Plumbing, you've reached the AI assistant.",
        brain.recording.consent_line,
        "How can I help you today?",
    )
    assert brain.greeting_text() == f"{disclosure} {consent} {rest}"
    off = parse_brain(variant(setter("recording", {"enabled": False})))
    assert off.greeting_text() == f"{disclosure} {rest}"
    assert "record" not in off.greeting_text().lower()


def test_a_greeting_claiming_recording_while_off_names_its_line() -> None:
    text = (BRAINS / "plumbing.yaml").read_text()
    text = text.replace("AI assistant. How", "AI assistant. This call may be recorded. How")
    text = text.replace("  enabled: true", "  enabled: false")
    err = refused(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.startswith("greeting:"))
    assert str(err).startswith("bad.yaml: greeting: mentions recording, but recording is off")
    assert str(err).endswith(f"(line {line})")


def test_every_problem_is_reported_at_once() -> None:
    def many(d: dict[str, Any]) -> None:
        d["business"]["timezone"] = "Mars/Olympus"
        d["services"][0]["duration_minutes"] = 0
        d["booking"]["slot_minutes"] = 7

    err = refused(variant(many))
    assert {w for w, _ in err.problems} == {
        "business.timezone",
        "services[0].duration_minutes",
        "booking.slot_minutes",
    }


def test_unquoted_clock_times_are_read_as_times(tmp_path: Path) -> None:
    # plain YAML 1.1 would read 8:00 as 480 and yes as True
    text = (
        (BRAINS / "plumbing.yaml")
        .read_text()
        .replace('"07:00"', "7:00")
        .replace("rent, manage it]", "rent, manage it, no]")
    )
    brain = parse_brain(text)
    assert brain.hours.monday[0].open.hour == 7
    assert brain.leads.questions[2].options[-1] == "no"


def test_load_brain_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BrainError) as caught:
        load_brain(tmp_path / "nope.yaml")
    assert "cannot read the file" in str(caught.value)


@pytest.mark.parametrize("name", ["plumbing", "dental"])
def test_shipped_brains_load(name: str) -> None:
    brain = load_brain(BRAINS / f"{name}.yaml")
    assert isinstance(brain, Brain)
    assert brain.currency == "USD"
    assert brain.business.numbers
    assert "AI" in brain.greeting_text().split(".")[0]


def test_directory_routes_by_dialed_number() -> None:
    brains = load_brains(BRAINS)
    assert {b.business.name for b in brains.all} == {"Rose City Plumbing", "Lakeview Family Dental"}
    assert brains.for_number("+15035550100").business.name == "Rose City Plumbing"
    assert brains.for_number("+15035550101").business.name == "Rose City Plumbing"
    assert brains.for_number("tel:+13125550142").business.name == "Lakeview Family Dental"
    assert brains.for_number("(312) 555-0142").business.name == "Lakeview Family Dental"
    assert brains.for_number("+12125550199") is None
    assert brains.for_number(None) is None
    assert brains.default is None  # several businesses: nobody is the default
    assert load_brains(BRAINS / "dental.yaml").default.business.name == "Lakeview Family Dental"


def test_unknown_number_brain_is_honest() -> None:
    fallback = load_brains(BRAINS).unknown_number_brain()
    assert "AI" in fallback.greeting_text()
    assert not any(s.bookable for s in fallback.services)
    assert fallback.business.numbers == []


def test_number_claimed_by_two_brains_names_both_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text((BRAINS / "plumbing.yaml").read_text())
    other = copy.deepcopy(yaml.safe_load((BRAINS / "dental.yaml").read_text()))
    other["business"]["numbers"] = ["+13125550142", "+15035550101"]
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(other))
    with pytest.raises(BrainError) as caught:
        load_brains(tmp_path)
    err = caught.value
    assert err.path == tmp_path / "b.yaml"
    assert err.problems == [
        ("business.numbers[1]", f"+15035550101 is also dialed for {tmp_path / 'a.yaml'}")
    ]
    assert str(tmp_path / "a.yaml") in str(err) and str(tmp_path / "b.yaml") in str(err)


def test_empty_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BrainError, match="no brain files"):
        load_brains(tmp_path)


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("drain cleaning", "Drain cleaning"),
        ("a drain cleaning", "Drain cleaning"),
        ("Drain Cleanings", "Drain cleaning"),
        ("cleaning", "Drain cleaning"),
        ("I need a drain cleaning tomorrow please", "Drain cleaning"),
        ("clogged drain", "Drain cleaning"),
        ("inspection", "Plumbing inspection"),
        ("install a new water heater", "Water heater installation"),
        ("water heater repairs", "Water heater repair"),
        ("leak", "Leak repair"),
        ("water heater", None),  # repair or installation: ask
        ("water heater repair and installation", None),
        ("roof repair work", None),
        ("", None),
    ],
)
def test_service_lookup_plumbing(said: str, expected: str | None) -> None:
    brain = load_brain(BRAINS / "plumbing.yaml")
    found = brain.service(said)
    assert (found.name if found else None) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("cleaning", "Cleaning"),
        ("teeth cleanings", "Cleaning"),
        ("X-rays", "Exam and X-rays"),
        ("exam", "Exam and X-rays"),
        ("a checkup", "Exam and X-rays"),
        ("emergency", "Emergency visit"),
        ("whitening please", "Whitening"),
        ("root canal", None),
    ],
)
def test_service_lookup_dental(said: str, expected: str | None) -> None:
    brain = load_brain(BRAINS / "dental.yaml")
    found = brain.service(said)
    assert (found.name if found else None) == expected


def test_turn_taking_in_the_brain_overrides_the_workers_settings() -> None:
    from agent.session import settings_for_brain
    from agent.settings import load_settings

    settings = load_settings(openai_api_key="sim", _env_file=None)
    brain = parse_brain(variant(lambda d: d["calls"].update(
        endpointing_seconds=0.7, interruption_seconds=0.3, speculative_reply=False, backchannel_seconds=0,
        backchannel_after_seconds=2.0, noise_gate_db=20, turn_model="v1-mini", unfinished_hold_seconds=0)), "ok.yaml")  # fmt: skip
    chosen = settings_for_brain(settings, brain)
    assert (chosen.min_endpointing_delay, chosen.min_interruption_duration, chosen.speculative_reply) == (
        0.7, 0.3, False)  # fmt: skip
    assert chosen.turn_model == "v1-mini" and settings.turn_model == "none"
    # 0 is a choice (the rule off), not "left out"
    assert (chosen.backchannel_seconds, chosen.noise_gate_db, chosen.unfinished_hold_seconds) == (0, 20, 0)
    assert (chosen.backchannel_after_seconds, settings.backchannel_after_seconds) == (2.0, 1.2)
    # what the brain leaves out stays as the worker has it
    assert chosen.dictation_endpointing_delay == settings.dictation_endpointing_delay
    plain = parse_brain(variant(lambda d: None), "ok.yaml")
    assert settings_for_brain(settings, plain) == settings


def test_an_unknown_turn_model_names_its_field() -> None:
    err = refused(variant(lambda d: d["calls"].update(turn_model="v2-big")))
    assert [w for w, _ in err.problems] == ["calls.turn_model"]
    assert "v1-mini" in str(err)  # what it may be


def test_a_departments_bad_number_names_its_line() -> None:
    text = (BRAINS / "plumbing.yaml").read_text().replace('"tel:+15035550192"', '"tel:555 0192"')
    err = refused(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "tel:555 0192" in t)
    assert [w for w, _ in err.problems] == ["escalation.departments[1].transfer_to"]
    assert str(err).endswith(f"(line {line})")


def test_a_single_transfer_to_is_one_department_taking_every_reason() -> None:
    dental = load_brain(BRAINS / "dental.yaml")  # written the single-team way
    [team] = dental.escalation.destinations
    assert team.transfer_to == "sip:frontdesk@lakeviewfamilydental.example"
    assert team.default and set(team.reasons) >= {"pricing_dispute", "emergency", "explicit_request"}
    assert team.hours is None  # the office's opening hours
    assert dental.escalation.say_before(team) == "Let me connect you with our front desk, one moment please."
    nobody = parse_brain(variant(lambda d: d["escalation"].pop("departments")))
    assert nobody.escalation.destinations == []
