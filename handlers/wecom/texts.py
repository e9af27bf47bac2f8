"""What staff on the WeCom app are told beyond the core's texts."""

from __future__ import annotations

from bot.notify.texts import register, t

ZH = {
    "wecom.media_kept": "已收到。请接着用文字说明"
                        "（报事写清问题和地点；进展请发“进展 编号 内容”）。",
    "wecom.invite": "企业微信：在应用“网格报事助手”里发送 {code}",
}
EN = {
    "wecom.media_kept": "Received. Please add words (for a report, what and where; for a note, "
                        "\"进展 NUMBER text\").",
    "wecom.invite": "WeCom: send {code} in the grid-intake app",
}
register(ZH, EN)


def invite_hint(code: str) -> str:
    """How a staff member redeems `code` in the WeCom app (one line, for `invite`)."""
    return t("wecom.invite", "zh", code=code)
