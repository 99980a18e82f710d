"""`receptionist retention` (strip personal data past each brain's privacy.retain_days) and
`receptionist forget` (erase one phone number's personal data, audited)."""

from __future__ import annotations

import argparse
import asyncio

from agent.commands.database import current_database
from agent.commands.refused import Refused


def run_retention(args: argparse.Namespace) -> int:
    from agent.brain import BrainError, load_brains
    from agent.store.privacy import AudioUnreachable, RetentionPolicy, format_counts, sweep

    settings = current_database()
    try:
        brains = load_brains(settings.brain_path)
    except BrainError as e:
        raise Refused(str(e)) from None
    policies = [RetentionPolicy(b.business.name, b.privacy.retain_days) for b in brains.all]
    from agent.store.audio import AudioStore

    audio = AudioStore.from_settings(settings)
    try:
        result = asyncio.run(sweep(settings.database_url, policies, dry_run=args.dry_run, audio=audio))
    except AudioUnreachable as e:
        raise Refused(f"retention: {e}") from None
    if not result.ran:
        print(f"retention: {result.why_not}; nothing done")
        return 0
    if args.dry_run:
        print("retention, dry run: what a run now would touch (nothing changed)")
    for policy in policies:
        if policy.retain_days is None:
            print(f"{policy.business}: kept forever (no privacy.retain_days)")
            continue
        cutoff = result.cutoffs[policy.business]
        print(
            f"{policy.business}: {policy.retain_days} days, personal data before {cutoff:%Y-%m-%d %H:%M} UTC"
        )
        for line in format_counts(result.counts[policy.business]):
            print(f"  {line}")
    return 0


def forget_number(args: argparse.Namespace) -> int:
    import getpass

    from livekit.agents import ToolError

    from agent.store.privacy import AudioUnreachable, forget, format_counts
    from agent.tools.spoken import normalise_phone

    try:
        e164 = normalise_phone(args.number, args.region.upper())
    except ToolError:
        raise Refused(
            f"not a phone number: {args.number!r} (write it as +15035550111, or as people do, "
            f"503-555-0111, with --region for numbers outside {args.region.upper()})"
        ) from None
    settings = current_database()
    by = args.by or getpass.getuser()
    from agent.store.audio import AudioStore

    try:
        result = asyncio.run(forget(settings.database_url, e164, requested_by=by, audio=AudioStore.from_settings(settings)))
    except AudioUnreachable as e:
        raise Refused(f"forget: {e}") from None
    print(
        f"forgot {result.number_masked} (requested by {by}; audit row {result.audit_id} in erasures)"
    )
    for line in format_counts(result.counts):
        print(f"  {line}")
    for booking in result.cancelled:
        print(
            f"  cancelled: {booking.business}, {booking.service} on {booking.start:%Y-%m-%d %H:%M %Z}"
            f" (code {booking.confirmation_code}): tell the business the slot is free"
        )
    if queued := result.counts["outbox"].get("queued"):
        print(
            f"  the owner's CalDAV calendar: {queued} event(s) to delete or strip, sent by `receptionist notify run`"
        )
    return 0
