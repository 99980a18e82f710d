"""Read-side view of what a call left in Postgres, as plain dicts: scenarios are graded on this state."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.range import Range
from psycopg_pool import AsyncConnectionPool

# table -> (column that links it to a call, ordering)
_TABLES: dict[str, tuple[str, str]] = {
    "calls": ("id", "started_at, id"),
    "transcript_turns": ("call_id", "call_id, seq"),
    "tool_calls": ("call_id", "call_id, seq"),
    "appointments": ("call_id", "created_at, id"),
    "leads": ("call_id", "created_at, id"),
    "messages": ("call_id", "created_at, id"),
    "violations": ("call_id", "created_at, id"),
    "call_events": ("call_id", "call_id, seq"),
}
# tables without a business column are reached through their call
_THROUGH_CALLS = {"transcript_turns", "tool_calls", "violations", "call_events"}


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, uuid.UUID):
            out[key] = str(value)
        elif isinstance(value, Range):
            out["start"], out["end"] = value.lower, value.upper
        else:
            out[key] = value
    return out


async def snapshot(
    pool: AsyncConnectionPool,
    call_id: uuid.UUID | str | None = None,
    business: str | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Rows per table (calls, transcript_turns, tool_calls, appointments, leads, messages, violations,
    call_events).

    Filtered by call and/or business; uuids become strings, an appointment's range becomes start/end
    (aware datetimes). Appointments a call cancelled or rescheduled count as that call's too.
    """
    result: dict[str, list[dict[str, Any]]] = {}
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        for table, (call_column, order) in _TABLES.items():
            where: list[str] = []
            params: list[Any] = []
            if call_id is not None:
                if table == "appointments":
                    where.append("(call_id = %s OR updated_by_call = %s)")
                    params += [call_id, call_id]
                else:
                    where.append(f"{call_column} = %s")
                    params.append(call_id)
            if business is not None:
                if table in _THROUGH_CALLS:
                    where.append("call_id IN (SELECT id FROM calls WHERE business = %s)")
                else:
                    where.append("business = %s")
                params.append(business)
            sql = f"SELECT * FROM {table}"
            if where:
                sql += " WHERE " + " AND ".join(where)
            await cur.execute(sql + f" ORDER BY {order}", params)
            result[table] = [_plain(r) for r in await cur.fetchall()]
    return result
