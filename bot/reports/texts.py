"""The words a report file carries besides its numbers (full definitions: docs/rates.md)."""

from __future__ import annotations

from datetime import datetime

from bot.reports.period import Period

DEFINITIONS: list[list[str | int | float | None]] = [
    ["统计范围", "报事时间（按本县时区）落在统计期内的全部工单；"
                 "不予受理的只计入报事量和不予受理。"],
    ["响应率", "按时响应 ÷ 应响应。响应指当前承办人接单，未接单直接办结的以办结时间为准；"
               "转派、退回后重新派单、重办的，按最后一次派单及其接单时限计。"],
    ["应响应", "已响应的，加上接单时限已过仍未响应的；退回待派的和时限未到的暂不计入。"],
    ["按期办结率", "按期办结 ÷ 应办结。办结时限自首次派单起算，转派、退回不重新计时；"
                   "重办的按重办后的时限计。"],
    ["应办结", "已办结的，加上办结时限已过仍未办结的（含退回待派）；时限未到的暂不计入。"],
    ["满意率", "（满意 + 基本满意）÷ 参评数。居民每次评价都计一次，重办前后的评价都算；"
               "超时未评价自动结案的不计入。电话回访结果（对网格员的评价）单独列出，并与居民评价合计为满意率（合计）。"],
    ["平均接单用时", "从（最后一次）派单到响应的自然时长，单位小时。"],
    ["平均办结用时", "从居民报事到（最后一次）办结的自然时长，单位小时。"],
    ["督办", "被督办工单：超时后逐级上报过的工单数；"
             "督办次数：逐级上报的级数之和（每单最多 3 级）。"],
    ["重办", "居民不满意、工单重新办理：重办工单数和重办次数。"],
]


def as_of_note(as_of: datetime, period: Period) -> str:
    local = as_of.astimezone(period.tz)
    return (f"按居民报事时间统计（{period.tz.key}）；数据截至 {local:%Y-%m-%d %H:%M}，"
            "时限未到且尚未办理的工单暂不计入各率。")
