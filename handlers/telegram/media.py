"""Telegram's side of the media store: fetch what arrives, upload what came from elsewhere."""

from __future__ import annotations

import io
import logging
from dataclasses import replace

from aiogram import Bot
from aiogram.types import BufferedInputFile

from bot.delivery.media import MediaRefused, MediaStore, parse_ref
from bot.messages import Media
from models.enums import Channel

log = logging.getLogger(__name__)


async def fetch(bot: Bot, items: list[Media], store: MediaStore | None) -> list[Media]:
    """Each item with its bytes kept in the store (getFile + download); unfetched on failure.

    A file that can't be fetched or kept still has its Telegram id, which works here.
    """
    if store is None:
        return items
    out: list[Media] = []
    for m in items:
        try:
            buf = io.BytesIO()
            await bot.download(m.file_id, destination=buf, timeout=30)
            out.append(replace(m, sha256=store.put(buf.getvalue()).sha256))
        except MediaRefused as e:
            log.info("a %s was not kept: %s", m.kind, e)
            out.append(m)
        except Exception as e:  # the message matters more than its copy
            log.warning("could not fetch a %s (%s)", m.kind, type(e).__name__)
            out.append(m)
    return out


def photo_input(ref: str, store: MediaStore | None) -> str | BufferedInputFile | None:
    """A Telegram file id to re-send, the stored bytes to upload, or None (not to be had)."""
    origin, file_id, sha = parse_ref(ref)
    if origin in (None, Channel.TELEGRAM.value):
        return file_id
    if sha and store is not None and store.has(sha):
        return BufferedInputFile(store.get(sha), filename=f"{sha[:16]}.jpg")
    return None
