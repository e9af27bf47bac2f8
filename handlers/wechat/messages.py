"""WeChat's and WeCom's XML messages as work for the core: the same message types, read the
same way, on the Official Account (handlers/wechat/oa.py) and the WeCom app
(handlers/wecom/app.py).

- text -> a message (the core redeems an invite code sent alone)
- image -> fetched into the media store at once (media/get), then a message
- voice, video -> the platform's recognised words with the media attached; without words the
  media is kept for the report or note that follows and the person is told so
- location -> a GCJ-02 point (Location_X is the latitude), its label as the text
- link -> its title, description and URL as text
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from bot.app import App
from bot.deps import Ctx
from bot.messages import GeoPoint, Inbound, Media
from handlers.wechat.api import OAClient
from handlers.wechat.uploads import fetch_media
from models.enums import ChatKind

log = logging.getLogger(__name__)

Work = Callable[[], Coroutine[Any, Any, None]]


def message_work(app: App, api: OAClient, msg: dict[str, str], ctx: Ctx,
                 media_kept: str) -> Work | None:
    """The work for one message (`ctx` carries its chat, sender and MsgId); None for a type
    neither platform sends people's words in. `media_kept`: what a person is told when
    voice or video came without words."""
    kind = msg.get("MsgType", "").lower()
    core = app.core
    msg_id = ctx.message_id or ""

    def inbound(text: str = "", media: list[Media] | None = None,
                location: GeoPoint | None = None) -> Inbound:
        return Inbound(channel=ctx.channel, external_id=msg_id, chat_id=ctx.chat_id,
                       chat_kind=ChatKind.PRIVATE, sender_id=ctx.user_id,
                       sender_name=ctx.user_name, text=text, location=location,
                       media=media or [], message_id=msg_id, received_at=app.deps.clock())

    async def text() -> None:
        await core.on_message(inbound(msg.get("Content", "")))

    async def image() -> None:
        photo = await fetch_media(api, core.media, "photo", msg.get("MediaId", ""))
        await core.on_message(inbound(media=[photo]))

    async def audio_or_video() -> None:
        what = "voice" if kind == "voice" else "video"
        media = await fetch_media(api, core.media, what, msg.get("MediaId", ""))
        said = msg.get("Recognition", "").strip()
        if said:
            await core.on_message(inbound(said, [media]))
            return
        # no words to act on: kept for the report that follows (as a photo sent before one
        # is), and the person is asked for them
        out = await core.intake.submit(inbound(media=[media]), report=False)
        if not out.duplicate and out.number is None:  # else: added to a report just made
            await core.on_notice(ctx, media_kept)

    async def location() -> None:
        try:
            point = GeoPoint(float(msg.get("Location_X", "")), float(msg.get("Location_Y", "")),
                             "gcj02")
        except ValueError:
            log.info("%s: a location without coordinates was ignored", ctx.channel)
            return
        await core.on_message(inbound(msg.get("Label", ""), location=point))

    async def link() -> None:
        parts = [msg.get("Title", ""), msg.get("Description", ""), msg.get("Url", "")]
        await core.on_message(inbound("\n".join(p for p in parts if p)))

    plans: dict[str, Work] = {"text": text, "image": image, "voice": audio_or_video,
                              "video": audio_or_video, "shortvideo": audio_or_video,
                              "location": location, "link": link}
    return plans.get(kind)
