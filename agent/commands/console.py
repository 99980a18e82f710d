"""`receptionist web` (the owner's console) and `receptionist users` (who may log in, and their API
tokens)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from agent.commands.database import business_name, current_database, database_settings
from agent.commands.refused import Refused


def serve_console(args: argparse.Namespace) -> int:
    import uvicorn

    from agent import log_privacy
    from agent.store.audio import AudioStore
    from web.app import ConsoleConfig, create_app

    settings = current_database()
    log_privacy.install()  # a search or a link may carry a caller's number: logs get its last 4 digits
    app = create_app(
        ConsoleConfig(
            settings.database_url,
            secure_cookies=settings.web_secure_cookies,
            brain_path=settings.brain_path,
            audio=AudioStore.from_settings(settings),
        )
    )
    print(f"the owner's console: http://{args.host}:{args.port}/", flush=True)
    # behind a TLS-terminating proxy the forwarded scheme is trusted from loopback only (uvicorn's default)
    # an open Today page's event stream never ends by itself: a stop cuts those after a few seconds,
    # and the pages reconnect (to another replica, or to this one restarted)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level.lower(),
        proxy_headers=True,
        timeout_graceful_shutdown=5,
    )
    return 0


def add_console_user(args: argparse.Namespace) -> int:
    import getpass

    from agent.store.accounts import AccountError, add_user
    from agent.store.db import open_pool

    settings = database_settings()
    businesses = [business_name(settings, name)[0] for name in args.business]
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.email}: ")
        if getpass.getpass("again: ") != password:
            raise Refused("the two passwords differ")
    current_database()

    async def add() -> int:
        pool = await open_pool(settings.database_url, min_size=1, max_size=1)
        try:
            return await add_user(pool, args.email, password, role=args.role, businesses=businesses)
        finally:
            await pool.close()

    try:
        asyncio.run(add())
    except AccountError as e:
        raise Refused(str(e)) from None
    sees = "every business" if args.role == "operator" else ", ".join(businesses)
    print(f"added {args.role} {args.email}: sees {sees}")
    return 0


def console_user_token(args: argparse.Namespace) -> int:
    from agent.store.accounts import AccountError, add_api_token, revoke_api_tokens
    from agent.store.db import open_pool

    settings = current_database()

    async def act() -> str:
        pool = await open_pool(settings.database_url, min_size=1, max_size=1)
        try:
            if args.revoke:
                n = await revoke_api_tokens(pool, args.email, args.name)
                which = f"named {args.name!r}" if args.name else "of theirs"
                return f"revoked {n} token{'' if n == 1 else 's'} {which} for {args.email}"
            token = await add_api_token(pool, args.email, args.name or "api")
            # only the token on stdout, so a script can capture it; the warning goes to the terminal
            print("this token is shown once; only its hash is stored", file=sys.stderr)
            return token
        finally:
            await pool.close()

    try:
        print(asyncio.run(act()))
    except AccountError as e:
        raise Refused(str(e)) from None
    return 0
