"""Photos from the media store, uploaded as WeChat or WeCom temporary media when a message
needs them (another channel's ids, and WeChat's own after three days, cannot be re-sent)."""

from __future__ import annotations

import logging
import time

import filetype

from bot.delivery.media import MediaStore, parse_ref
from bot.messages import Media
from handlers.wechat.api import OAClient

log = logging.getLogger(__name__)

REUSE_S = 2 * 24 * 3600  # both platforms keep temporary media three days
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif"}  # what an image message may carry
IMAGE_BYTES = 10 * 1024 * 1024


class Uploads:
    def __init__(self, api: OAClient, media: MediaStore | None) -> None:
        self.api, self.media = api, media
        self._known: dict[str, tuple[str, float]] = {}  # sha256 -> (media_id, uploaded at)

    async def media_id(self, ref: str) -> str | None:
        """A media_id for the stored photo behind `ref`; None when the bytes are not here or
        are not an image the platform takes."""
        _origin, _file_id, sha = parse_ref(ref)
        if sha is None or self.media is None or not self.media.has(sha):
            log.info("a photo without stored bytes was left out of a message")
            return None
        known = self._known.get(sha)
        if known is not None and time.time() - known[1] < REUSE_S:
            return known[0]
        data = self.media.get(sha)
        kind = filetype.guess(data)
        if kind is None or kind.mime not in IMAGE_TYPES or len(data) > IMAGE_BYTES:
            log.info("a photo the platform does not take (%s, %d bytes) was left out",
                     kind.mime if kind else "?", len(data))
            return None
        media_id = await self.api.upload("image", data, f"{sha[:16]}.{kind.extension}",
                                         kind.mime)
        self._known[sha] = (media_id, time.time())
        return media_id


async def fetch_media(api: OAClient, store: MediaStore | None, kind: str,
                      media_id: str) -> Media:
    """A person's photo, voice or video with its bytes in the store (media/get), fetched at
    once because the platform keeps them only three days; without them if they can't be had:
    the message matters more than its copy."""
    if store is None or not media_id:
        return Media(kind, media_id)
    try:
        data = await api.download(media_id, store.max_bytes)
        return Media(kind, media_id, store.put(data).sha256)
    except Exception as e:
        log.warning("could not keep a %s (%s)", kind, type(e).__name__)
        return Media(kind, media_id)
