"""`report` and `brief`: the command centre's files, read from the database in one pass.

Arguments arrive checked by run_bot.py's parser; what is left to go wrong here (no database,
an unknown community, a file that cannot be written) is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from bot.reports.csvfile import write_report_csv
from bot.reports.names import load_names
from bot.reports.period import Period, month
from bot.reports.table import Report, build_report
from bot.reports.xlsx import write_report_xlsx
from config.settings import Settings
from models.db import is_sqlite, make_engine, upgrade

T = TypeVar("T")


class Problem(Exception):
    """Something the operator can fix; its text is the one line they read."""


def _missing_database(settings: Settings) -> str | None:
    if not is_sqlite(settings.database_url):
        return None
    db = make_url(settings.database_url).database
    if db and db != ":memory:" and not Path(db).exists():
        return f"找不到数据库 {db}（请检查 DATABASE_URL），还没有可以统计的工单"
    return None


async def _read(settings: Settings, fn: Callable[[Connection], T]) -> T:
    await upgrade(settings.database_url)
    engine = make_engine(settings.database_url, reads_only=True)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _run(settings: Settings, fn: Callable[[Connection], T]) -> T:
    missing = _missing_database(settings)
    if missing:
        raise Problem(missing)
    return asyncio.run(_read(settings, fn))


def _write(path: Path, write: Callable[[Path], None]) -> None:
    try:
        write(path)
    except OSError as e:
        raise Problem(f"无法写入 {path}：{e.strerror or e}") from None


def report(settings: Settings, args: argparse.Namespace) -> int:
    tz = ZoneInfo(settings.timezone)
    period = Period(args.date_from, args.date_to, tz)
    now = datetime.now(UTC)
    try:
        built: Report = _run(settings, lambda c: build_report(c, period, now, args.by))
        out = Path(args.output)
        if args.format == "csv":
            _write(out, lambda p: write_report_csv(built, p))
        else:
            _write(out, lambda p: write_report_xlsx(built, p))
    except Problem as e:
        print(f"统计失败：{e}", file=sys.stderr)
        return 1
    print(f"已生成 {out}：{period.label()}，报事 {built.county.tickets} 件")
    return 0


def brief(settings: Settings, args: argparse.Namespace) -> int:
    # the brief's modules (and the chat texts they borrow state names from) load only here
    from bot.reports.brief import Brief, build_brief
    from bot.reports.brief_files import write_brief

    tz = ZoneInfo(settings.timezone)
    first: date = args.month
    period = month(first.year, first.month, tz)
    now = datetime.now(UTC)

    def build(conn: Connection) -> Brief:
        names = load_names(conn)
        community_id = names.community_id(args.community)
        if community_id is None:
            known = "、".join(code for code, _name in names.communities.values())
            raise Problem(f"没有编号为 {args.community} 的社区（现有：{known or '无'}）")
        return build_brief(conn, names, community_id, period, now)

    try:
        built = _run(settings, build)
        out = Path(args.output)
        _write(out, lambda p: write_brief(built, p))
    except Problem as e:
        print(f"生成简报失败：{e}", file=sys.stderr)
        return 1
    print(f"已生成 {out}：{built.title}")
    return 0
