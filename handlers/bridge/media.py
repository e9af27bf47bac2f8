"""Media both ways. In: each URL a connector names is fetched once into the media store (http
and https only, at most MEDIA_MAX_BYTES, within FETCH_TIMEOUT_S); a failed fetch keeps the
message, with the URL instead of the bytes. Out: `GET /bridge/v1/media/<sha256>` serves stored
bytes only with a signed, unexpired link (handlers/bridge/sender.py makes them), so nobody can
list residents' photos by guessing hashes.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

import aiohttp
import filetype
from aiohttp import web

from bot.delivery.media import MediaRefused, MediaStore
from bot.messages import Media
from handlers.bridge.inbound import MediaIn
from handlers.bridge.signing import media_ok

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 15.0
MAX_REDIRECTS = 3
MAX_FILE_ID = 256  # attachments keep a platform id in 256 characters


class TooLarge(Exception):
    pass


class MediaFetcher:
    def __init__(self, store: MediaStore | None, timeout: float = FETCH_TIMEOUT_S) -> None:
        self.store = store
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    async def fetch(self, items: list[MediaIn]) -> list[Media]:
        return [await self._one(m) for m in items]

    async def _one(self, item: MediaIn) -> Media:
        url = item.url
        file_id = url if len(url) <= MAX_FILE_ID \
            else "sha256-url:" + hashlib.sha256(url.encode()).hexdigest()
        if self.store is None:
            return Media(item.kind, file_id)
        try:
            data = await self._download(url, self.store.max_bytes)
            return Media(item.kind, file_id, self.store.put(data).sha256)
        except (aiohttp.ClientError, TimeoutError, TooLarge, MediaRefused, ValueError) as e:
            # the message matters more than its copy; never log the URL (it may carry a token)
            log.warning("bridge: could not keep a %s (%s)", item.kind, type(e).__name__)
            return Media(item.kind, file_id)

    async def _download(self, url: str, limit: int) -> bytes:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        async with self._http.get(url, max_redirects=MAX_REDIRECTS) as r:
            if r.status != 200:
                raise ValueError(f"HTTP {r.status}")
            if (r.content_length or 0) > limit:
                raise TooLarge
            data = bytearray()
            async for chunk in r.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise TooLarge
            return bytes(data)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()


def media_route(path: str, store: MediaStore | None, secret: bytes,
                now: Callable[[], float]) -> web.RouteDef:
    async def serve(request: web.Request) -> web.StreamResponse:
        sha = request.match_info["sha256"]
        q = request.query
        if store is None or not media_ok(secret, sha, q.get("expires", ""), q.get("sig", ""),
                                         now()):
            return web.json_response({"error": "not a valid media link"}, status=403)
        try:
            data = store.get(sha)
        except (MediaRefused, OSError):
            return web.json_response({"error": "no such media"}, status=404)
        kind = filetype.guess(data)
        return web.Response(body=data,
                            content_type=kind.mime if kind else "application/octet-stream",
                            headers={"Cache-Control": "private, max-age=3600"})

    return web.get(path + "{sha256}", serve)
