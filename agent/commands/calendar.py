"""`receptionist calendar feed-url`: the owner's secret ICS feed URL."""

from __future__ import annotations

import argparse
import asyncio
import sys

from agent.commands.database import business_name, current_database, database_settings
from agent.commands.refused import Refused


def calendar_feed_url(args: argparse.Namespace) -> int:
    """`calendar feed-url`: the business's secret ICS feed URL, made on first use, replaced with --rotate."""
    from agent.store.calendar import feed_token
    from agent.store.db import open_pool

    settings = database_settings()
    business, _ = business_name(settings, args.business)
    current_database()

    async def token() -> str:
        pool = await open_pool(settings.database_url, min_size=1, max_size=1)
        try:
            return await feed_token(pool, business, rotate=args.rotate)
        finally:
            await pool.close()

    base = (args.base_url or settings.web_public_url).rstrip("/")
    if not base.startswith(("https://", "http://")):
        raise Refused(f"the console's address must start with https:// or http://, got {base!r}")
    print(f"{base}/calendar/{asyncio.run(token())}.ics")
    if args.rotate:
        print("the previous URL no longer works: subscribe again with this one", file=sys.stderr)
    return 0
