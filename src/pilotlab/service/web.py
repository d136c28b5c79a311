"""What every request shares: the security headers and body limit, who is asking, the service.

Kept apart from ``app.py`` so that the API and the pages can use it without importing the
application that includes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from pilotlab.service.actions import Service, ServiceError
from pilotlab.service.auth import (
    ANONYMOUS,
    SESSION_COOKIE,
    Principal,
    principal_from_session,
    principal_from_token,
)

__all__ = ["PAGE_CSP", "REPORT_CSP", "SECURITY_HEADERS", "Guard", "principal_of", "service_of"]

#: The pages: nothing but this site's own stylesheet and forms; never framed.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: A stored report: a sandbox (no scripts, no forms, no same-origin access), its own inline
#: styles and data: images only, nothing fetched.
REPORT_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
SECURITY_HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"cross-origin-opener-policy": b"same-origin",
    b"cross-origin-resource-policy": b"same-origin",
    b"permissions-policy": b"camera=(), microphone=(), geolocation=(), interest-cohort=()",
    b"strict-transport-security": b"max-age=31536000; includeSubDomains",
}

#: What a person whose password was reset may reach before choosing a new one (signed in).
PASSWORD_CHANGE_PATHS = frozenset(
    {"/account/password", "/api/me/password", "/api/me", "/sign-out", "/static/style.css"}
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _TooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: refuses bodies over the limit (413) and adds the security headers,
    the default Content-Security-Policy and ``Cache-Control: no-store`` to every response."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS.items() if k not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", PAGE_CSP.encode()))
                if b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        async def refuse(message: str) -> None:
            response = JSONResponse({"error": message}, status_code=413)
            await response(scope, receive, send_with_headers)

        limit = self.max_body
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:
                response = JSONResponse({"error": "the Content-Length header is not a number"}, 400)
                await response(scope, receive, send_with_headers)
                return
            if declared > limit:
                await refuse(f"the request body is {declared:,} bytes; the limit is {limit:,}")
                return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counting_receive, send_with_headers)
        except _TooLarge:
            if not started:
                await refuse(f"the request body is larger than the limit of {limit:,} bytes")


def service_of(request: Request) -> Service:
    """The service behind the app."""
    svc: Service = request.app.state.service
    return svc


def principal_of(request: Request) -> Principal:
    """Who is asking: a bearer token, else a session cookie, else anonymous.

    Raises
    ------
    ServiceError
        401 when an Authorization header is sent but is not a valid, live token.
    """
    cached = request.scope.get("pilotlab.principal")
    if isinstance(cached, Principal):
        return cached
    svc = service_of(request)
    header = request.headers.get("authorization")
    principal = ANONYMOUS
    if header is not None:
        scheme, _, token = header.partition(" ")
        found = (
            principal_from_token(svc.accounts, svc.tokens, token)
            if scheme.lower() == "bearer"
            else None
        )
        if found is None:
            raise ServiceError(
                401,
                "the API token is not valid (unknown, revoked or expired); create a new one on "
                "your account page and set PILOTLAB_TOKEN",
            )
        principal = found
    else:
        secret = request.cookies.get(SESSION_COOKIE)
        if secret and len(secret) < 200:
            principal = principal_from_session(svc.accounts, secret) or ANONYMOUS
        person = principal.person
        if (
            person is not None
            and person.must_change_password
            and request.url.path not in PASSWORD_CHANGE_PATHS
        ):
            raise ServiceError(
                403,
                "an administrator reset your password: choose a new one at /account/password "
                "before doing anything else",
            )
    request.scope["pilotlab.principal"] = principal
    return principal
