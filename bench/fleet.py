"""Three receptionist workers on the local phone stack (livekit-server, livekit-sip, Redis, Postgres,
the Realtime simulator), answering real SIP calls placed with sipp: time to greeting and the response
gap the caller hears, with every replica up, after one is killed mid-call (SIGKILL), and with one
drained (SIGTERM) as well.

Each phase places `--calls` calls at once; in each, after the greeting the caller says `--turns` short
sentences (espeak-ng), each after the agent has finished speaking, and the gap is end of the caller's
audio -> first loud agent packet back at the caller, the simulator's model delay included. The kill
phase kills the replica hosting the most calls while they are up, and measures the survivors' turns
and a new wave of calls on the two left; the drain phase sends SIGTERM to one more, and the last
replica takes the next wave.

In the first phase, the turns' CPU is measured per call; after them the calls are held for 20 s with
both sides silent (RTP flowing both ways, as on a phone line), and that CPU is printed per call too:
the workers' processes, livekit-sip and livekit-server, and a call's job process by thread, with its memory.

`python -m bench.fleet [--calls 4] [--turns 3]`; writes bench/results/fleet.json (commit, date, CPU
calibration, load average before and after each phase).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil

from agent.live import LiveState
from bench.report import table, write
from simulator.postgres import migrated_database
from simulator.server import DEFAULT_KEY, RealtimeSimulator
from tests.fixtures.stack import PhoneStack, running_stack
from tests.phone.harness import Call, CallFailed, place_call
from tests.phone.worker import receptionist_worker

REPLICAS = 3
MODEL_DELAY_MS = 300
PLUMBING = "+15035550100"
AGENT_NAME = "receptionist-fleet-bench"
LINE = "Thanks for calling Rose City Plumbing, this is the AI assistant. How can I help?"
HOLD_S = 20.0  # the silent hold whose CPU is measured
QUESTIONS = ["Are you open on Saturday?", "How much is a drain cleaning?", "Do you serve Gresham?"]


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(ttg: list[float], gaps: list[float], failed: int) -> dict[str, Any]:
    return {
        "calls": len(ttg) + failed, "failed": failed,
        "greeting_ms": {"p50": statistics.median(ttg) if ttg else None, "p95": _pct(ttg, 0.95),
                        "max": max(ttg, default=None), "all": [round(x) for x in ttg]},
        "gap_ms": {"n": len(gaps), "p50": statistics.median(gaps) if gaps else None, "p99": _pct(gaps, 0.99),
                   "max": max(gaps, default=None), "all": [round(x) for x in gaps]},
    }  # fmt: skip


async def _first_voice_after(call: Call, since: float, within: float = 30) -> float:
    """When the first loud packet after `since` (time.time()) arrived: sampled every 5 ms, well under a
    20 ms packet."""
    assert call.rtp is not None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        last = call.rtp.last_voice_at
        if last is not None and last > since:
            return last
        if call.ended_by is not None:
            raise CallFailed(f"the call ended before the agent answered ({call.ended_by})")
        await asyncio.sleep(0.005)
    raise CallFailed(f"no answer within {within}s")


async def _turns(call: Call, turns: int, gaps: list[float]) -> None:
    for n in range(turns):
        await call.wait_agent_done(quiet_s=1.0, within=60)
        call.say(QUESTIONS[n % len(QUESTIONS)])
        await call.wait_sent()
        spoke_until = time.time()
        gaps.append((await _first_voice_after(call, spoke_until) - spoke_until) * 1000)


async def _wave(
    stack: PhoneStack, first: int, calls: int, held: contextlib.AsyncExitStack
) -> tuple[list[Call], list[float], list[str]]:
    """`calls` calls at once: those answered (still up), their times to greeting, why the others failed."""
    placed = [await held.enter_async_context(place_call(stack, to=PLUMBING, from_=f"+1503555{first + i:04d}",
                                                        max_seconds=900)) for i in range(calls)]  # fmt: skip
    results = await asyncio.gather(*(c.wait_for_voice(within=120) for c in placed), return_exceptions=True)
    up, ttg, failures = [], [], []
    for call, got in zip(placed, results, strict=True):
        if isinstance(got, BaseException):
            failures.append(f"{call.from_}: {type(got).__name__}: {str(got)[:300]}")
        else:
            up.append(call)
            ttg.append((got - call.invite_sent_at) * 1000)
    return up, ttg, failures


async def _talk(calls: list[Call], turns: int) -> tuple[list[float], list[str]]:
    """The gaps of every call's turns, and why each call whose turns stopped short did (its caller, the
    error, and who ended the call if it ended)."""
    gaps: list[float] = []
    done = await asyncio.gather(*(_turns(c, turns, gaps) for c in calls), return_exceptions=True)
    return gaps, [f"{c.from_}: {type(d).__name__}: {str(d)[:160]} (ended_by={c.ended_by})"
                  for c, d in zip(calls, done, strict=True) if isinstance(d, BaseException)]  # fmt: skip


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def _hosts(live: LiveState, calls: list[Call]) -> dict[str, str]:
    """caller number -> the LiveKit worker id hosting that call, from the live call registry."""
    wanted = {c.from_ for c in calls}
    listed: dict[str, str] = {}
    for _ in range(100):
        listed = {a.caller: a.worker for a in await live.active_calls() if a.caller in wanted}
        if set(listed) == wanted:
            break
        await asyncio.sleep(0.2)
    return listed


def _cpu_seconds(workers: list[Any]) -> dict[str, float]:
    """CPU seconds so far (user + system) of the workers' processes (main and job processes) and of
    livekit-sip and livekit-server."""
    seen: dict[str, float] = {"workers": 0.0, "livekit-sip": 0.0, "livekit-server": 0.0}
    for proc in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["name"] in ("livekit-sip", "livekit-server"):
                seen[proc.info["name"]] += sum(proc.cpu_times()[:2])
    for worker in workers:
        with contextlib.suppress(psutil.Error):
            main_proc = psutil.Process(worker.pid)
            for proc in [main_proc, *main_proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    seen["workers"] += sum(proc.cpu_times()[:2])
    return seen


def _per_call(before: dict[str, float], after: dict[str, float], elapsed: float, calls: int) -> dict[str, float]:
    """Each group's CPU between two `_cpu_seconds` readings, as a share of one core per call."""
    return {k: round((after[k] - before[k]) / elapsed / max(calls, 1), 4) for k in after}


def _thread_seconds(pids: list[int]) -> dict[tuple[int, str], float]:
    """(thread id, thread name) -> CPU seconds, over these processes' threads. Python's own threads (the
    event loop, the recorder's encoder, the VAD's executor) are all named "python"; WebRTC's and the
    Rust SDK's have names of their own."""
    tick = os.sysconf("SC_CLK_TCK")
    seen: dict[tuple[int, str], float] = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError, IndexError, ValueError):
                    name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
                    fields = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
                    seen[(int(tid), name)] = (int(fields[11]) + int(fields[12])) / tick
    return seen


def _on_calls(workers: list[Any], sim_port: int) -> list[int]:
    """The job processes that hold a call: each has a connection to the model."""
    found = []
    for worker in workers:
        with contextlib.suppress(psutil.Error):
            for proc in psutil.Process(worker.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if any(c.raddr and c.raddr.port == sim_port for c in proc.net_connections("tcp")):
                        found.append(proc.pid)
    return found


async def _held_cpu(workers: list[Any], calls: int, sim_port: int, seconds: float = HOLD_S) -> dict[str, Any]:
    """What calls cost while both sides are silent (a caller thinking, the agent waiting), as a share of
    one core per call: RTP flows both ways, as on a phone line, and nothing is said. Also where a call's
    own job process spends it, by thread name."""
    jobs = _on_calls(workers, sim_port)
    before, threads_before, t0 = _cpu_seconds(workers), _thread_seconds(jobs), time.monotonic()
    await asyncio.sleep(seconds)
    after, threads_after, elapsed = _cpu_seconds(workers), _thread_seconds(jobs), time.monotonic() - t0
    by_name: Counter[str] = Counter()
    for key, spent in threads_after.items():
        by_name[key[1]] += spent - threads_before.get(key, spent)
    per_job = {name: round(spent / elapsed / max(len(jobs), 1), 4) for name, spent in by_name.most_common()}
    uss, rss = [], []
    for pid in jobs:
        with contextlib.suppress(psutil.Error):
            info = psutil.Process(pid).memory_full_info()
            uss.append(info.uss / 2**20)
            rss.append(info.rss / 2**20)
    return {"seconds": round(elapsed, 1), "calls": calls,
            "cores": {k: round((after[k] - before[k]) / elapsed, 3) for k in after},
            "core_per_call": _per_call(before, after, elapsed, calls),
            "job_processes": len(jobs), "job_process_core_by_thread": per_job,
            "job_process_mb": {"uss_median": round(statistics.median(uss), 1) if uss else None,
                               "rss_median": round(statistics.median(rss), 1) if rss else None}}  # fmt: skip


async def main(calls: int, turns: int) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    phases: dict[str, Any] = {}
    async with migrated_database("fleet") as dsn:
        async with RealtimeSimulator(model_delay_ms=MODEL_DELAY_MS) as sim:
            sim.add_script(DEFAULT_KEY, [{"say": LINE}] * (3 * calls * (turns + 2) + 20))
            with running_stack(run_dir) as stack, contextlib.ExitStack() as workers:
                procs, ids = [], {}
                for n in range(REPLICAS):
                    log = run_dir / f"worker-{n}.log"
                    proc = workers.enter_context(receptionist_worker(
                        stack, agent_name=AGENT_NAME, openai_base_url=sim.base_url, database_url=dsn, log=log,
                        extra_env={"LOG_LEVEL": "INFO", "RECORDINGS_DIR": str(run_dir / "recordings")}, within=180,
                    ))  # fmt: skip
                    found = re.search(r'registered worker.*?"id": "(AW_\w+)"', log.read_text())
                    procs.append(proc)
                    ids[found.group(1) if found else f"unknown-{n}"] = proc
                live = LiveState(stack.redis_url, op_timeout=5)
                try:
                    async with contextlib.AsyncExitStack() as held:
                        load = _load()
                        up, ttg, failures = await _wave(stack, 1000, calls, held)
                        talk_before, talk_t0 = _cpu_seconds(procs), time.monotonic()
                        gaps, lost = await _talk(up, turns)
                        talk_after, talk_s = _cpu_seconds(procs), time.monotonic() - talk_t0
                        talking = {"seconds": round(talk_s, 1), "calls": len(up),
                                   "core_per_call": _per_call(talk_before, talk_after, talk_s, len(up))}
                        held_cpu = await _held_cpu(procs, len(up), sim.port)
                        phases["all up"] = {**_summary(ttg, gaps, len(failures)), "turns_failed": len(lost), "talk_failures": lost,
                                            "held": held_cpu, "talking": talking, "load_before": load, "load_after": _load()}  # fmt: skip

                        # the replica with most of these calls dies while they are up
                        load = _load()
                        hosts = await _hosts(live, up)
                        busiest, _ = Counter(hosts.values()).most_common(1)[0]
                        victim = ids.get(busiest, procs[0])
                        victim.send_signal(signal.SIGKILL)
                        # its callers are lost (a survivor ends their legs); the others talk on
                        survivors = [c for c in up if hosts.get(c.from_) != busiest]
                        later, ttg, failures = await _wave(stack, 2000, calls, held)
                        gaps, lost = await _talk(survivors + later, turns)
                        phases["one killed"] = {**_summary(ttg, gaps, len(failures)), "turns_failed": len(lost), "talk_failures": lost,
                                                "calls_lost_with_it": len(up) - len(survivors),
                                                "load_before": load, "load_after": _load()}  # fmt: skip
                        for c in up + later:
                            await c.hangup()

                        # one more drained: the last replica takes the next wave
                        load = _load()
                        drained = next(p for p in procs if p is not victim)
                        drained.send_signal(signal.SIGTERM)
                        last, ttg, failures = await _wave(stack, 3000, calls, held)
                        gaps, lost = await _talk(last, turns)
                        phases["killed + drained"] = {**_summary(ttg, gaps, len(failures)), "turns_failed": len(lost), "talk_failures": lost,
                                                      "load_before": load, "load_after": _load()}  # fmt: skip
                finally:
                    await live.aclose()
    return {
        "what": "3 worker replicas (start mode, shipped defaults) behind livekit-server + livekit-sip on "
                "loopback; sipp callers; greeting = INVITE sent -> first loud greeting RTP at the caller; "
                "gap = end of the caller's sentence -> first loud reply RTP",
        "model_delay_ms": MODEL_DELAY_MS, "calls_per_wave": calls, "turns_per_call": turns, "phases": phases,
    }  # fmt: skip


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4, help="calls placed at once in each phase")
    parser.add_argument("--turns", type=int, default=3, help="caller sentences per call")
    parser.add_argument("--quick", action="store_true", help="2 calls, 1 turn (a smoke run)")
    args = parser.parse_args()
    calls, turns = (2, 1) if args.quick else (args.calls, args.turns)
    result = asyncio.run(main(calls, turns))
    path = write("fleet", result, quick=args.quick)
    rows = []
    for name, p in result["phases"].items():
        g, gap = p["greeting_ms"], p["gap_ms"]
        rows.append([name, p["calls"], p["failed"], g["p50"], g["p95"], gap["n"], gap["p50"], gap["p99"],
                     p["turns_failed"], " / ".join(map(str, p["load_before"]))])  # fmt: skip
    table(f"fleet (model delay {MODEL_DELAY_MS} ms included; ms)",
          ["phase", "calls", "refused", "greet p50", "greet p95", "turns", "gap p50", "gap p99", "turns lost",
           "load 1/5/15 min"], rows)  # fmt: skip
    held = result["phases"]["all up"]["held"]
    print(f"\nsilent hold, {held['calls']} calls for {held['seconds']} s, share of one core per call: "
          + ", ".join(f"{k} {100 * v:.1f}%" for k, v in held["core_per_call"].items()))
    talking = result["phases"]["all up"]["talking"]
    print(f"talking (the first phase's turns), {talking['calls']} calls for {talking['seconds']} s, per call: "
          + ", ".join(f"{k} {100 * v:.1f}%" for k, v in talking["core_per_call"].items()))
    print(f"a call's own job process ({held['job_processes']} measured), by thread: "
          + ", ".join(f"{k} {100 * v:.1f}%" for k, v in held["job_process_core_by_thread"].items() if v >= 0.001)
          + f"; its own memory (USS) {held['job_process_mb']['uss_median']} MB, RSS {held['job_process_mb']['rss_median']} MB")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    cli()
