"""Numbers that texted STOP to one of our numbers: written by the inbound SMS webhook
(agent/notify/inbound.py), read before every SMS we send (agent/notify/channels.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg_pool import AsyncConnectionPool


@dataclass(frozen=True)
class OptOut:
    phone: str
    business_number: str
    keyword: str
    opted_out_at: datetime


async def opt_out(
    pool: AsyncConnectionPool, phone: str, business_number: str, keyword: str, at: datetime | None = None
) -> None:
    """`phone` wants no more texts from `business_number` (since `at`, now when not given); a repeated
    STOP keeps the first date."""
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO sms_opt_outs (phone, business_number, keyword, opted_out_at)"
            " VALUES (%s, %s, %s, coalesce(%s, now())) ON CONFLICT (phone, business_number) DO NOTHING",
            (phone, business_number, keyword, at),
        )


async def opt_in(pool: AsyncConnectionPool, phone: str, business_number: str, at: datetime | None = None) -> bool:
    """`phone` texted START (at `at`): texts may go to it again, unless it texted STOP after that (a
    START written late, after an outage, does not undo a newer STOP). Returns whether it had opted out."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "DELETE FROM sms_opt_outs WHERE phone = %s AND business_number = %s"
            " AND opted_out_at <= coalesce(%s, now())", (phone, business_number, at)
        )  # fmt: skip
        return cur.rowcount > 0


async def opted_out(pool: AsyncConnectionPool, phone: str, business_number: str) -> OptOut | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT phone, business_number, keyword, opted_out_at FROM sms_opt_outs"
            " WHERE phone = %s AND business_number = %s",
            (phone, business_number),
        )
        row = await cur.fetchone()
    return OptOut(*row) if row else None
