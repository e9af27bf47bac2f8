"""What the centre and grid leaders read about call-backs (zh, en)."""

from __future__ import annotations

from bot.notify.texts import register

EXAMPLE = ("回访 2026W49-001 满意；或 "
           "回访 2026W49-001 社区满意 网格员基本满意 业委会无 备注：路灯已修")

ZH = {
    "callback.centre_only": "只有指挥中心的工作人员可以登记回访结果。",
    "callback.usage": "没看懂这条回访结果。请这样写：" + EXAMPLE + "；打不通写：回访 编号 未接通",
    "callback.not_found": "没有找到回访 {ref}，请核对回访表上的编号。",
    "callback.already": "回访 {number} 已于 {when} 登记过（{said}），未重复登记。",
    "callback.saved": "已登记回访 {number}：{said}。",
    "callback.unreached": "已登记回访 {number}：未接通，下周会再抽到这一户。",
    "callback.reopened": "工单 {ticket} 已重新派单，并已告知网格长。",
    "callback.told_leader": "工单 {ticket} 当前为“{state}”，未重新派单，已告知网格长跟进。",
    "callback.said": "社区{community}，网格员{worker}，业委会{committee}",
    "leader.callback_unsatisfied": "【回访】工单 {number} 电话回访中居民对网格员的处理不满意"
                                   "（{note}），已重新派给{worker}，请督促办理。",
    "leader.callback_follow_up": "【回访】工单 {number} 电话回访中居民对网格员的处理不满意"
                                 "（{note}），请跟进。",
    "rating.satisfied": "满意",
    "rating.fairly": "基本满意",
    "rating.unsatisfied": "不满意",
    "rating.none": "无",
}
EN = {
    "callback.centre_only": "Only command-centre staff can record call-back results.",
    "callback.usage": "That call-back result is unclear. Write e.g.: " + EXAMPLE
                      + "; if nobody answered: 回访 NUMBER 未接通",
    "callback.not_found": "No call-back {ref}; check the number on the call sheet.",
    "callback.already": "Call-back {number} was recorded at {when} ({said}); not recorded again.",
    "callback.saved": "Call-back {number} recorded: {said}.",
    "callback.unreached": "Call-back {number} recorded as not reached; the household is drawn "
                          "again next week.",
    "callback.reopened": "Ticket {ticket} was reopened and its grid leader told.",
    "callback.told_leader": "Ticket {ticket} is {state}: not reopened; its grid leader was told.",
    "callback.said": "community {community}, grid worker {worker}, owners' committee {committee}",
    "leader.callback_unsatisfied": "[Call-back] Ticket {number}: the resident is not satisfied "
                                   "with the grid worker ({note}); reassigned to {worker}.",
    "leader.callback_follow_up": "[Call-back] Ticket {number}: the resident is not satisfied "
                                 "with the grid worker ({note}); please follow up.",
    "rating.satisfied": "satisfied",
    "rating.fairly": "fairly satisfied",
    "rating.unsatisfied": "not satisfied",
    "rating.none": "none",
}

register(ZH, EN)
