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
import os
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.fleet import AGENT_NAME, LINE, MODEL_DELAY_MS, PLUMBING, _load
from bench.report import write
from simulator.postgres import migrated_database
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.stack import PhoneStack, running_stack
from tests.phone.harness import CallFailed, place_call
from tests.phone.worker import receptionist_worker

RINGING_S = 30  # sip.provision's trunk ringing timeout: livekit-sip refuses a call not answered by then


async def _caller(stack: PhoneStack, n: int, talk_s: float) -> dict[str, Any]:
    async with place_call(stack, to=PLUMBING, from_=f"+1503555{4000 + n}", audio_script=[]) as call:
        try:
            await call.wait_answered(within=RINGING_S + 10)
        except CallFailed:
            return {"answered": False, "ended_by": call.ended_by, "sip_status": call.rejected_with}
        assert call.answered_at is not None and call.invite_sent_at is not None
        waited = call.answered_at - call.invite_sent_at
        try:
            await call.wait_for_voice(within=30)
        except CallFailed:
            return {"answered": True, "wait_s": round(waited, 2), "greeted": False}
        await asyncio.sleep(talk_s)
        await call.hangup()
        return {"answered": True, "wait_s": round(waited, 2), "greeted": True}


async def main(calls: int, slots: int, talk_s: float) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="busy-bench-"))
    try:
        async with migrated_database("busy") as dsn, RealtimeSimulator(model_delay_ms=MODEL_DELAY_MS) as sim:
            sim.add_script(DEFAULT_KEY, [{"say": LINE}] * (calls + 5))
            with running_stack(run_dir) as stack, receptionist_worker(
                stack, agent_name=AGENT_NAME, openai_base_url=sim.base_url, database_url=dsn,
                log=run_dir / "worker.log", extra_env={"LOG_LEVEL": "INFO", "WORKER_MAX_CALLS": str(slots)},
                within=180,
            ):  # fmt: skip
                load = _load()
                callers = await asyncio.gather(*(_caller(stack, n, talk_s) for n in range(calls)))
                return {
                    "what": f"{calls} sipp callers ringing together at one worker taking {slots} calls "
                            f"(start mode), each hanging up {talk_s} s after its greeting; livekit-server + "
                            "livekit-sip on loopback, the Realtime simulator",
                    "calls": calls, "slots": slots, "talk_s": talk_s, "callers": callers,
                    "load_before": load, "load_after": _load(),
                }  # fmt: skip
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=6, help="callers ringing together")
    parser.add_argument("--slots", type=int, default=3, help="the worker's WORKER_MAX_CALLS")
    parser.add_argument("--talk", type=float, default=6.0, help="seconds each caller stays after its greeting")
    parser.add_argument("--name", default="busy_fleet", help="the results file's name in bench/results")
    args = parser.parse_args()
    if args.calls < 1 or args.slots < 1 or args.talk < 0:
        parser.error("--calls and --slots must be at least 1, --talk at least 0")
    result = asyncio.run(main(args.calls, args.slots, args.talk))
    path = write(args.name, result, quick=False)
    answered = [c for c in result["callers"] if c["answered"]]
    waits = sorted(c["wait_s"] for c in answered)
    print(f"{len(answered)} of {args.calls} callers answered ({args.slots} slots), "
          f"{args.calls - len(answered)} refused: "
          + ", ".join(f"{c.get('ended_by')} {c.get('sip_status') or ''}".strip()
                      for c in result["callers"] if not c["answered"]))  # fmt: skip
    if waits:
        print(f"INVITE to 200 OK: p50 {statistics.median(waits):.2f} s, max {waits[-1]:.2f} s; each {waits}")
    print(f"load {result['load_before']} -> {result['load_after']}\n\nwrote {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli()
