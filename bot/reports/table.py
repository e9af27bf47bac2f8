"""A report as plain tables: Chinese headers, one row per group, the total last.

The XLSX, CSV and Markdown writers all draw from these, so a column means the same in each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection

from bot.reports.names import Names, load_names
from bot.reports.partners import by_partner
from bot.reports.period import Period
from bot.reports.rates import By, Counts, compute, roll_up, total
from bot.reports.ratings import SOURCES, RatingSource
from bot.reports.scope import Scope

Kind = Literal["text", "count", "rate", "hours", "decimal"]
Cell = str | int | float | None


@dataclass(frozen=True, slots=True)
class Column:
    header: str
    kind: Kind
    value: Callable[[Counts], int | float | None]


def _tally(source: str, figure: str) -> Callable[[Counts], int | float | None]:
    def value(c: Counts) -> int | float | None:
        v: int | float | None = getattr(c.tally(source), figure)
        return v

    return value


def metric_columns(sources: Sequence[RatingSource] = SOURCES) -> list[Column]:
    cols = [
        Column("报事量", "count", lambda c: c.tickets),
        Column("附议", "count", lambda c: c.co_reports),
        Column("不予受理", "count", lambda c: c.rejected),
        Column("待派单", "count", lambda c: c.waiting),
        Column("退回待派", "count", lambda c: c.returned),
        Column("应响应", "count", lambda c: c.ack_due),
        Column("按时响应", "count", lambda c: c.ack_on_time),
        Column("响应率", "rate", lambda c: c.response_rate),
        Column("应办结", "count", lambda c: c.resolve_due),
        Column("按期办结", "count", lambda c: c.resolved_on_time),
        Column("按期办结率", "rate", lambda c: c.resolve_rate),
    ]
    for s in sources:
        cols += [
            Column(f"参评数（{s.label}）", "count", _tally(s.key, "rated")),
            Column(f"满意（{s.label}）", "count", _tally(s.key, "satisfied")),
            Column(f"基本满意（{s.label}）", "count", _tally(s.key, "fairly")),
            Column(f"不满意（{s.label}）", "count", _tally(s.key, "unsatisfied")),
            Column(f"满意率（{s.label}）", "rate", _tally(s.key, "rate")),
        ]
    if len(sources) > 1:
        cols.append(Column("满意率（合计）", "rate", lambda c: c.all_ratings().rate))
    cols += [
        Column("平均接单用时（小时）", "hours", lambda c: c.avg_ack_hours),
        Column("平均办结用时（小时）", "hours", lambda c: c.avg_resolve_hours),
        Column("被督办工单", "count", lambda c: c.escalated),
        Column("督办次数", "count", lambda c: c.escalations),
        Column("重办工单", "count", lambda c: c.reopened),
        Column("重办次数", "count", lambda c: c.reopens),
    ]
    return cols


def rate_columns(sources: Sequence[RatingSource] = SOURCES) -> list[Column]:
    """The three rates, as the chart and the brief show them."""
    return [c for c in metric_columns(sources) if c.kind == "rate"]


LABELS: dict[By, list[str]] = {
    "community": ["社区编号", "社区"],
    "grid": ["网格编号", "网格", "所属社区"],
    "worker": ["网格员", "所在网格"],
    "partner": ["单位编号", "协同单位", "类型"],
}
TITLES: dict[By, str] = {"community": "按社区", "grid": "按网格", "worker": "按网格员",
                         "partner": "按协同单位"}


@dataclass(slots=True)
class Table:
    title: str
    by: By
    headers: list[str]
    kinds: list[Kind]
    rows: list[list[Cell]]  # the total is the last row
    names: list[str]  # one display name per group row (the chart's categories)


def _label(by: By, key: int | None, names: Names) -> list[str]:
    if by == "community":
        return list(names.community(key))
    if by == "grid":
        return list(names.grid(key))
    if by == "partner":
        return list(names.partner(key))
    return list(names.worker(key))


def build_table(by: By, groups: Mapping[int | None, Counts], names: Names, total_label: str,
                sources: Sequence[RatingSource] = SOURCES) -> Table:
    cols = metric_columns(sources)
    present = sorted((k for k in groups if k is not None), key=lambda k: names.order(by, k))
    keys = [*present, *([None] if None in groups else [])]  # "no grid" and the like last
    labelled = [(_label(by, k, names), groups[k]) for k in keys]
    lead = LABELS[by]
    rows: list[list[Cell]] = [[*label, *(col.value(c) for col in cols)] for label, c in labelled]
    name_at = 0 if by == "worker" else 1
    total_row: list[Cell] = [total_label, *([""] * (len(lead) - 1))]
    whole = total(groups.values())
    rows.append([*total_row, *(col.value(whole) for col in cols)])
    kinds: list[Kind] = ["text"] * len(lead)
    return Table(TITLES[by], by, [*lead, *(c.header for c in cols)],
                 [*kinds, *(c.kind for c in cols)], rows,
                 [label[name_at] for label, _c in labelled])


@dataclass(slots=True)
class Report:
    period: Period
    as_of: datetime
    by: By
    county: Counts
    tables: dict[By, Table]
    sources: tuple[RatingSource, ...]


def build_report(conn: Connection, period: Period, as_of: datetime, by: By,
                 sources: Sequence[RatingSource] = SOURCES) -> Report:
    rows = compute(conn, Scope(period), as_of, sources)
    names = load_names(conn)
    order: list[By] = [by, *(b for b in ("community", "grid", "worker") if b != by)]
    tables = {b: build_table(b, by_partner(conn, period, as_of, sources) if b == "partner"
                             else roll_up(rows, b), names,
                             "转办合计" if b == "partner" else "全县合计", sources)
              for b in order}
    return Report(period, as_of, by, total(rows.values()), tables, tuple(sources))
