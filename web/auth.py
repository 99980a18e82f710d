"""Signing in and out of the console: the session cookie, the CSRF token every form carries, and the
guard that sends a visitor without a session to the login page."""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agent.store.accounts import (
    LOCKOUT,
    SESSION_LIFETIME,
    SignInRefused,
    Viewer,
    sign_in,
    sign_out,
    viewer_for,
)
from web.templating import page

SESSION_COOKIE = "receptionist_session"
# before there is a session, the login form's token is checked against this cookie (double submit)
LOGIN_CSRF_COOKIE = "receptionist_login_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

Page = Callable[[Request], Awaitable[Response]]


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="lax",
        secure=request.app.state.config.secure_cookies,
    )  # fmt: skip


async def checked_form(request: Request, expected: str) -> FormData:
    """The POSTed form, once its CSRF token (form field, or header for htmx) matches; 403 otherwise."""
    form = await request.form()
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise HTTPException(403, "This form has expired or did not come from the console: reload the page and try again.")
    return form


def signed_in(handler: Page) -> Page:
    """The page for a signed-in user (request.state.viewer); anyone else is sent to log in."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        viewer = await viewer_for(request.app.state.pool, token) if token else None
        if viewer is None:
            if request.method != "GET":
                raise HTTPException(403, "Your session has ended: log in again.")
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        request.state.viewer = viewer
        if request.method == "POST":
            request.state.form = await checked_form(request, viewer.csrf_token)
        return await handler(request)

    return guarded


def viewer(request: Request) -> Viewer:
    return request.state.viewer


def _safe_next(target: str | None) -> str:
    # only a path on this site: never a redirect to somewhere else
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


async def login_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = page(request, "login.html", status_code, viewer=None, csrf_token=token, error=error,
                    next=_safe_next(request.query_params.get("next")))  # fmt: skip
    _cookie(response, request, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


async def login(request: Request) -> Response:
    if request.method == "GET":
        return await login_page(request)
    form = await checked_form(request, request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    client = request.client.host if request.client else None
    outcome: str | SignInRefused = await sign_in(request.app.state.pool, email, password, client)
    if outcome is SignInRefused.THROTTLED:
        response = await login_page(request, outcome.value, 429)
        response.headers["Retry-After"] = str(int(LOCKOUT.total_seconds()))  # at most; sooner as failures age
        return response
    if isinstance(outcome, SignInRefused):
        return await login_page(request, outcome.value, 403 if outcome is SignInRefused.LOCKED else 401)
    response = RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)
    _cookie(response, request, SESSION_COOKIE, outcome, max_age=int(SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@signed_in
async def logout(request: Request) -> Response:
    await sign_out(request.app.state.pool, request.cookies[SESSION_COOKIE])
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
