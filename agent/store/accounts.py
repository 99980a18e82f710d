"""Who may open the owner's console: users with argon2 password hashes, the businesses each owner
sees, server-side sessions, API tokens for scripts, and the login attempts that lock an account and
throttle a client address against password guessing."""

from __future__ import annotations

import asyncio
import enum
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

ROLES = ("owner", "operator")
SESSION_LIFETIME = timedelta(hours=12)
WRONG_PASSWORDS_BEFORE_LOCK = 5
LOCKOUT = timedelta(minutes=15)  # also the window in which wrong passwords are counted
# one address trying many accounts (a few guesses each, under every account's lock) is refused for a
# while: more than an office's worth of typos within LOCKOUT, far fewer than a guessing run needs
FAILED_SIGN_INS_PER_CLIENT = 20
API_TOKEN_PREFIX = "rcpt_"  # recognisable in a leaked file or a secret scanner's report
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# verified against when the address is unknown, so a wrong address costs as long as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A user that cannot be added as asked; the message is one line for the person adding it."""


class SignInRefused(enum.Enum):
    WRONG_PASSWORD = "wrong email or password"
    LOCKED = "too many wrong passwords: this account is locked for a while"
    THROTTLED = "too many failed sign-ins from your address: wait 15 minutes and try again"


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a request, with what they may see."""

    user_id: int
    email: str
    role: str
    businesses: tuple[str, ...]
    csrf_token: str

    @property
    def everyone(self) -> bool:
        """An operator sees every business; an owner only theirs."""
        return self.role == "operator"


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def add_user(
    pool: AsyncConnectionPool, email: str, password: str, *, role: str = "owner", businesses: list[str]
) -> int:
    """A new user's id; refuses a malformed address, a short password, an owner without a business,
    or an address already in use."""
    email = email.strip()
    if "@" not in email or " " in email:
        raise AccountError(f"{email!r} is not an email address")
    if role not in ROLES:
        raise AccountError(f"role is owner or operator (got {role!r})")
    if role == "owner" and not businesses:
        raise AccountError("an owner needs at least one --business")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    async with pool.connection() as conn, conn.transaction():
        try:
            row = await (await conn.execute(
                "INSERT INTO users (email, password_hash, role) VALUES (%s, %s, %s) RETURNING id",
                (email, password_hash, role),
            )).fetchone()  # fmt: skip
        except psycopg.errors.UniqueViolation:
            raise AccountError(f"a user {email} already exists") from None
        assert row is not None
        for business in businesses:
            await conn.execute(
                "INSERT INTO user_businesses (user_id, business) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (row[0], business),
            )
    return int(row[0])


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def sign_in(
    pool: AsyncConnectionPool, email: str, password: str, client: str | None = None
) -> str | SignInRefused:
    """A new session's token, or why not. Every attempt is recorded; the fifth wrong password within
    LOCKOUT locks the account for LOCKOUT, and a locked account refuses even the right password.
    A client address with FAILED_SIGN_INS_PER_CLIENT failures within LOCKOUT, whichever accounts they
    were for, is refused before any password is checked (and that refusal is not counted, so the
    address is let in again LOCKOUT after its failures)."""
    typed = email.strip().lower()
    async with pool.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        if client is not None:
            # attempts from one address take turns (before any account's row lock, always in that order),
            # so parallel guesses cannot all pass the count before one of them is recorded
            await cur.execute("SELECT pg_advisory_xact_lock(hashtextextended('sign-in ' || %s, 0))", (client,))
            failed = await (await cur.execute(
                "SELECT count(*) AS n FROM login_attempts WHERE client = %s AND NOT succeeded AND at > now() - %s",
                (client, LOCKOUT),
            )).fetchone()  # fmt: skip
            if failed is not None and failed["n"] >= FAILED_SIGN_INS_PER_CLIENT:
                return SignInRefused.THROTTLED
        # the row lock serialises attempts on one account, so parallel guesses cannot overrun the count
        user = await (await cur.execute(
            "SELECT id, password_hash, locked_until, locked_until > now() AS locked"
            " FROM users WHERE lower(email) = %s FOR UPDATE",
            (typed,),
        )).fetchone()  # fmt: skip
        if user is not None and user["locked"]:
            await cur.execute(
                "INSERT INTO login_attempts (email, succeeded, client) VALUES (%s, false, %s)", (typed, client)
            )
            return SignInRefused.LOCKED
        ok = await asyncio.to_thread(_verify, user["password_hash"] if user else _DUMMY_HASH, password)
        ok = ok and user is not None
        await cur.execute(
            "INSERT INTO login_attempts (email, succeeded, client) VALUES (%s, %s, %s)", (typed, ok, client)
        )
        if not ok:
            if user is not None:
                # wrong passwords since the last success (or the last lock's end), within the window
                await cur.execute(
                    "UPDATE users SET locked_until = now() + %(lockout)s WHERE id = %(id)s AND %(most)s <= ("
                    " SELECT count(*) FROM login_attempts WHERE email = %(email)s AND NOT succeeded"
                    "   AND at > greatest(now() - %(lockout)s, coalesce(%(unlocked)s::timestamptz, '-infinity'),"
                    "     coalesce((SELECT max(at) FROM login_attempts"
                    "               WHERE email = %(email)s AND succeeded), '-infinity')))",
                    {"id": user["id"], "email": typed, "lockout": LOCKOUT, "unlocked": user["locked_until"],
                     "most": WRONG_PASSWORDS_BEFORE_LOCK},
                )  # fmt: skip
            return SignInRefused.WRONG_PASSWORD
        token = secrets.token_urlsafe(32)
        await cur.execute(
            "INSERT INTO web_sessions (token_hash, user_id, csrf_token, expires_at)"
            " VALUES (%s, %s, %s, now() + %s)",
            (_token_hash(token), user["id"], secrets.token_urlsafe(32), SESSION_LIFETIME),
        )
    return token


async def viewer_for(pool: AsyncConnectionPool, token: str) -> Viewer | None:
    """The user a session cookie belongs to, or None for an unknown or expired session."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        row = await (await cur.execute(
            "SELECT u.id, u.email, u.role, s.csrf_token,"
            "       array(SELECT business FROM user_businesses b WHERE b.user_id = u.id ORDER BY business)"
            "         AS businesses"
            " FROM web_sessions s JOIN users u ON u.id = s.user_id"
            " WHERE s.token_hash = %s AND s.expires_at > now()",
            (_token_hash(token),),
        )).fetchone()  # fmt: skip
    if row is None:
        return None
    return Viewer(row["id"], row["email"], row["role"], tuple(row["businesses"]), row["csrf_token"])


async def viewer_for_api_token(pool: AsyncConnectionPool, token: str) -> Viewer | None:
    """The user an API token belongs to (its use recorded), or None for an unknown or revoked token.
    A token's requests carry no CSRF token: they are not sent by a browser on its own."""
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        # last use to the minute: a script polling every second does not write a row every second
        row = await (await cur.execute(
            "WITH t AS (SELECT id, user_id, last_used_at FROM api_tokens WHERE token_hash = %s AND revoked_at IS NULL),"
            " touched AS (UPDATE api_tokens SET last_used_at = now() WHERE id = (SELECT id FROM t)"
            "   AND coalesce((SELECT last_used_at FROM t) < now() - interval '1 minute', true))"
            " SELECT u.id, u.email, u.role,"
            "   array(SELECT business FROM user_businesses b WHERE b.user_id = u.id ORDER BY business)"
            "     AS businesses"
            " FROM t JOIN users u ON u.id = t.user_id",
            (_token_hash(token),),
        )).fetchone()  # fmt: skip
    if row is None:
        return None
    return Viewer(row["id"], row["email"], row["role"], tuple(row["businesses"]), csrf_token="")


async def add_api_token(pool: AsyncConnectionPool, email: str, name: str) -> str:
    """A new API token for the user with this address, to be shown once: only its hash is kept."""
    name = name.strip()
    if not name:
        raise AccountError("a token needs a --name")
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with pool.connection() as conn:
        try:
            row = await (await conn.execute(
                "INSERT INTO api_tokens (user_id, name, token_hash)"
                " SELECT id, %s, %s FROM users WHERE lower(email) = lower(%s) RETURNING id",
                (name, _token_hash(token), email.strip()),
            )).fetchone()  # fmt: skip
        except psycopg.errors.UniqueViolation:
            raise AccountError(f"{email} already has a token named {name!r}: revoke it or choose another --name") from None
    if row is None:
        raise AccountError(f"there is no user {email}")
    return token


async def revoke_api_tokens(pool: AsyncConnectionPool, email: str, name: str | None = None) -> int:
    """Revokes the user's live token named `name`, or all of them; how many were revoked."""
    async with pool.connection() as conn:
        user = await (await conn.execute("SELECT id FROM users WHERE lower(email) = lower(%s)", (email.strip(),))).fetchone()
        if user is None:
            raise AccountError(f"there is no user {email}")
        cur = await conn.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL"
            " AND (%s::text IS NULL OR name = %s)",
            (user[0], name, name),
        )
        return cur.rowcount


async def sign_out(pool: AsyncConnectionPool, token: str) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            "DELETE FROM web_sessions WHERE token_hash = %s OR expires_at < now()", (_token_hash(token),)
        )
