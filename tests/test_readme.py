"""The README and docs/going-live.md are a contract: every command a newcomer copies from their bash
blocks is either run here, as written, on a fresh copy of the checkout against the local stack,
Postgres and the Realtime simulator, or allow-listed below with the reason it cannot run offline.
A command added to the docs that is neither fails this test, so the docs cannot drift unnoticed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.docker_engine import DockerEngine
from tests.fixtures.processes import answering
from tests.fixtures.stack import ROOT, PhoneStack, free_port
from tests.phone.worker import running_workers

DOCS = ("README.md", "docs/going-live.md")
VENV = Path(sys.executable).parent.parent

# Commands that cannot run offline, each with why. Everything else in a bash block is run below.
ALLOWED = {
    "make demo": "installs system packages and a venv (sudo apt-get, pip); its call is "
    "`receptionist simulate tests/scenarios/book-drain-cleaning.yaml`, run below",
    "make test": "the whole suite, this test included; CI runs it (.ci/run)",
    "make report-screenshot": "redraws docs/img/report.png: minutes of scenario calls, then headless "
    "chromium; the `receptionist report --html` it photographs runs below",
    ".venv/bin/python -m agent.worker console --text": "interactive (reads a terminal) and needs a "
    "real OPENAI_API_KEY; its worker code is what dev/start run below",
    "OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=sim BRAIN_PATH=brains/plumbing.yaml "
    ".venv/bin/python -m agent.worker console --text": "interactive: a person types turns at a "
    "terminal (issue 16 item 7 covers its pace); the simulator it talks to is started below",
    ".venv/bin/python -m agent.worker console": "needs a microphone and speakers",
    "python -m sip.provision --dry-run": "the Twilio side needs a real Twilio account; the LiveKit "
    "side of the same plan runs below (--only livekit)",
    "python -m sip.provision": "changes a real Twilio account",
    "python -m sip.provision --check": "reads a real Twilio account",
    "python scripts/k8s_schemas.py": "downloads the whole k8s.io/kubernetes module (an 18 MB zip) to "
    "rewrite schemas that are committed; scripts/validate-k8s, run below, uses them",
    "export DATABASE_URL=postgresql://receptionist@127.0.0.1:5432/receptionist": "an example address "
    "of the reader's own Postgres; the test exports its own database's and runs the rest of the block",
}

FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)\s*$")


def bash_blocks(markdown: str) -> list[str]:
    """The bodies of the ```bash fenced blocks, in order (other fences, e.g. yaml, are skipped)."""
    blocks, body, lang = [], None, ""
    for line in markdown.splitlines():
        fence = FENCE.match(line)
        if fence and body is None:
            body, lang = [], fence["lang"]
        elif fence and not fence["lang"]:
            if lang == "bash":
                blocks.append("\n".join(body))
            body = None
        elif body is not None:
            body.append(line)
    return blocks


def commands(block: str) -> list[str]:
    """A block's commands: continuation lines joined, trailing comments and a final `&` dropped."""
    joined = re.sub(r"\\\n\s*", "", block)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s+)#\s.*$", "", line).strip()
        line = re.sub(r"\s*&$", "", line)
        if line:
            out.append(line)
    return out


def documented() -> list[str]:
    found = []
    for doc in DOCS:
        for block in bash_blocks((ROOT / doc).read_text()):
            found += [c for c in commands(block) if c not in found]
    return found


# Filled in by the tests below: each names the documented commands it runs as written.
OWNER = "test_owner_commands_on_a_database_of_calls"
RUN = {
    "cp .env.example .env": "test_copying_the_example_env",
    ".venv/bin/python -m agent.worker dev": "test_worker_registers_with_livekit_in_dev_and_start_mode",
    ".venv/bin/python -m agent.worker start": "test_worker_registers_with_livekit_in_dev_and_start_mode",
    ".venv/bin/receptionist simulator --scenario tests/scenarios/hours-saturday.yaml --port 8765":
        "test_simulator_serves_the_realtime_api",
    "python -m sip.provision --only livekit": "test_livekit_provisioning_plans_applies_and_checks",
    "SIP_HOST=127.0.0.1 .venv/bin/receptionist provision --only livekit --dry-run":
        "test_livekit_provisioning_plans_applies_and_checks",
    "SIP_HOST=127.0.0.1 .venv/bin/receptionist provision --only livekit":
        "test_livekit_provisioning_plans_applies_and_checks",
    "SIP_HOST=127.0.0.1 .venv/bin/receptionist provision --only livekit --check":
        "test_livekit_provisioning_plans_applies_and_checks",
    ".venv/bin/receptionist db migrate": "test_migrate_then_read_the_call_records",
    "docker build -t receptionist .": "test_the_image_as_the_readme_builds_and_runs_it",
    "docker run --rm --network host --env-file .env receptionist receptionist db migrate":
        "test_the_image_as_the_readme_builds_and_runs_it",
    "docker run -d --network host --env-file .env receptionist": "test_the_image_as_the_readme_builds_and_runs_it",
    'psql "$DATABASE_URL" -c "SELECT started_at, business, outcome, end_reason FROM calls '
    'ORDER BY started_at DESC LIMIT 20"': "test_migrate_then_read_the_call_records",
    'psql "$DATABASE_URL" -c "SELECT jsonb_pretty(summary) FROM calls ORDER BY started_at DESC '
    'LIMIT 1"': "test_migrate_then_read_the_call_records",
    # the owner's side, on a database that scenario calls were recorded into
    ".venv/bin/receptionist simulate tests/scenarios/book-drain-cleaning.yaml tests/scenarios/take-message.yaml": OWNER,
    '.venv/bin/receptionist users add you@example.com --business "Rose City Plumbing" --business "Lakeview Family Dental"': OWNER,
    '.venv/bin/receptionist users add ann@example.com --business "Rose City Plumbing"': OWNER,
    'echo "$PASSWORD" | .venv/bin/receptionist users add ops@example.com --role operator --password-stdin': OWNER,
    ".venv/bin/receptionist web --host 127.0.0.1 --port 8080": OWNER,
    ".venv/bin/receptionist web": OWNER,
    '.venv/bin/receptionist calendar feed-url --business "Rose City Plumbing"': OWNER,
    '.venv/bin/receptionist calendar feed-url --business "Rose City Plumbing" --rotate': OWNER,
    '.venv/bin/receptionist report --business "Rose City Plumbing" --since 7d': OWNER,
    ".venv/bin/receptionist report --from 2026-11-01 --to 2026-11-30 --json": OWNER,
    '.venv/bin/receptionist report --business "Rose City Plumbing" --html report.html': OWNER,
    ".venv/bin/receptionist notify run": OWNER,
    ".venv/bin/receptionist notify run --once": OWNER,
    ".venv/bin/receptionist notify inbound --port 8090 --metrics-port 9102": OWNER,
    ".venv/bin/receptionist outbox": OWNER,
    ".venv/bin/receptionist outbox list --status pending --limit 200": OWNER,
    ".venv/bin/receptionist outbox dead": OWNER,
    ".venv/bin/receptionist outbox retry 42": OWNER,
    ".venv/bin/receptionist retention --dry-run": OWNER,
    ".venv/bin/receptionist retention": OWNER,
    '.venv/bin/receptionist forget "+1 503 555 0111" --by "Jo, request by email 2026-11-28"': OWNER,
    '.venv/bin/receptionist forget "(503) 555-0111"': OWNER,
    # the alert rules, from the checkout's root as written (tests/deploy/test_prometheus_rules.py)
    "promtool check rules deploy/prometheus/alerts.yaml": "test_alert_rules_are_valid",
    "promtool test rules deploy/prometheus/alerts.test.yaml": "test_alerts_fire_as_their_unit_tests_expect",
    # the Kubernetes manifests, from the checkout's root as written (tests/deploy/test_k8s_manifests.py)
    "scripts/validate-k8s": "test_the_shipped_manifests_are_valid",
    "TOKEN=$(.venv/bin/receptionist users token ann@example.com --name nightly-export)": OWNER,
    'curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8080/api/v1/calls?from=2026-11-01&outcome=booked"': OWNER,
    "curl -s http://127.0.0.1:8080/api/v1/openapi.json": OWNER,
    ".venv/bin/receptionist users token ann@example.com --revoke --name nightly-export": OWNER,
}  # fmt: skip



def test_every_documented_command_is_run_or_allowed() -> None:
    docs = documented()
    unaccounted = [c for c in docs if c not in RUN and c not in ALLOWED]
    assert not unaccounted, (
        "commands in the docs that this test neither runs nor allow-lists (add them to RUN with a "
        f"test, or to ALLOWED with the reason): {unaccounted}"
    )
    stale = [c for c in (*RUN, *ALLOWED) if c not in docs]
    assert not stale, f"commands this test accounts for that the docs no longer show: {stale}"


def test_a_new_command_in_a_doc_is_caught() -> None:
    doc = "intro\n\n```bash\nmake demo   # fine\n./new-step --now \\\n  --flag &\n```\n"
    assert [c for b in bash_blocks(doc) for c in commands(b)] == ["make demo", "./new-step --now --flag"]


# ------------------------------------------------------------------ the fresh copy


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tracked files of this checkout, as they are now, in a new directory; `.venv` is the
    venv running this test (its packages; the copy's own code comes first on PYTHONPATH)."""
    copy = tmp_path_factory.mktemp("checkout")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    (copy / ".venv").symlink_to(VENV)
    return copy


def newcomer_env(checkout: Path, **extra: str) -> dict[str, str]:
    """A shell as a newcomer has it: nothing of ours exported, the venv's `python` first on PATH."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "LIVEKIT_", "TWILIO_", "SIP_", "BRAIN", "DATABASE_URL", "REDIS_URL"))
    }
    return {**clean, "PATH": f"{VENV / 'bin'}:{clean['PATH']}", "PYTHONPATH": str(checkout), **extra}


def sh(command: str, checkout: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert command in RUN, f"not a documented command: {command}"
    return subprocess.run(
        ["bash", "-c", command], cwd=checkout, env=env, capture_output=True, text=True, timeout=180
    )


def test_copying_the_example_env(checkout: Path) -> None:
    out = sh("cp .env.example .env", checkout, newcomer_env(checkout))
    assert out.returncode == 0, out.stderr
    assert (checkout / ".env").read_text() == (checkout / ".env.example").read_text()


@pytest.fixture
def empty_db_url(pg_server) -> Iterator[str]:  # noqa: ANN001 - the postgres fixture's server
    """A database nothing has migrated: what an operator has before `receptionist db migrate`."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield pg_server.create_database(name)
    pg_server.drop_database(name)


def filled_in_env(checkout: Path, stack: PhoneStack, database_url: str, agent_name: str) -> None:
    """.env.example with what a user fills in; start mode's health port set free for a shared host."""
    # no real OpenAI here: the start-up key check goes to loopback (nothing listens; only logged)
    mine = {**stack.env(), "AGENT_NAME": agent_name, "OPENAI_API_KEY": "sk-test",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
            "DATABASE_URL": database_url, "WORKER_PORT": "0"}  # fmt: skip
    lines = []
    for line in (checkout / ".env.example").read_text().splitlines():
        name = line.split("=", 1)[0].strip()
        if name == "REDIS_URL":
            continue  # nothing listens on the example's port here; no call reaches Redis
        lines.append(f"{name}={mine.pop(name)}" if name in mine else line)
    (checkout / ".env").write_text("\n".join([*lines, *(f"{k}={v}" for k, v in mine.items())]) + "\n")


def test_worker_registers_with_livekit_in_dev_and_start_mode(
    checkout: Path, phone_stack: PhoneStack, db_url: str, tmp_path: Path
) -> None:
    filled_in_env(checkout, phone_stack, db_url, f"readme-{uuid.uuid4().hex[:6]}")
    commands = [".venv/bin/python -m agent.worker dev", ".venv/bin/python -m agent.worker start"]
    assert all(command in RUN for command in commands)
    # both at once, one .env, two workers under its agent name (their start-ups overlap):
    # running_workers waits for each one's "registered worker" line and stops them afterwards
    with running_workers(
        [["bash", "-c", command] for command in commands], envs=[newcomer_env(checkout)] * len(commands),
        logs=[tmp_path / f"{command.rsplit(' ', 1)[1]}.log" for command in commands], cwd=checkout,
    ):  # fmt: skip
        pass


def test_the_image_as_the_readme_builds_and_runs_it(
    checkout: Path, phone_stack: PhoneStack, image_base: DockerEngine, empty_db_url: str
) -> None:
    """The three docker commands as written, from the checkout with a filled-in .env, on the machine's
    Docker engine or a private one (tests/fixtures/docker_engine.py): the image migrates the empty
    database, then its worker registers with LiveKit."""
    filled_in_env(checkout, phone_stack, empty_db_url, f"readme-image-{uuid.uuid4().hex[:6]}")
    with (checkout / ".env").open("a") as env_file:
        env_file.write(f"HEALTH_PORT={free_port()}\n")  # the image's 8091 may be taken on a shared host
    env = {**newcomer_env(checkout), **{k: v for k, v in image_base.env.items() if k == "DOCKER_HOST"}}

    def docker(command: str) -> subprocess.CompletedProcess[str]:
        assert command in RUN, f"not a documented command: {command}"
        out = subprocess.run(["bash", "-c", command], cwd=checkout, env=env, capture_output=True, text=True,
                             timeout=1800)  # fmt: skip
        assert out.returncode == 0, f"{command}:\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
        return out

    docker("docker build -t receptionist .")
    migrated = docker("docker run --rm --network host --env-file .env receptionist receptionist db migrate")
    assert "applied: 001_initial.sql" in migrated.stdout + migrated.stderr
    with psycopg.connect(empty_db_url) as conn:
        [(applied,)] = conn.execute("SELECT count(*) FROM schema_migrations").fetchall()
    assert applied == len(list((checkout / "agent" / "store" / "migrations").glob("*.sql")))
    container = docker("docker run -d --network host --env-file .env receptionist").stdout.strip()
    try:
        deadline = time.monotonic() + 120
        while "registered worker" not in (logs := image_base.run("logs", container)).stdout + logs.stderr:
            state = image_base.run("inspect", "--format", "{{.State.Status}}", container).stdout.strip()
            assert state == "running", f"the worker's container is {state}:\n{logs.stdout}{logs.stderr}"
            assert time.monotonic() < deadline, f"never registered:\n{logs.stdout[-3000:]}{logs.stderr[-3000:]}"
            time.sleep(0.5)
    finally:
        image_base.run("rm", "-f", container, check=False)


def test_simulator_serves_the_realtime_api(checkout: Path, tmp_path: Path) -> None:
    command = ".venv/bin/receptionist simulator --scenario tests/scenarios/hours-saturday.yaml --port 8765"
    assert command in RUN
    log = tmp_path / "simulator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["bash", "-c", command], cwd=checkout, env=newcomer_env(checkout),
                                stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"simulator exited with {proc.returncode}:\n{log.read_text()}"
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", 8765)) == 0:
                    break
            assert time.monotonic() < deadline, f"simulator never listened on 8765:\n{log.read_text()}"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(30)


async def test_livekit_provisioning_plans_applies_and_checks(checkout: Path, phone_stack: PhoneStack) -> None:
    await phone_stack.clear_sip_routing()
    env = newcomer_env(checkout, **phone_stack.env())
    plan = sh("SIP_HOST=127.0.0.1 .venv/bin/receptionist provision --only livekit --dry-run", checkout, env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "create" in plan.stdout and "receptionist-inbound" in plan.stdout
    apply = sh("SIP_HOST=127.0.0.1 .venv/bin/receptionist provision --only livekit", checkout, env)
    assert apply.returncode == 0, apply.stdout + apply.stderr
    check = sh("SIP_HOST=127.0.0.1 .venv/bin/receptionist provision --only livekit --check", checkout, env)
    assert check.returncode == 0, check.stdout + check.stderr
    # the README's spelling of the same step: nothing left to change
    again = sh("python -m sip.provision --only livekit", checkout, {**env, "SIP_HOST": "127.0.0.1"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert "create" not in again.stdout


def test_migrate_then_read_the_call_records(checkout: Path, empty_db_url: str) -> None:
    env = newcomer_env(checkout, DATABASE_URL=empty_db_url)
    migrate = sh(".venv/bin/receptionist db migrate", checkout, env)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    # one call into the migrated database, the way `make demo` places it
    call = subprocess.run(
        [".venv/bin/receptionist", "simulate", "tests/scenarios/book-drain-cleaning.yaml"],
        cwd=checkout, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert call.returncode == 0, call.stdout[-3000:] + call.stderr[-3000:]
    calls = sh(
        'psql "$DATABASE_URL" -c "SELECT started_at, business, outcome, end_reason FROM calls '
        'ORDER BY started_at DESC LIMIT 20"', checkout, env,
    )  # fmt: skip
    assert calls.returncode == 0, calls.stderr
    assert "booked" in calls.stdout and "(1 row)" in calls.stdout
    report = sh(
        'psql "$DATABASE_URL" -c "SELECT jsonb_pretty(summary) FROM calls ORDER BY started_at DESC '
        'LIMIT 1"', checkout, env,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert '"version": 1' in report.stdout and '"bookings"' in report.stdout


def _serves(command: str, checkout: Path, env: dict[str, str], port: int, path: str, log: Path) -> str:
    """Start a documented long-running command, wait for an HTTP answer on `port`, stop it (SIGTERM)."""
    with _serving(command, checkout, env, port, path, log) as first_answer:
        return first_answer


@contextlib.contextmanager
def _serving(command: str, checkout: Path, env: dict[str, str], port: int, path: str, log: Path) -> Iterator[str]:
    """A documented long-running command, once it answers on `port` (its first answer), until the block ends."""
    assert command in RUN
    with answering(["bash", "-c", f"exec {command}"], url=f"http://127.0.0.1:{port}{path}", log=log, env=env,
                   cwd=checkout) as (_, first_answer):  # fmt: skip
        yield first_answer


def test_owner_commands_on_a_database_of_calls(checkout: Path, empty_db_url: str, tmp_path: Path) -> None:
    """The owner's side as the README shows it: calls recorded into a database, the console, the
    report, notifications' sender and outbox, retention and erasure, each command as written."""
    env = newcomer_env(checkout, DATABASE_URL=empty_db_url, BRAIN_PATH="brains", PASSWORD="a-long-password-1")

    def ok(command: str, stdin: str | None = None) -> str:
        assert command in RUN, f"not a documented command: {command}"
        out = subprocess.run(["bash", "-c", command], cwd=checkout, env=env, input=stdin, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert out.returncode == 0, f"{command}: {out.stdout[-2000:]}{out.stderr[-2000:]}"
        return out.stdout

    # "On the demo call's database", its DATABASE_URL ours
    assert "database is up to date" not in ok(".venv/bin/receptionist db migrate")
    ok(".venv/bin/receptionist simulate tests/scenarios/book-drain-cleaning.yaml tests/scenarios/take-message.yaml")
    assert "added owner you@example.com" in ok(
        '.venv/bin/receptionist users add you@example.com --business "Rose City Plumbing" --business "Lakeview Family Dental"',
        stdin="a-long-password-1\na-long-password-1\n",
    )  # fmt: skip
    ok('.venv/bin/receptionist users add ann@example.com --business "Rose City Plumbing"',
       stdin="a-long-password-2\na-long-password-2\n")  # fmt: skip
    assert "operator" in ok('echo "$PASSWORD" | .venv/bin/receptionist users add ops@example.com --role operator --password-stdin')
    page = _serves(".venv/bin/receptionist web --host 127.0.0.1 --port 8080", checkout, env, 8080, "/login",
                   tmp_path / "web.log")  # fmt: skip
    assert "<form" in page and "password" in page

    feed = ok('.venv/bin/receptionist calendar feed-url --business "Rose City Plumbing"').strip()
    assert feed.startswith("http://127.0.0.1:8080/calendar/") and feed.endswith(".ics")
    token_line = "TOKEN=$(.venv/bin/receptionist users token ann@example.com --name nightly-export)"
    calls_line = 'curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8080/api/v1/calls?from=2026-11-01&outcome=booked"'
    assert token_line in RUN and calls_line in RUN
    # one console, started as the README's plain `receptionist web`, serves the login page, the
    # calendar feed and the JSON API (each start is seconds of imports)
    with _serving(".venv/bin/receptionist web", checkout, env, 8080, "/login", tmp_path / "console.log") as page:
        assert "<form" in page and "password" in page
        # the calendar feed's secret URL, served by the console; rotated, a new one
        with urllib.request.urlopen(feed, timeout=30) as answer:
            ics = answer.read().decode()
        assert ics.startswith("BEGIN:VCALENDAR") and "X-WR-CALNAME:Rose City Plumbing bookings" in ics
        assert ok('.venv/bin/receptionist calendar feed-url --business "Rose City Plumbing" --rotate').strip() != feed
        # the JSON API: the README's token and curl lines run as one script, so TOKEN carries over
        script = f'set -e\n{token_line}\n{calls_line}\necho\necho "$TOKEN"'
        ran = subprocess.run(["bash", "-c", script], cwd=checkout, env=env, capture_output=True, text=True,
                             timeout=300)  # fmt: skip
        assert ran.returncode == 0 and "shown once" in ran.stderr, ran.stderr
        answer, token = ran.stdout.strip().splitlines()
        calls = json.loads(answer)["calls"]
        assert [(c["business"], c["outcome"]) for c in calls] == [("Rose City Plumbing", "booked")]
        assert json.loads(ok("curl -s http://127.0.0.1:8080/api/v1/openapi.json"))["openapi"] == "3.1.0"
        assert "revoked 1 token named 'nightly-export'" in ok(
            ".venv/bin/receptionist users token ann@example.com --revoke --name nightly-export")
        status = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                                 f"Authorization: Bearer {token}", "http://127.0.0.1:8080/api/v1/calls"],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert status.stdout == "401"  # revoked

    # quality over time: the scenarios' calls are in November 2026
    assert "calls from" in ok('.venv/bin/receptionist report --business "Rose City Plumbing" --since 7d')
    figures = json.loads(ok(".venv/bin/receptionist report --from 2026-11-01 --to 2026-11-30 --json"))
    assert figures["calls"] == 2 and figures["outcomes"]["booked"] == 1 and figures["outcomes"]["messages"] == 1
    ok('.venv/bin/receptionist report --business "Rose City Plumbing" --html report.html')
    assert "<svg" in (checkout / "report.html").read_text()

    # notifications: the sender once, and as a service stopped by SIGTERM; the outbox commands
    ok(".venv/bin/receptionist notify run --once")
    sender = subprocess.Popen(["bash", "-c", "exec .venv/bin/receptionist notify run"], cwd=checkout, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    # it says what it delivers by once SIGTERM is its to handle: stopping it before then is a kill
    assert sender.stdout is not None
    said = []
    while not said or "delivering notifications by" not in said[-1]:
        said.append(sender.stdout.readline())
        assert said[-1], "notify run ended before it started delivering:\n" + "".join(said)
    sender.terminate()
    assert sender.wait(30) == 0, sender.stdout.read() if sender.stdout else ""
    # Twilio's SMS webhook for STOP: its health check answers (signed requests: tests/notify/test_stop.py)
    # ...and Prometheus's counter of the calls Twilio answered for the fleet, on a port of its own
    with _serving(".venv/bin/receptionist notify inbound --port 8090 --metrics-port 9102", checkout,
                  {**env, "TWILIO_AUTH_TOKEN": "test-token"}, 8090, "/", tmp_path / "inbound.log"):  # fmt: skip
        with urllib.request.urlopen("http://127.0.0.1:9102/metrics", timeout=5) as answer:
            assert "# TYPE receptionist_fallback_calls_total counter" in answer.read().decode()
    for command in (".venv/bin/receptionist outbox", ".venv/bin/receptionist outbox list --status pending --limit 200",
                    ".venv/bin/receptionist outbox dead"):  # fmt: skip
        ok(command)
    retry = subprocess.run(["bash", "-c", ".venv/bin/receptionist outbox retry 42"], cwd=checkout, env=env,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    # the README's example id names no notification here: one clear line, not a traceback
    assert retry.returncode == 2 and retry.stderr.strip() == "receptionist: no notification with id 42"

    # personal data
    assert "dry run" in ok(".venv/bin/receptionist retention --dry-run")
    ok(".venv/bin/receptionist retention")
    assert "forgot +*******0111" in ok('.venv/bin/receptionist forget "+1 503 555 0111" --by "Jo, request by email 2026-11-28"')
    assert "forgot +*******0111" in ok('.venv/bin/receptionist forget "(503) 555-0111"')
