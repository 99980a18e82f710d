"""How fast notifications leave: the delay from a call recording an immediate notification's cause to
the receiver having it (the journal's write, a sender's poll, the delivery), and the outbox's
throughput with one and with three senders. Senders run with the default settings (polling every
0.5 s) against a local webhook receiver; Postgres is a throwaway local cluster with fsync on.
Prints a table and writes bench/results/outbox.json.

    python -m bench.outbox [--notifications 300] [--burst 5000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from agent.notify.channels import channels_from_settings
from agent.notify.sender import OutboxSender, sender_from_settings
from agent.settings import load_settings
from agent.store.db import migrate, open_pool
from agent.store.journal.events import NotificationQueued
from agent.store.journal.writer import CallJournal
from bench.report import table, write


class Receiver:
    """A webhook endpoint that notes when each delivery id first arrived (and counts repeats)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.repeats = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def _hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if body["id"] in self.arrived:
            self.repeats += 1
        else:
            self.arrived[body["id"]] = time.time()
        return web.Response(status=204)

    async def until(self, n: int, timeout: float = 600) -> None:
        async with asyncio.timeout(timeout):
            while len(self.arrived) < n:
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _notification(url: str, n: int) -> NotificationQueued:
    call_id = uuid.uuid4()
    return NotificationQueued(
        key=f"{call_id}/urgent_message/webhook:{url}/{n}", business="Rose City Plumbing", kind="urgent_message",
        channel="webhook", destination=url, call_id=call_id,
        payload={"version": 1, "kind": "urgent_message", "business": "Rose City Plumbing",
                 "business_number": "+15035550100", "summary": "Urgent message: the basement is flooding",
                 "call": {"id": str(call_id), "caller_number": "+14155550123"}, "detail": {}},
    )  # fmt: skip


async def _senders(dsn: str, count: int) -> tuple[list[OutboxSender], list[Any], asyncio.Event, list[asyncio.Task[None]]]:
    settings = load_settings(openai_api_key="unused", database_url=dsn, notify_webhook_secret="bench-secret")
    pools = [await open_pool(dsn, min_size=1, max_size=2, name=f"bench-sender-{i}") for i in range(count)]
    senders = [sender_from_settings(settings, p, channels_from_settings(settings, p)) for p in pools]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in senders]
    return senders, pools, stop, tasks


async def _stop(senders: list[OutboxSender], pools: list[Any], stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    await asyncio.gather(*tasks)
    for s, p in zip(senders, pools, strict=True):
        await s.aclose()
        await p.close()


def _ms(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=20, method="inclusive")
    return {"n": len(values), "p50_ms": round(statistics.median(values) * 1000, 1),
            "p95_ms": round(q[18] * 1000, 1), "max_ms": round(max(values) * 1000, 1)}  # fmt: skip


async def cause_to_delivery(dsn: str, n: int) -> dict[str, Any]:
    """Notifications recorded one by one, as calls end at random moments, with 3 senders running."""
    receiver = Receiver()
    await receiver.start()
    journal = CallJournal(dsn, Path(tempfile.mkdtemp(prefix="bench-outbox-spill-")))
    await journal.start()
    fleet = await _senders(dsn, 3)
    caused: dict[str, float] = {}
    rnd = random.Random(5)
    try:
        for i in range(n):
            event = _notification(receiver.url, i)
            caused[event.key] = time.time()
            journal.record(event)
            await asyncio.sleep(rnd.uniform(0, 0.1))
        await receiver.until(n)
    finally:
        await _stop(*fleet)
        await journal.aclose(timeout=30)
        await receiver.stop()
    delays = [receiver.arrived[k] - t for k, t in caused.items()]
    return {**_ms(delays), "repeats": receiver.repeats}


async def throughput(dsn: str, burst: int, senders: int) -> dict[str, Any]:
    """`burst` notifications already in the outbox, then `senders` senders start: how fast it empties."""
    receiver = Receiver()
    await receiver.start()
    journal = CallJournal(dsn, Path(tempfile.mkdtemp(prefix="bench-outbox-spill-")), batch_size=500)
    await journal.start()
    for i in range(burst):
        journal.record(_notification(receiver.url, i))
    assert await journal.flush(timeout=120)
    await journal.aclose(timeout=30)
    t = time.perf_counter()
    fleet = await _senders(dsn, senders)
    try:
        await receiver.until(burst)
    finally:
        await _stop(*fleet)
        await receiver.stop()
    elapsed = time.perf_counter() - t
    return {"notifications": burst, "senders": senders, "seconds": round(elapsed, 2),
            "per_second": round(burst / elapsed, 1), "repeats": receiver.repeats}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notifications", type=int, default=300, help="recorded one by one for the delay")
    parser.add_argument("--burst", type=int, default=5000, help="queued at once for the throughput")
    parser.add_argument("--quick", action="store_true", help="60 notifications and a burst of 1,000")
    args = parser.parse_args()
    n, burst = (60, 1000) if args.quick else (args.notifications, args.burst)

    from simulator.postgres import PgServer

    server = PgServer(durable=True)
    server.start()
    try:
        async def run() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for label, name in [("delay", "delay"), ("one sender", "one"), ("three senders", "three")]:
                dsn = server.create_database(f"outbox_bench_{name}")
                await migrate(dsn)
                if label == "delay":
                    out[label] = await cause_to_delivery(dsn, n)
                else:
                    out[label] = await throughput(dsn, burst, 1 if name == "one" else 3)
            return out

        results = asyncio.run(run())
    finally:
        server.destroy()
    d = results["delay"]
    table("immediate notification: cause recorded -> webhook received (3 senders, poll 0.5 s)",
          ["notifications", "p50 ms", "p95 ms", "max ms", "delivered twice"],
          [[d["n"], d["p50_ms"], d["p95_ms"], d["max_ms"], d["repeats"]]])  # fmt: skip
    table(f"outbox throughput, {burst:,} notifications queued at once", ["senders", "seconds", "per second",
          "delivered twice"], [[r["senders"], r["seconds"], r["per_second"], r["repeats"]]
                               for r in (results["one sender"], results["three senders"])])  # fmt: skip
    path = write("outbox", {**results, "targets": {"delay_p95_ms": 5000}}, quick=args.quick)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
