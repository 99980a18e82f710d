"""The harness's phones start even when a port found free is taken before sipp binds it.

On a busy machine a worker's WebRTC or another sipp can bind a port in the moment between the
harness finding it free and sipp binding it; sipp then exits before its first message and the
call looked refused (CI, 2026-12-01: "Unable to bind remote control socket to UDP port 59109").
Two sipps on loopback, no stack: one calls the other.
"""

import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import tests.phone.harness as harness
from tests.fixtures.stack import free_port


@dataclass
class _Phone:
    sip_host: str
    sip_port: int


async def test_a_call_goes_through_when_each_sipps_first_ports_are_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[socket.socket] = []
    real_free_port = free_port
    handed = 0

    def free_then_taken(*, tcp: bool = True, udp: bool = False) -> int:
        # Of the ports handed to sipp, the 1st (the person's control port) and the 3rd (the
        # caller's SIP port) are bound by someone else by the time sipp starts.
        nonlocal handed
        port = real_free_port(tcp=tcp, udp=udp)
        if sys._getframe(1).f_code.co_name != "_start_sipp":
            return port  # the harness's own RTP socket: bound by the harness itself
        handed += 1
        if handed in (1, 3):
            holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            holder.bind(("0.0.0.0", port))
            taken.append(holder)
        return port

    monkeypatch.setattr(harness, "free_port", free_then_taken)
    person_port = real_free_port(tcp=False, udp=True)
    (tmp_path / "person").mkdir()
    try:
        async with (
            harness.receive_call(port=person_port, answer="at_once", work_dir=tmp_path / "person") as person,
            harness.place_call(_Phone("127.0.0.1", person_port), to="+15035550188", work_dir=tmp_path) as call,
        ):  # fmt: skip
            await call.wait_answered(within=20)
            await person.wait_answered(within=20)
            await call.hangup()
    finally:
        for holder in taken:
            holder.close()
    assert len(taken) == 2
    assert person.to == "+15035550188"
    assert call.ended_by == "caller_bye"
