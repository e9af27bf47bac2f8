"""Sessions, CSRF and headers: what every desk request passes through.

The session is an encrypted cookie (Fernet) holding who signed in and when; it ends after
DESK_SESSION_HOURS however active it is. Every POST carries the session's CSRF token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp_session import Session, get_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

COOKIE = "grid_desk"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def storage(secret: str, hours: float, secure: bool) -> EncryptedCookieStorage:
    # any string as DESK_SECRET_KEY: Fernet wants 32 bytes, so derive them
    key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
    return EncryptedCookieStorage(Fernet(key), cookie_name=COOKIE, max_age=int(hours * 3600),
                                  httponly=True, samesite="Lax", secure=secure, path="/desk")


def csp(tile_url: str) -> str:
    tiles = ""
    if tile_url.startswith(("https://", "http://")):
        host = tile_url.split("/")[2]
        tiles = f" {tile_url.split(':')[0]}://{host.replace('{s}', '*')}"
    # styles: Leaflet and ECharts position their elements with style attributes
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data:{tiles}; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def headers_middleware(policy: str) -> Middleware:
    @web.middleware
    async def headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except web.HTTPException as e:
            resp = e
        resp.headers["Content-Security-Policy"] = policy
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"  # sign-in links carry their token
        if not request.path.startswith("/desk/static/"):
            resp.headers["Cache-Control"] = "no-store"
        if isinstance(resp, web.HTTPException):
            raise resp
        return resp
    return headers


def csrf_token(session: Session) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        session["csrf"] = token
    return token


def csrf_matches(session: Session, sent: str) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str):
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


async def csrf_ok(request: web.Request) -> bool:
    session = await get_session(request)
    if not isinstance(session.get("csrf"), str):
        return False
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        sent = str((await request.post()).get(CSRF_FIELD, ""))
    return csrf_matches(session, sent)


def signed_in(session: Session, hours: float, now: float) -> tuple[int, int | None] | None:
    """(person id, identity id) of a live sign-in; an old one is ended here.

    The cookie's own lifetime is renewed with every answer; this one is not."""
    person, at = session.get("person"), session.get("at")
    if not isinstance(person, int) or not isinstance(at, int | float):
        return None
    if not 0 <= now - at <= hours * 3600:
        session.invalidate()
        return None
    ident = session.get("identity")
    return person, ident if isinstance(ident, int) else None


class IpWindow:
    """Failed sign-ins per address in a sliding minute (per process). Only failures count:
    an office behind one address signing in together at nine is not held up."""

    def __init__(self, limit: int = 10, period: float = 60.0) -> None:
        self.limit, self.period = limit, period
        self.hits: dict[str, list[float]] = {}

    def _recent(self, ip: str, now: float) -> list[float]:
        recent = [x for x in self.hits.get(ip, []) if x > now - self.period]
        self.hits[ip] = recent
        return recent

    def blocked(self, ip: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return len(self._recent(ip, now)) >= self.limit

    def strike(self, ip: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self.hits) > 10_000:  # forget idle addresses: memory stays bounded
            self.hits = {k: v for k, v in self.hits.items() if v and v[-1] > now - self.period}
        self._recent(ip, now).append(now)
