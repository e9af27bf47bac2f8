"""What the WeCom robots say: the smart robot in staff groups, the group webhook's posts."""

from __future__ import annotations

from bot.notify.texts import register

ZH = {
    "robot.user": "企业微信用户{tail}",
    "robot.group": "企业微信群{tail}",
    "robot.photos": "（另有 {count} 张图片，机器人发不了，请在企业微信应用里查看）",
    "webhook.alerts": "### 督办提醒（{count} 条）",
    "webhook.escalated": "- 工单 {number}（{place}）已超时，第 {level} 次督办",
    "webhook.undelivered": "- 工单 {number} 的一条通知没有送到，请另行联系",
    "webhook.undelivered_plain": "- 有一条通知没有送到，请到后台查看",
    "webhook.more": "- 另有 {count} 条，请到后台查看",
    "webhook.digest": "### 今日工单（{day}）",
    "webhook.digest_line":
        "- {community}：新报 {new}，在办 {open}，超时 {overdue}，今日办结 {resolved}",
    "webhook.digest_none": "- 今天没有工单",
    "webhook.no_community": "未归属社区",
}

EN = {
    "robot.user": "WeCom user {tail}",
    "robot.group": "WeCom group {tail}",
    "robot.photos": "({count} photo(s) not shown: the robot cannot send them; see the WeCom app)",
    "webhook.alerts": "### Escalations ({count})",
    "webhook.escalated": "- Ticket {number} ({place}) is overdue: escalation {level}",
    "webhook.undelivered": "- A notice about ticket {number} was not delivered; please follow up",
    "webhook.undelivered_plain": "- A notice was not delivered; see the desk",
    "webhook.more": "- {count} more; see the desk",
    "webhook.digest": "### Today's tickets ({day})",
    "webhook.digest_line":
        "- {community}: new {new}, open {open}, overdue {overdue}, resolved today {resolved}",
    "webhook.digest_none": "- No tickets today",
    "webhook.no_community": "No community",
}

register(ZH, EN)
