"""A real livekit-server (with its own Redis, which the SIP APIs require) for provisioning tests.

Own processes on free loopback ports and a private Redis, so the trunk numbers here never collide
with the phone tests' stack. Binaries: LIVEKIT_SERVER_BIN, else the one scripts/stack builds under
~/.cache/receptionist/livekit-server-*/bin/.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from livekit import api

HERE = Path(__file__).parent
BRAINS = HERE / "brains"
API_KEY = "provisiontest"
API_SECRET = "provision-test-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _livekit_server_bin() -> str:
    if os.environ.get("LIVEKIT_SERVER_BIN"):
        return os.environ["LIVEKIT_SERVER_BIN"]
    found = sorted(Path.home().glob(".cache/receptionist/livekit-server-*/bin/livekit-server"))
    if not found:
        pytest.fail("no livekit-server binary: run scripts/stack build or set LIVEKIT_SERVER_BIN")
    return str(found[-1])


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"{url} not ready after {seconds}s:\n{log.read_text()[-3000:]}")


@dataclass(frozen=True)
class LiveKitServer:
    url: str
    api_key: str
    api_secret: str

    def env(self) -> dict[str, str]:
        return {
            "LIVEKIT_URL": self.url,
            "LIVEKIT_API_KEY": self.api_key,
            "LIVEKIT_API_SECRET": self.api_secret,
        }

    def run(self, coro_fn) -> object:
        """Run one async LiveKit API interaction from a sync test."""

        async def go() -> object:
            lk = api.LiveKitAPI(self.url, self.api_key, self.api_secret)
            try:
                return await coro_fn(lk)
            finally:
                await lk.aclose()

        return asyncio.run(go())


@pytest.fixture(scope="session")
def livekit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitServer]:
    redis_bin = shutil.which("redis-server")
    if not redis_bin:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    work = tmp_path_factory.mktemp("livekit")
    redis_port, http_port, tcp_port, udp_port = (free_port() for _ in range(4))
    redis_log = work / "redis.log"
    redis = subprocess.Popen(
        [
            redis_bin,
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=redis_log.open("w"),
        stderr=subprocess.STDOUT,
    )
    config = work / "livekit.yaml"
    config.write_text(
        f"port: {http_port}\n"
        "bind_addresses: [127.0.0.1]\n"
        f"keys: {{{API_KEY}: {API_SECRET}}}\n"
        f"redis: {{address: 127.0.0.1:{redis_port}, db: 0}}\n"
        f"rtc: {{tcp_port: {tcp_port}, udp_port: {udp_port}, node_ip: 127.0.0.1, use_external_ip: false}}\n"
        "room: {auto_create: true}\n"
    )
    log = work / "livekit.log"
    server = None
    try:
        # Redis must answer before livekit-server starts, or it gives up on the SIP store
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", redis_port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or redis.poll() is not None:
                    pytest.fail(f"redis-server did not start:\n{redis_log.read_text()}")
                time.sleep(0.1)
        server = subprocess.Popen(
            [_livekit_server_bin(), "--config", str(config)],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{http_port}"
        _wait_ready(url + "/", server, log)
        yield LiveKitServer(url, API_KEY, API_SECRET)
    finally:
        for proc in (server, redis):
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def livekit(livekit_server: LiveKitServer) -> LiveKitServer:
    """The shared server with every SIP trunk and dispatch rule removed: each test starts empty."""

    async def wipe(lk: api.LiveKitAPI) -> None:
        rules = await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())
        for r in rules.items:
            await lk.sip.delete_dispatch_rule(
                api.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=r.sip_dispatch_rule_id)
            )
        trunks = await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())
        outbound = await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())
        for t in [*trunks.items, *outbound.items]:
            await lk.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=t.sip_trunk_id))

    livekit_server.run(wipe)
    return livekit_server


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No provisioning setting leaks in from the developer's shell or a .env in the repo."""
    for name in list(os.environ):
        if name.startswith(("LIVEKIT_", "TWILIO_", "SIP_")) or name == "AGENT_NAME":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return monkeypatch
