"""The bridge's own words (registered with bot.notify.texts on import)."""

from __future__ import annotations

from bot.notify.texts import register

ZH = {
    "bridge.user": "群成员{tail}",  # a sender the connector gave no name
}
EN = {
    "bridge.user": "member {tail}",
}

register(ZH, EN)
