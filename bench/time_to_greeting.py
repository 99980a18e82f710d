"""Time to greeting on the local phone stack: INVITE sent by the caller -> first non-silent RTP packet
of the greeting at the caller, through livekit-sip, livekit-server and the receptionist worker, with the
simulator's model delay stated next to it. 20 calls in a row, then bursts of calls at once (10, then
20 by default), each burst once the worker has settled; a call the stack refuses (SIP 486: no worker
had room) or that never hears a greeting is counted as rejected.

The greeting is the brain's, played from the model's own audio kept by an earlier call (the shipped
default, GREETING_AUDIO: one call greets through the model first, unmeasured) or, with `--greeting
model`, asked of the model on every call.

`python -m bench.time_to_greeting [--calls 20] [--bursts 10 20] [--idle N] [--executor thread]
[--greeting kept|model] [--max-calls N|default] [--name NAME]`; writes bench/results/time_to_greeting.json (or NAME.json) with the commit, the date, a CPU calibration and the load average
before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.brain import load_brain
from agent.settings import Settings
from bench.report import write
from simulator.postgres import migrated_database
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.stack import ROOT, running_stack
from tests.phone.harness import place_call
from tests.phone.worker import receptionist_worker

MODEL_DELAY_MS = 300
SETTLE_S = 8.0
# the model says the brain's greeting word for word, as told, so it can be kept
GREETING = load_brain(ROOT / "brains" / "plumbing.yaml").greeting_text()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _one_call(stack: Any, n: int) -> float:
    caller = f"+1503555{2000 + n:04d}"
    async with place_call(stack, to="+15035550100", from_=caller, audio_script=[]) as call:
        await call.wait_answered(within=60)
        voice = await call.wait_for_voice(within=30)
        await call.hangup()
    return (voice - call.invite_sent_at) * 1000


async def _keep_the_greeting(stack: Any, directory: Path, log: Path) -> None:
    """One call that hears the model's greeting to its end, so the worker keeps it for the calls after."""
    async with place_call(stack, to="+15035550100", from_="+15035551999", audio_script=[]) as call:
        await call.wait_agent_done(within=60)
        await call.hangup()
    deadline = time.monotonic() + 15
    while not await asyncio.to_thread(lambda: list(directory.glob("*.wav"))):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the first call's greeting was not kept: see {log}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(SETTLE_S)  # its process gone, the warm pool full again


async def _call_or_rejection(stack: Any, n: int) -> float | str:
    try:
        return await _one_call(stack, n)
    except Exception as e:  # noqa: BLE001 - a refused or silent call is a result here, not a crash
        why = str(e)
        if "rejected_with=" in why and "rejected_with=None" not in why:
            return "refused: SIP " + why.split("rejected_with=")[1].split()[0]
        if "no voice" in why:
            return "answered, no greeting within 30 s"
        return f"{type(e).__name__}: {why.split('(to=')[0].strip()}"[:120]


async def _burst(stack: Any, size: int, first: int) -> dict[str, Any]:
    started = time.monotonic()
    results = await asyncio.gather(*(_call_or_rejection(stack, first + i) for i in range(size)))
    wall_s = time.monotonic() - started
    greeted = [r for r in results if isinstance(r, float)]
    return {
        "n": size, "rejected": size - len(greeted), "why": sorted({r for r in results if isinstance(r, str)}),
        "p50": statistics.median(greeted) if greeted else None, "p95": _pct(greeted, 0.95) if greeted else None,
        "max": max(greeted) if greeted else None, "wall_s": round(wall_s, 1), "all": [round(x) for x in greeted],
    }  # fmt: skip


def _warm_pool_memory() -> dict[str, Any]:
    """USS and RSS (MB) of the worker's idle job processes: what each warm process costs (USS: its own
    pages; the rest it shares with the forkserver it was forked from)."""
    import psutil

    me = psutil.Process()
    worker = next(p for p in me.children() if "agent.worker" in " ".join(p.cmdline()))
    family = worker.children(recursive=True)
    forkserver = next((p for p in family if "forkserver" in " ".join(p.cmdline())), None)
    if forkserver is None:  # the thread executor: calls run in the worker's own process
        m = worker.memory_full_info()
        return {"processes": 0, "worker_uss_mb": round(m.uss / 2**20), "worker_rss_mb": round(m.rss / 2**20)}
    idle = [p.memory_full_info() for p in family if p.ppid() == forkserver.pid]
    return {"processes": len(idle), "uss_mb": [round(m.uss / 2**20) for m in idle],
            "rss_mb": [round(m.rss / 2**20) for m in idle]}  # fmt: skip


def _worker_cpu_s() -> float:
    """CPU seconds the worker has used so far: its main process, the forkserver and every job process
    (those that ended are counted in the forkserver, which reaps them)."""
    import psutil

    me = psutil.Process()
    worker = next(p for p in me.children() if "agent.worker" in " ".join(p.cmdline()))
    total = 0.0
    for p in [worker, *worker.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
            if "forkserver" in " ".join(p.cmdline()):
                total += t.children_user + t.children_system
    return total


async def main(
    calls: int, bursts: list[int], idle: int, executor: str, greeting: str, max_calls: int | None
) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="ttg-"))
    # other work on a shared machine moves these figures: the load says how much there was
    load_before = [round(x, 2) for x in os.getloadavg()]
    async with migrated_database("ttg") as dsn:
        async with RealtimeSimulator(model_delay_ms=MODEL_DELAY_MS) as sim:
            # every call asks for one greeting; give each its own step
            sim.add_script(DEFAULT_KEY, [{"say": GREETING}] * (calls + sum(bursts) + 5))
            with running_stack(run_dir) as stack, receptionist_worker(
                stack, agent_name="receptionist-bench", openai_base_url=sim.base_url,
                database_url=dsn, log=run_dir / "worker.log",
                # by default a burst is offered to one worker whole: more slots than the burst, as every
                # earlier run had; `--max-calls default` leaves the shipped default (5 a core), so the
                # callers past the slots ring until a call ends (agent/live/waiting_calls.py)
                extra_env={"WORKER_IDLE_PROCESSES": str(idle), "WORKER_JOB_EXECUTOR": executor,
                           "RECORDINGS_DIR": str(run_dir / "recordings"),
                           **({"WORKER_MAX_CALLS": str(max_calls)} if max_calls is not None else {}),
                           "GREETING_AUDIO": str(greeting == "kept").lower(),
                           "GREETING_AUDIO_DIR": str(run_dir / "greetings")},
            ):  # fmt: skip
                await asyncio.sleep(SETTLE_S)  # the warm pool filled
                if greeting == "kept":
                    await _keep_the_greeting(stack, run_dir / "greetings", run_dir / "worker.log")
                memory = _warm_pool_memory()
                sequential = []
                cpu_before = _worker_cpu_s()
                for i in range(calls):
                    sequential.append(await _one_call(stack, i))
                    await asyncio.sleep(1.0)  # let the worker warm its next process, as between real calls
                # a greeting-only call: the process that takes it, the room, the session, the greeting
                cpu_per_call = (_worker_cpu_s() - cpu_before) / calls
                concurrent = []
                for n, size in enumerate(bursts):
                    # as between two rushes of callers: the last burst's calls ended, its processes gone
                    await asyncio.sleep(SETTLE_S)
                    cpu_before = _worker_cpu_s()
                    burst = await _burst(stack, size, 100 * (n + 1))
                    burst["worker_cpu_s_per_call"] = round((_worker_cpu_s() - cpu_before) / size, 2)
                    concurrent.append(burst)
    result = {
        "load_average": {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]},
        "model_delay_ms": MODEL_DELAY_MS,
        "what": "INVITE sent -> first non-silent greeting RTP at the caller (ms), livekit-server 1.13.5 + "
                f"livekit-sip 1.8.0 + worker (start mode, {idle} warm processes) on loopback",
        "idle_processes": idle,
        "worker_max_calls": max_calls if max_calls is not None else "the default (5 a core)",
        "job_executor": executor,
        "greeting": greeting,
        "warm_pool_memory": memory,
        "worker_cpu_s_per_call": round(cpu_per_call, 2),
        "sequential": {"n": calls, "p50": statistics.median(sequential), "p95": _pct(sequential, 0.95),
                       "max": max(sequential), "all": [round(x) for x in sequential]},
        "bursts": concurrent,
    }  # fmt: skip
    return result


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--bursts", type=int, nargs="*", default=[10, 20])
    parser.add_argument("--idle", type=int, default=Settings.model_fields["worker_idle_processes"].default,
                        help="WORKER_IDLE_PROCESSES for the worker (default: the shipped default)")  # fmt: skip
    parser.add_argument("--executor", choices=["process", "thread"], default="process",
                        help="WORKER_JOB_EXECUTOR for the worker: a process per call, or a thread")  # fmt: skip
    parser.add_argument("--greeting", choices=["kept", "model"], default="kept",
                        help="the greeting from the audio an earlier call kept (GREETING_AUDIO, the default), "
                        "or asked of the model on every call")  # fmt: skip
    parser.add_argument("--max-calls", default=None,
                        help="WORKER_MAX_CALLS for the worker: a number, or `default` for the shipped default "
                        "(5 a core); left out, 25 or the largest burst, so a burst is taken whole")  # fmt: skip
    parser.add_argument("--name", default="time_to_greeting", help="the results file's name in bench/results")
    args = parser.parse_args()
    if args.max_calls is None:
        max_calls: int | None = max([25, *args.bursts])
    elif args.max_calls == "default":
        max_calls = None
    elif args.max_calls.isdigit() and int(args.max_calls) > 0:
        max_calls = int(args.max_calls)
    else:
        parser.error(f"--max-calls: a positive number or `default`, not {args.max_calls!r}")
    result = asyncio.run(main(args.calls, args.bursts, args.idle, args.executor, args.greeting, max_calls))
    # the commit, the date and a CPU calibration beside the figures (bench/report.py)
    write(args.name, result, quick=False)
    s = result["sequential"]
    m = result["warm_pool_memory"]
    how = ("the greeting kept by an earlier call" if args.greeting == "kept"
           else f"the model's greeting, its {MODEL_DELAY_MS} ms delay included")  # fmt: skip
    if args.executor == "thread":
        print(f"time to greeting ({how}), calls in threads of the worker "
              f"(idle worker USS {m['worker_uss_mb']} MB, RSS {m['worker_rss_mb']} MB)")
    else:
        print(f"time to greeting ({how}), {args.idle} warm processes "
              f"(USS {m['uss_mb']} MB, RSS {m['rss_mb']} MB)")
    print(f"  {s['n']} in a row : p50 {s['p50']:.0f} ms  p95 {s['p95']:.0f} ms  max {s['max']:.0f} ms"
          f"  (worker CPU {result['worker_cpu_s_per_call']} s a call, its process's start included)")
    for b in result["bursts"]:
        figures = f"p50 {b['p50']:.0f} ms  p95 {b['p95']:.0f} ms  max {b['max']:.0f} ms" if b["p50"] else "none greeted"
        print(f"  {b['n']} at once  : {figures}  rejected {b['rejected']}  {b['why']}"
              f"  (worker CPU {b['worker_cpu_s_per_call']} s a call)")


if __name__ == "__main__":
    cli()
