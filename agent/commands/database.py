"""What the database commands share: settings with only DATABASE_URL required, the check that the
schema is current, a business's name as its brain spells it; and `receptionist db migrate`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from agent.commands.refused import Refused


def database_settings() -> Any:
    """The settings of a command that needs only the database: one line and exit 2 when it is missing."""
    from agent.settings import SettingsError, load_settings

    try:
        settings = load_settings(openai_api_key="unused-for-database-commands")
    except SettingsError as e:
        raise Refused(str(e)) from None
    if not settings.database_url:
        raise Refused("missing required setting DATABASE_URL")
    if settings.database_pgbouncer:
        # transaction pooling loses what these rely on across statements: the console's LISTEN, the
        # advisory locks of migrations and retention, a report's longer statement timeout
        raise Refused(
            "DATABASE_PGBOUNCER is for workers: receptionist commands need a session of their own; "
            "point DATABASE_URL at Postgres (or a session-pooled PgBouncer database) and unset it"
        )
    return settings


def current_database(*, outage_ok: bool = False) -> Any:
    """Database-only settings, refused in one line when Postgres is unreachable or behind this code's
    schema (unlike a worker, a command has nothing to do without it). `outage_ok`: a command that
    serves through an outage (`notify inbound`) goes on when Postgres cannot be reached; its schema is
    then not checked."""
    from agent.store.db import (
        DatabaseNotReady,
        DatabaseUnreachable,
        pending_migrations,
        require_current_schema,
    )

    settings = database_settings()
    try:
        if pending_migrations(settings.database_url, connect_timeout=5):
            require_current_schema(settings.database_url)  # its message names what is missing
    except DatabaseUnreachable as e:
        if not outage_ok:
            raise Refused(str(e)) from None
    except DatabaseNotReady as e:
        raise Refused(str(e)) from None
    return settings


def business_name(settings: Any, name: str) -> tuple[str, str]:
    """A business's name as its brain file spells it, and its timezone; refused when brain files are
    there and none has that name (without readable brain files, the name is taken as typed, in UTC)."""
    from agent.brain import BrainError, load_brains

    try:
        brains = load_brains(settings.brain_path).all
    except BrainError:
        brains = []
    match = [b for b in brains if b.business.name.lower() == name.lower()]
    if brains and not match:
        names = ", ".join(b.business.name for b in brains)
        raise Refused(f"no business named {name!r} in {settings.brain_path} (there: {names})")
    return (match[0].business.name, match[0].business.timezone) if match else (name, "UTC")


def migrate_database(args: argparse.Namespace) -> int:
    from agent.store.db import DatabaseNotReady, migrate

    settings = database_settings()
    try:
        applied = asyncio.run(migrate(settings.database_url))
    except DatabaseNotReady as e:
        raise Refused(str(e)) from None
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0
