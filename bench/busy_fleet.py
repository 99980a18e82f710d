"""More callers at once than the fleet has slots, over the real phone path: one receptionist worker
(`--slots` calls at most, WORKER_MAX_CALLS) on the local stack (livekit-server, livekit-sip, the
Realtime simulator), `--calls` sipp callers ringing together, each hanging up `--talk` seconds after
the greeting reaches them. A caller beyond the slots waits for one to free: LiveKit offers a call
once, so they are answered only if a worker dispatches the agent again (agent/live/waiting_calls.py)
before livekit-sip's ringing timeout (30 s), else they hear SIP 486.

Prints how many were answered and refused, and how long each waited (INVITE to 200 OK). Run it on two
commits one after the other (a worktree for the baseline): the waits move with the machine's load.

`python -m bench.busy_fleet [--calls 6] [--slots 3] [--talk 6] [--name busy_fleet]`; writes
bench/results/<name>.json (commit, date, CPU calibration, load average).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.fleet import AGENT_NAME, LINE, MODEL_DELAY_MS, PLUMBING, _load
from bench.report import write
from bench.time_to_greeting import _worker_cpu_s
from simulator.postgres import migrated_database
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.stack import PhoneStack, running_stack
from tests.phone.harness import CallFailed, place_call
from tests.phone.worker import receptionist_worker

RINGING_S = 30  # sip.provision's trunk ringing timeout: livekit-sip refuses a call not answered by then


def _number(n: int) -> str:
    return f"+1503555{4000 + n}"


async def _caller(stack: PhoneStack, n: int, talk_s: float) -> dict[str, Any]:
    async with place_call(stack, to=PLUMBING, from_=_number(n), audio_script=[]) as call:
        try:
            await call.wait_answered(within=RINGING_S + 10)
        except CallFailed:
            return {"number": _number(n), "answered": False, "ended_by": call.ended_by,
                    "sip_status": call.rejected_with}  # fmt: skip
        assert call.answered_at is not None and call.invite_sent_at is not None
        waited = call.answered_at - call.invite_sent_at
        try:
            greeted = await call.wait_for_voice(within=30)
            await call.wait_agent_done(quiet_s=1.0, within=40)  # the greeting, or the busy line and tone
        except CallFailed:
            return {"number": _number(n), "answered": True, "wait_s": round(waited, 2), "greeted": False}
        call.say(f"Hi, this is caller number {n}. Please call me back about my leaking sink.")
        with contextlib.suppress(CallFailed):
            await call.wait_ended(within=max(0.0, greeted + talk_s - time.time()))  # their message taken
        if call.ended_by is None:
            await call.hangup()
        return {"number": _number(n), "answered": True, "wait_s": round(waited, 2), "greeted": True,
                "ended_by": call.ended_by}  # fmt: skip


async def _outcomes(dsn: str, callers: list[dict[str, Any]]) -> None:
    """Each answered caller's call row as the worker finalised it: a call, or a message for a full fleet."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        for c in callers:
            if not c["answered"]:
                continue
            for _ in range(100):  # the job writes the row as it ends, a moment after the caller's BYE
                row = await (await conn.execute(
                    "SELECT c.outcome, c.end_reason, count(m.id) FROM calls c LEFT JOIN messages m ON m.call_id = c.id"
                    " WHERE c.caller_number = %s AND c.ended_at IS NOT NULL GROUP BY c.id", (c["number"],))).fetchone()  # fmt: skip
                if row is not None:
                    break
                await asyncio.sleep(0.2)
            c["outcome"], c["end_reason"], c["messages"] = row if row else (None, None, 0)


async def main(
    calls: int, slots: int, talk_s: float, overflow: int | None, overflow_after_s: float
) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="busy-bench-"))
    try:
        async with migrated_database("busy") as dsn, RealtimeSimulator(model_delay_ms=MODEL_DELAY_MS) as sim:
            sim.add_script(DEFAULT_KEY, [{"say": LINE}] * (2 * calls + 5))  # the greeting, the answer
            env = {"LOG_LEVEL": "INFO", "WORKER_MAX_CALLS": str(slots), "OVERFLOW_AFTER_SECONDS": str(overflow_after_s),
                   **({"WORKER_OVERFLOW_CALLS": str(overflow)} if overflow is not None else {})}  # fmt: skip
            with running_stack(run_dir) as stack, receptionist_worker(
                stack, agent_name=AGENT_NAME, openai_base_url=sim.base_url, database_url=dsn,
                log=run_dir / "worker.log", extra_env=env, within=180,
            ):  # fmt: skip
                load = _load()
                cpu_before = _worker_cpu_s()
                callers = await asyncio.gather(*(_caller(stack, n, talk_s) for n in range(calls)))
                await _outcomes(dsn, callers)
                return {
                    "what": f"{calls} sipp callers ringing together at one worker taking {slots} calls "
                            f"(start mode), each staying {talk_s} s after its greeting and saying one sentence; "
                            "livekit-server + livekit-sip on loopback, the Realtime simulator",
                    "calls": calls, "slots": slots, "talk_s": talk_s,
                    "overflow": "default" if overflow is None else overflow, "overflow_after_s": overflow_after_s,
                    "callers": callers, "worker_cpu_s": round(_worker_cpu_s() - cpu_before, 1),
                    "load_before": load, "load_after": _load(),
                }  # fmt: skip
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=6, help="callers ringing together")
    parser.add_argument("--slots", type=int, default=3, help="the worker's WORKER_MAX_CALLS")
    parser.add_argument("--talk", type=float, default=6.0, help="seconds each caller stays after its greeting")
    parser.add_argument("--overflow", default="default",
                        help="the worker's WORKER_OVERFLOW_CALLS (0: callers past the slots may hear busy)")
    parser.add_argument("--overflow-after", type=float, default=20.0, help="OVERFLOW_AFTER_SECONDS")
    parser.add_argument("--name", default="busy_fleet", help="the results file's name in bench/results")
    args = parser.parse_args()
    overflow = None if args.overflow == "default" else int(args.overflow) if args.overflow.isdigit() else -1
    if args.calls < 1 or args.slots < 1 or args.talk < 0 or overflow == -1 or not 3 <= args.overflow_after <= 120:
        parser.error("--calls and --slots must be at least 1, --talk at least 0, --overflow a count or "
                     "'default', --overflow-after 3 to 120")  # fmt: skip
    result = asyncio.run(main(args.calls, args.slots, args.talk, overflow, args.overflow_after))
    path = write(args.name, result, quick=False)
    answered = [c for c in result["callers"] if c["answered"]]
    messages = [c for c in answered if c.get("end_reason") == "all_lines_busy" or c.get("messages")]
    print(f"{len(answered) - len(messages)} of {args.calls} callers answered as calls ({args.slots} slots), "
          f"{len(messages)} left a message ({sum(1 for c in messages if c.get('messages'))} kept), "
          f"{args.calls - len(answered)} refused: "
          + ", ".join(f"{c.get('ended_by')} {c.get('sip_status') or ''}".strip()
                      for c in result["callers"] if not c["answered"]))  # fmt: skip
    for label, group in (("calls", [c for c in answered if c not in messages]), ("messages", messages)):
        waits = sorted(c["wait_s"] for c in group)
        if waits:
            print(f"INVITE to 200 OK, {label}: p50 {statistics.median(waits):.2f} s, max {waits[-1]:.2f} s; each {waits}")
    print(f"worker CPU over the run {result['worker_cpu_s']} s; load {result['load_before']} -> "
          f"{result['load_after']}\n\nwrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli()
