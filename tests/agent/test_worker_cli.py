"""What an operator sees from the worker and the `receptionist` command: the LiveKit modes, one clear
line for a missing or bad setting (never a secret), and a refusal to start on a bad brain."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from agent.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LIVEKIT_", "BRAIN", "DATABASE_URL"))}
    return subprocess.run(
        args, env={**clean, **(env or {})}, cwd=cwd or ROOT, capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_livekit_modes() -> None:
    out = run([sys.executable, "-m", "agent.worker", "--help"])
    assert out.returncode == 0, out.stderr
    for mode in ("console", "dev", "start", "download-files"):
        assert mode in out.stdout


def test_missing_openai_key_is_one_clear_line(tmp_path: Path) -> None:
    out = run([sys.executable, "-m", "agent.worker", "start"], cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert out.returncode == 2
    assert "missing required setting OPENAI_API_KEY" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_setting_names_the_variable_and_never_prints_secrets(tmp_path: Path) -> None:
    secret = "sk-this-must-never-be-printed-0123456789"
    out = run(
        [sys.executable, "-m", "agent.worker", "start"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "OPENAI_API_KEY": secret, "LIVEKIT_API_SECRET": secret,
             "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
             "MIN_INTERRUPTION_DURATION": "soon"},
    )  # fmt: skip
    assert out.returncode == 2
    assert "invalid setting MIN_INTERRUPTION_DURATION" in out.stderr
    assert secret not in out.stdout + out.stderr


def test_worker_refuses_a_bad_brain(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "brains" / "plumbing.yaml").read_text().replace("duration_minutes: 60", "duration_minutes: -5", 1))
    out = run(
        [sys.executable, "-m", "agent.worker", "start"],
        env={"OPENAI_API_KEY": "x", "BRAIN_PATH": str(bad)},
    )
    assert out.returncode == 2
    assert f"{bad}: services[0].duration_minutes" in out.stderr


def test_check_brain_accepts_the_examples_and_names_the_problem_in_a_bad_one(tmp_path: Path) -> None:
    ok = run([str(BIN / "receptionist"), "check-brain", "brains/"])
    assert ok.returncode == 0 and "Rose City Plumbing" in ok.stdout and "Lakeview Family Dental" in ok.stdout
    bad = tmp_path / "clinic.yaml"
    bad.write_text("business: {name: X, timezone: Mars/Olympus}\n")
    out = run([str(BIN / "receptionist"), "check-brain", str(bad)])
    assert out.returncode == 1
    assert f"{bad}: business.timezone: unknown IANA timezone" in out.stderr


def test_simulate_prints_one_json_document(tmp_path: Path) -> None:
    # without a database, so without the scenario's expectations on Postgres rows (they would fail)
    scenario = yaml.safe_load((ROOT / "tests/scenarios/hours-saturday.yaml").read_text())
    del scenario["expect"]["db"]
    scenario["brain"] = str(ROOT / scenario["brain"])
    path = tmp_path / "hours-saturday.yaml"
    path.write_text(yaml.safe_dump(scenario))
    out = run([str(BIN / "receptionist"), "simulate", str(path), "--json", "--database", "none"])
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["passed"] is True and report["scenario"] == "hours-saturday"
    assert report["transcript"][0]["role"] == "agent" and "AI assistant" in report["transcript"][0]["text"]
    assert [c["name"] for c in report["tool_calls"]] == ["get_opening_hours"]


def test_simulate_refuses_a_malformed_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("name: x\nbrain: brains/plumbing.yaml\nclock: 2026-11-24T10:00:00\ngreeting: []\n")
    out = run([str(BIN / "receptionist"), "simulate", str(bad)])
    assert out.returncode == 2
    assert "clock" in out.stderr and "greeting" in out.stderr


def test_start_refuses_a_schema_behind_the_code_until_db_migrate(pg_server, tmp_path: Path) -> None:
    name = f"w_{uuid.uuid4().hex[:10]}"
    dsn = pg_server.create_database(name)  # nothing applied yet, as on a fresh deployment
    env = {
        "PYTHONPATH": str(ROOT),
        "OPENAI_API_KEY": "x",
        # the start-up key check goes to loopback (nothing listens: it is only logged), never elsewhere
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "BRAIN_PATH": str(ROOT / "brains"),
        "DATABASE_URL": dsn,
        "LIVEKIT_API_KEY": "devkey",
        "LIVEKIT_API_SECRET": "secret",
    }
    try:
        refused = run([sys.executable, "-m", "agent.worker", "start"], cwd=tmp_path, env=env)
        assert refused.returncode == 2
        [line] = refused.stderr.splitlines()
        assert "schema is behind" in line and "001_initial.sql" in line
        assert "run `receptionist db migrate`" in line

        migrated = run([str(BIN / "receptionist"), "db", "migrate"], cwd=tmp_path, env=env)
        assert migrated.returncode == 0, migrated.stderr
        assert migrated.stdout.startswith("applied: 001_initial.sql")
        again = run([str(BIN / "receptionist"), "db", "migrate"], cwd=tmp_path, env=env)
        assert again.stdout.strip() == "database is up to date"
    finally:
        pg_server.drop_database(name)


@pytest.mark.parametrize("problem", ["unknown host", "closed port", "not a DSN"])
def test_db_migrate_with_a_bad_database_url_is_one_line_without_the_password(
    problem: str, tmp_path: Path
) -> None:
    from simulator.postgres import free_port

    password = "s3cret-pw-never-printed"
    port = free_port()
    url, named = {
        "unknown host": (f"postgresql://receptionist:{password}@nohost.invalid:5432/calls", "nohost.invalid:5432/calls"),
        "closed port": (f"postgresql://receptionist:{password}@127.0.0.1:{port}/calls", f"127.0.0.1:{port}/calls"),
        "not a DSN": (f"postgres//receptionist:{password}@db.example/calls", "DATABASE_URL is not a Postgres connection string"),
    }[problem]  # fmt: skip
    out = run(
        [str(BIN / "receptionist"), "db", "migrate"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "DATABASE_URL": url},
    )
    assert out.returncode == 2
    [line] = out.stderr.splitlines()
    assert named in line
    assert password not in out.stdout + out.stderr


def test_start_without_the_livekit_key_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    secret = "sk-this-must-never-be-printed-0123456789"
    out = run(
        [sys.executable, "-m", "agent.worker", "start"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "OPENAI_API_KEY": secret, "LIVEKIT_API_SECRET": secret,
             "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
             "BRAIN_PATH": str(ROOT / "brains")},
    )  # fmt: skip
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        "receptionist: missing required setting LIVEKIT_API_KEY (set it in the environment or .env)"
    ]
    assert secret not in out.stdout + out.stderr


def test_start_on_a_taken_port_exits_non_zero_naming_the_port(tmp_path: Path) -> None:
    secret = "this-livekit-secret-must-never-be-printed"
    with socket.socket() as holder:  # another service already listens on the worker's port
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        out = run(
            [sys.executable, "-m", "agent.worker", "start"],
            cwd=tmp_path,
            env={"PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sim", "BRAIN_PATH": str(ROOT / "brains"),
                 "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
                 "LIVEKIT_URL": "ws://127.0.0.1:1", "LIVEKIT_API_KEY": "devkey",
                 "LIVEKIT_API_SECRET": secret, "WORKER_PORT": str(port)},
        )  # fmt: skip
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        f"receptionist: the worker's port {port} is already in use; set WORKER_PORT to a free port (0 = any)"
    ]
    assert "Traceback" not in out.stdout + out.stderr
    assert secret not in out.stdout + out.stderr


def test_the_default_worker_port_is_free_in_the_local_stack() -> None:
    server = yaml.safe_load((ROOT / "livekit.yaml").read_text())
    sip = yaml.safe_load((ROOT / "sip" / "sip.yaml").read_text())
    rtp_low, rtp_high = (int(p) for p in str(sip["rtp_port"]).split("-"))
    stack_ports = {server["port"], server["rtc"]["tcp_port"], server["rtc"]["udp_port"],
                   sip["sip_port"], sip["health_port"],
                   int(server["redis"]["address"].rsplit(":", 1)[1])}  # fmt: skip
    worker_port = Settings(openai_api_key="unused").worker_port
    assert worker_port not in stack_ports
    assert not rtp_low <= worker_port <= rtp_high


async def test_a_dev_worker_logs_json_lines_with_log_format_json_and_serves_its_health(
    tmp_path: Path, realtime_sim
) -> None:
    import asyncio
    import signal

    import aiohttp

    from tests.fixtures.stack import free_port

    health_port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LIVEKIT_", "BRAIN", "DATABASE_URL", "REDIS_URL", "LOG_"))}
    env = clean | {"PYTHONPATH": str(ROOT), "OPENAI_API_KEY": "sim", "OPENAI_BASE_URL": realtime_sim.base_url,
                   "BRAIN_PATH": str(ROOT / "brains"), "LIVEKIT_URL": "ws://127.0.0.1:1", "LIVEKIT_API_KEY": "devkey",
                   "LIVEKIT_API_SECRET": "secret", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
                   "HEALTH_PORT": str(health_port)}  # fmt: skip
    # dev mode runs the worker under LiveKit's file watcher: its own session, so both stop together
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent.worker", "dev", cwd=tmp_path, env=env, start_new_session=True,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    lines: list[str] = []
    try:
        async with asyncio.timeout(120):
            while not any("health endpoint" in line for line in lines):
                line = await proc.stdout.readline()
                assert line, "the worker exited:\n" + "".join(lines)
                lines.append(line.decode())
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{health_port}/health") as resp:
                    health = (resp.status, await resp.json())
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    # postgres and redis are not configured here: off, not degraded
    assert health == (200, {"status": "ok", "postgres": "off", "redis": "off", "model": "ok"})
    # every log line, LiveKit's and ours, is one JSON object (stdout: stderr has only the CLI's notices)
    printed = [line for line in (*lines, *rest.decode().splitlines()) if line.strip()]
    records = [json.loads(line) for line in printed]
    ours = [r for r in records if r.get("name", "").startswith("receptionist.")]
    assert any("health endpoint" in r["message"] and r["level"] == "INFO" for r in ours), records


def test_a_worker_takes_five_calls_a_core_it_may_use_unless_told(tmp_path: Path, monkeypatch) -> None:
    from agent import settings as settings_module

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(settings_module, "CGROUP_CPU_MAX", tmp_path / "absent")
    env = {"OPENAI_API_KEY": "x"}
    monkeypatch.delenv("WORKER_MAX_CALLS", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    assert Settings(_env_file=None).worker_max_calls == 20  # type: ignore[call-arg]
    # a container given 1.5 cores (docker --cpus=1.5, a Kubernetes CPU limit): cgroup v2's cpu.max
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    monkeypatch.setattr(settings_module, "CGROUP_CPU_MAX", tmp_path / "cpu.max")
    assert Settings(_env_file=None).worker_max_calls == 7  # type: ignore[call-arg]
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert Settings(_env_file=None).worker_max_calls == 20  # type: ignore[call-arg]
    # what the operator sets wins, and a bad value is refused by name
    monkeypatch.setenv("WORKER_MAX_CALLS", "3")
    assert Settings(_env_file=None).worker_max_calls == 3  # type: ignore[call-arg]
    out = run([sys.executable, "-m", "agent.worker", "start"], cwd=tmp_path,
              env={**env, "PYTHONPATH": str(ROOT), "WORKER_MAX_CALLS": "0"})  # fmt: skip
    assert out.returncode == 2
    assert "invalid setting WORKER_MAX_CALLS" in out.stderr
