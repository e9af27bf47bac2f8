"""The bridge's own words (registered with bot.notify.texts on import)."""

from __future__ import annotations

from bot.notify.texts import register, t

ZH = {
    "bridge.user": "群成员{tail}",  # a sender the connector gave no name
    "bridge.invite": "消息桥：通过连接器私聊发送 /start {code}",
}
EN = {
    "bridge.user": "member {tail}",
    "bridge.invite": "Bridge: send /start {code} privately through the connector",
}

register(ZH, EN)


def invite_hint(code: str) -> str:
    """How a staff member redeems `code` through the bridge (one line, for `invite`)."""
    return t("bridge.invite", "zh", code=code)
