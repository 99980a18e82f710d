"""`receptionist report`: calls, bookings, hand-offs, quality flags and cost over a window, as text,
JSON or one HTML page."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from agent.commands.database import business_name, current_database
from agent.commands.refused import Refused


def show_report(args: argparse.Namespace) -> int:
    from agent.quality_report import ReportArgsError, as_html, as_text, window
    from agent.store.db import open_pool
    from agent.store.kpis import business_kpis

    try:
        start, end = window(args.since, args.from_, args.to)
    except ReportArgsError as e:
        raise Refused(str(e)) from None
    settings = current_database()
    tz = "UTC"
    if args.business:
        # the business's own clock for "by hour" and "per day"; its name as the brain spells it
        args.business, tz = business_name(settings, args.business)

    async def gather() -> dict[str, Any]:
        # the pool's 5 s statement limit is for callers waiting; a report over months may take longer;
        # three connections read the figures side by side from one snapshot (store/kpis.py)
        pool = await open_pool(
            settings.database_url, min_size=1, max_size=3, statement_timeout_ms=120_000
        )
        try:
            return await business_kpis(pool, start=start, end=end, business=args.business, tz=tz)
        finally:
            await pool.close()

    kpis = asyncio.run(gather())
    if args.html:
        Path(args.html).write_text(as_html(kpis), encoding="utf-8")
        print(f"wrote {args.html}: {kpis['calls']} calls")
    elif args.json:
        print(json.dumps(kpis, indent=2))
    else:
        print(as_text(kpis))
    return 0
