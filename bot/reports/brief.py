"""The monthly joint-meeting brief (联席会议) of one community, as titled sections."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Connection, and_, case, func, or_, select

from bot.notify.texts import scoped, t
from bot.reports.names import Names
from bot.reports.period import Period, previous_month
from bot.reports.rates import Counts, compute, total
from bot.reports.ratings import CALLBACK, CALLS, CHAT, TICKETS
from bot.reports.scope import Scope
from bot.reports.table import Cell, Kind
from models.callbacks import REACHED, UNREACHED
from models.enums import OPEN_STATES, Satisfaction
from models.enums import TicketState as S

REPEAT_AT = 3  # reports of one place in a month that make it a repeat problem
TOP_PLACES = 10
# seven or more digits, spaces or dashes allowed between them: a phone number in free text
_PHONE = re.compile(r"\+?\d(?:[\s-]?\d){6,}")
SUMMARY_CHARS = 40

CALLBACKS_NONE = "本月没有登记电话回访结果。"
_RATED = (("对社区", "community_rating"), ("对网格员", "worker_rating"),
          ("对业委会", "committee_rating"))


@dataclass(slots=True)
class Section:
    sheet: str  # a short name for the XLSX sheet
    title: str
    headers: list[str]
    kinds: list[Kind]
    rows: list[list[Cell]]
    note: str = ""
    row_kinds: list[Kind] | None = None  # when each row holds numbers of its own kind

    def kind(self, i: int, j: int) -> Kind:
        if self.row_kinds is not None and self.kinds[j] != "text":
            return self.row_kinds[i]
        return self.kinds[j]


@dataclass(slots=True)
class Brief:
    community: str
    month: Period
    as_of: datetime
    sections: list[Section] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{scoped(self.community, '社区')}{self.month.label()}联席会议简报"


def mask_phones(text: str) -> str:
    return _PHONE.sub("［号码已隐去］", text)


def build_brief(conn: Connection, names: Names, community_id: int, month: Period,
                as_of: datetime) -> Brief:
    _code, name = names.community(community_id)
    scope = Scope(month, community_id)
    now = total(compute(conn, scope, as_of).values())
    before = total(compute(conn, Scope(previous_month(month), community_id), as_of).values())
    brief = Brief(name, month, as_of)
    brief.sections = [
        _rates(now, before, month),
        _categories(conn, scope, now.tickets),
        _places(conn, scope),
        _repeats(conn, scope),
        _overdue(conn, names, community_id, month, as_of),
        _callbacks(conn, community_id, month),
    ]
    return brief


def _rates(now: Counts, before: Counts, month: Period) -> Section:
    prev = previous_month(month)
    rows: list[list[Cell]] = [
        ["报事量", now.tickets, before.tickets],
        ["响应率", now.response_rate, before.response_rate],
        ["按期办结率", now.resolve_rate, before.resolve_rate],
        [f"满意率（{CHAT.label}）", now.tally(CHAT.key).rate, before.tally(CHAT.key).rate],
        [f"满意率（{CALLBACK.label}）", now.tally(CALLBACK.key).rate,
         before.tally(CALLBACK.key).rate],
        ["平均接单用时（小时）", now.avg_ack_hours, before.avg_ack_hours],
        ["平均办结用时（小时）", now.avg_resolve_hours, before.avg_resolve_hours],
        ["被督办工单", now.escalated, before.escalated],
        ["重办工单", now.reopened, before.reopened],
    ]
    kinds: list[Kind] = ["count", "rate", "rate", "rate", "rate", "hours", "hours", "count",
                         "count"]
    return Section("概况", "三率与上月对比", ["指标", month.label(), prev.label()],
                   ["text", "count", "count"], rows, row_kinds=kinds,
                   note="上月的数字也按截至今天的数据计算；各率的算法与三率统计表“说明”页相同。")


def _callbacks(conn: Connection, community_id: int, month: Period) -> Section:
    """The month's call-backs by when they were made: each of the three ratings apart."""
    c = CALLS.c
    in_month = [c.community_id == community_id, c.recorded_at >= month.start,
                c.recorded_at < month.end]
    reached, unreached = (int(conn.scalar(select(func.count()).select_from(CALLS)
                                          .where(*in_month, c.outcome == outcome)) or 0)
                          for outcome in (REACHED, UNREACHED))
    rows: list[list[Cell]] = []
    for label, column in _RATED:
        col = c[column]
        row = conn.execute(
            select(*(func.count(case((col == v.value, 1))) for v in (
                Satisfaction.SATISFIED, Satisfaction.FAIRLY, Satisfaction.UNSATISFIED)))
            .where(*in_month, c.outcome == REACHED)).one()
        s_, f_, u_ = (int(n) for n in row)
        rated = s_ + f_ + u_
        rows.append([label, rated, s_, f_, u_, (s_ + f_) / rated if rated else None])
    if not reached and not unreached:
        return Section("电话回访", "电话回访", [], [], [], note=CALLBACKS_NONE)
    return Section("电话回访", "电话回访（按回访时间）",
                   ["评价对象", "参评户数", "满意", "基本满意", "不满意", "满意率"],
                   ["text", "count", "count", "count", "count", "rate"], rows,
                   note=f"本月回访 {reached + unreached} 次：接通 {reached} 户，"
                        f"未接通 {unreached} 次（未接通的下周重新抽到）。"
                        "没有业委会的不计入对业委会的参评户数。")


def _categories(conn: Connection, scope: Scope, reports: int) -> Section:
    rows = conn.execute(
        select(TICKETS.c.category, func.count()).where(*scope.where(TICKETS))
        .group_by(TICKETS.c.category).order_by(func.count().desc(), TICKETS.c.category)).all()
    return Section("类别", "报事类别", ["类别", "报事量", "占比"], ["text", "count", "rate"],
                   [[cat, n, n / reports if reports else None] for cat, n in rows])


def _place_counts(conn: Connection, scope: Scope) -> list[tuple[str, int]]:
    """Reports per place: a neighbour's co-report (附议) is one more time the place came up."""
    scope = replace(scope, with_co_reports=True)
    place = TICKETS.c.place_text
    rows = conn.execute(
        select(place, func.count()).where(*scope.where(TICKETS), place != "")
        .group_by(place).order_by(func.count().desc(), place)).all()
    return [(p, n) for p, n in rows]


def _places(conn: Connection, scope: Scope) -> Section:
    top = _place_counts(conn, scope)[:TOP_PLACES]
    return Section("地点", "报事较多的地点", ["地点", "报事量"], ["text", "count"],
                   [[p, n] for p, n in top], note="" if top else "本月的报事都没有写明地点。")


def _repeats(conn: Connection, scope: Scope) -> Section:
    places = [(p, n) for p, n in _place_counts(conn, scope) if n >= REPEAT_AT]
    detail: dict[str, tuple[list[str], list[str]]] = {p: ([], []) for p, _n in places}
    if places:
        for place, category, number in conn.execute(
                select(TICKETS.c.place_text, TICKETS.c.category, TICKETS.c.number)
                .where(*replace(scope, with_co_reports=True).where(TICKETS),
                       TICKETS.c.place_text.in_(list(detail)))
                .order_by(TICKETS.c.created_at)):
            cats, numbers = detail[place]
            if category not in cats:
                cats.append(category)
            numbers.append(number)
    return Section("重复报事", f"重复报事（同一地点一个月 {REPEAT_AT} 次及以上）",
                   ["地点", "报事量", "类别", "工单编号"], ["text", "count", "text", "text"],
                   [[p, n, "、".join(detail[p][0]), "、".join(detail[p][1])] for p, n in places],
                   note="" if places else "本月没有同一地点报事 3 次及以上的情况。")


def _overdue(conn: Connection, names: Names, community_id: int, month: Period,
             as_of: datetime) -> Section:
    c = TICKETS.c
    ack_phase = c.state.in_((S.ASSIGNED.value, S.REOPENED.value))
    late_resolve = c.resolve_due_at <= as_of
    rows = conn.execute(
        select(c.number, c.created_at, c.grid_id, c.category, c.place_text, c.state,
               c.ack_due_at, c.resolve_due_at, c.escalation_level, c.text)
        .where(c.community_id == community_id, c.state.in_([s.value for s in OPEN_STATES]),
               or_(late_resolve, and_(ack_phase, c.ack_due_at <= as_of)))
        .order_by(c.resolve_due_at, c.number)).all()
    tz = month.tz
    out: list[list[Cell]] = []
    for number, created, grid_id, category, place, state, ack_due, resolve_due, level, text \
            in rows:
        if resolve_due is not None and resolve_due <= as_of:
            what, due = "办结", resolve_due
        else:
            what, due = "接单", ack_due
        out.append([number, f"{created.astimezone(tz):%Y-%m-%d}", names.grid(grid_id)[1],
                    category, place, t(f"state.{state}", "zh"),
                    f"{what} {due.astimezone(tz):%m-%d %H:%M}",
                    round((as_of - due).total_seconds() / 86400, 1), level,
                    mask_phones(text)[:SUMMARY_CHARS]])
    return Section("超期工单", "超期未办结的工单（截至今天，不限报事月份）",
                   ["工单编号", "报事日期", "网格", "类别", "地点", "状态", "超过的期限",
                    "超期（天）", "督办级别", "内容摘要"],
                   ["text", "text", "text", "text", "text", "text", "text", "hours", "count",
                    "text"], out, note="" if out else "没有超期未办结的工单。")
