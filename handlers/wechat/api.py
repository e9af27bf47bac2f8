"""The few Official Account API calls the channel makes, over aiohttp.

wechatpy 1.8's WeChatClient is not used for them: it is synchronous (requests), fetches tokens
from a hard-coded host without a timeout, and with auto_retry on it re-fetches the token and
recurses without bound while WeChat keeps answering 40001. Here every request has a timeout,
a token error refreshes the shared token once and retries once, and nothing else is retried:
the outbox retries sends with backoff.

Errors never carry the request URL: it holds the access token (or the secret).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.wechat.tokens import TokenStore

TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid, malformed, expired access token
SYSTEM_BUSY = -1
MAX_JSON = 1024 * 1024


class WeChatError(Exception):
    """WeChat answered with a non-zero errcode."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"errcode {errcode}: {errmsg[:120]}")
        self.errcode, self.errmsg = errcode, errmsg


class Unreachable(Exception):
    """No usable answer: network error, timeout, 5xx, system busy, or not JSON."""


class OAClient:
    """The Official Account's API (handlers.wecom.api.WeComClient is the same for WeCom, with
    WeCom's token call)."""

    def __init__(self, base: str, appid: str, secret: str,
                 sm: async_sessionmaker[AsyncSession], timeout: float) -> None:
        self._base = base.rstrip("/")
        self._appid, self._secret = appid, secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.tokens = TokenStore(sm, self.token_key(), self._fetch_token)

    def token_key(self) -> str:
        """The access_tokens row this app's token is shared through."""
        return f"wechat:{self._appid}"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _fetch_token(self) -> tuple[str, int]:
        data = await self._json("GET", "/cgi-bin/token", params={
            "grant_type": "client_credential", "appid": self._appid, "secret": self._secret})
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise Unreachable("token answer without access_token")
        return token, int(data.get("expires_in") or 7200)

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with the access token; a token error refreshes it and retries once."""
        data = json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        token = await self.tokens.get()
        try:
            return await self._json("POST", path, params={"access_token": token}, data=data,
                                     headers=headers)
        except WeChatError as e:
            if e.errcode not in TOKEN_ERRORS:
                raise
        await self.tokens.invalidate(token)
        token = await self.tokens.get()
        return await self._json("POST", path, params={"access_token": token}, data=data,
                                headers=headers)

    async def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET with the access token; a token error refreshes it and retries once."""
        token = await self.tokens.get()
        try:
            return await self._json("GET", path, params={**(params or {}), "access_token": token})
        except WeChatError as e:
            if e.errcode not in TOKEN_ERRORS:
                raise
        await self.tokens.invalidate(token)
        token = await self.tokens.get()
        return await self._json("GET", path, params={**(params or {}), "access_token": token})

    async def upload(self, kind: str, data: bytes, filename: str, mime: str) -> str:
        """media/upload (temporary media, kept by WeChat for 3 days) -> media_id."""
        async def once(token: str) -> dict[str, Any]:
            form = aiohttp.FormData()
            form.add_field("media", data, filename=filename, content_type=mime)
            return await self._json("POST", "/cgi-bin/media/upload",
                                    params={"access_token": token, "type": kind}, data=form)
        token = await self.tokens.get()
        try:
            got = await once(token)
        except WeChatError as e:
            if e.errcode not in TOKEN_ERRORS:
                raise
            await self.tokens.invalidate(token)
            got = await once(await self.tokens.get())
        media_id = got.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise Unreachable("upload answer without media_id")
        return media_id

    async def download(self, media_id: str, limit: int) -> bytes:
        """media/get: a resident's photo, voice or video by its MediaId (at most `limit` bytes)."""
        token = await self.tokens.get()
        try:
            return await self._bytes(media_id, token, limit)
        except WeChatError as e:
            if e.errcode not in TOKEN_ERRORS:
                raise
        await self.tokens.invalidate(token)
        return await self._bytes(media_id, await self.tokens.get(), limit)

    async def _bytes(self, media_id: str, token: str, limit: int) -> bytes:
        try:
            async with self._http().get(f"{self._base}/cgi-bin/media/get", params={
                    "access_token": token, "media_id": media_id}) as r:
                if r.status >= 500:
                    raise Unreachable(f"HTTP {r.status}")
                body = await read_capped(r.content, limit + 1)
                if r.content_type in ("application/json", "text/plain"):
                    _check(_decode(body))
                    raise Unreachable("media/get answered JSON without an error")
                if r.status != 200:
                    raise Unreachable(f"HTTP {r.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise Unreachable(type(e).__name__) from None
        if len(body) > limit:
            raise ValueError(f"media over {limit} bytes")
        return body

    async def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            async with self._http().request(method, f"{self._base}{path}", **kw) as r:
                if r.status >= 500 or r.status == 429:
                    raise Unreachable(f"HTTP {r.status}")
                body = await read_capped(r.content, MAX_JSON)
                status = r.status
        except (aiohttp.ClientError, TimeoutError) as e:
            raise Unreachable(type(e).__name__) from None
        data = _decode(body)
        if status != 200 and "errcode" not in data:
            raise WeChatError(status, f"HTTP {status}")
        return _check(data)


async def read_capped(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The body up to `limit` bytes (one read may return less than is coming)."""
    buf = bytearray()
    while len(buf) < limit:
        chunk = await stream.read(limit - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _decode(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        raise Unreachable("answer is not JSON") from None
    if not isinstance(data, dict):
        raise Unreachable("answer is not a JSON object")
    return data


def _check(data: dict[str, Any]) -> dict[str, Any]:
    try:
        code = int(data.get("errcode") or 0)
    except (TypeError, ValueError):
        raise Unreachable("errcode is not a number") from None
    if code == SYSTEM_BUSY:
        raise Unreachable("WeChat is busy (-1)")
    if code:
        raise WeChatError(code, str(data.get("errmsg", "")))
    return data
