"""A report's photos (image_urls) and videos (video_media_ids, through media/get) fetched into
the media store before its page is written. One that cannot be fetched is kept as a reference
only: a missing photo never holds a report back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import aiohttp

from bot.delivery.media import MediaRefused, MediaStore
from handlers.wechat.api import Unreachable, WeChatError, read_capped
from handlers.wecom.api import WeComClient
from handlers.wecom.residents.orders import Order

log = logging.getLogger(__name__)


async def fetch(client: WeComClient, store: MediaStore, orders: Iterable[Order],
                per_request: float) -> dict[str, str]:
    """Photo URL or video media id -> sha256 in the store, for each one fetched."""
    found: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=per_request)) as http:
        for order in orders:
            for url in order.image_urls:
                data = await _photo(http, url, store.max_bytes)
                if data is None:
                    log.warning("a photo of WeCom report %s could not be fetched", order.order_id)
                    continue
                sha = await _keep(store, data, order)
                if sha:
                    found[url] = sha
            for media_id in order.video_media_ids:
                try:
                    video = await client.download(media_id, store.max_bytes)
                except (Unreachable, WeChatError, ValueError) as e:
                    log.warning("a video of WeCom report %s could not be fetched: %s",
                                order.order_id, type(e).__name__)
                    continue
                sha = await _keep(store, video, order)
                if sha:
                    found[media_id] = sha
    return found


async def _photo(http: aiohttp.ClientSession, url: str, limit: int) -> bytes | None:
    if not url.startswith(("https://", "http://")):
        return None
    try:
        async with http.get(url) as r:
            if r.status != 200:
                return None
            data = await read_capped(r.content, limit + 1)
    except (aiohttp.ClientError, TimeoutError):
        return None
    return data if len(data) <= limit else None


async def _keep(store: MediaStore, data: bytes, order: Order) -> str | None:
    try:
        return (await asyncio.to_thread(store.put, data)).sha256
    except MediaRefused as e:
        log.warning("media of WeCom report %s refused: %s", order.order_id, e)
        return None
