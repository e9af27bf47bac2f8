"""`callbacks plan` and `callbacks record`: the command centre's weekly call-backs (回访).

    run_bot.py callbacks plan --week 2026-W49 [-o 回访表.xlsx]
    run_bot.py callbacks record 2026W49-001 满意 [备注…] [--by 王敏]
    run_bot.py callbacks record 2026W49-001 社区满意 网格员不满意 业委会无 路灯还是不亮
    run_bot.py callbacks record H123 未接通
    run_bot.py callbacks record --sheet 回访表.xlsx        (the filled call sheet)

The result words are the same as in chat (bot/callbacks/words.py). What goes wrong here is one
line on stderr and exit 1; nothing printed carries a phone number.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.app import build_app
from bot.callbacks import words
from bot.callbacks.draw import Quota
from bot.callbacks.filled import read_filled
from bot.callbacks.plan import Planned, Rules, plan_week
from bot.callbacks.record import record
from bot.callbacks.sheet import lines, write_call_sheet
from bot.callbacks.texts import EXAMPLE
from bot.callbacks.week import Week
from bot.tickets.lifecycle import Actor, Refused
from config.settings import Settings
from models.base import utcnow
from models.enums import Role

Clock = Callable[[], datetime]


def run(settings: Settings, args: argparse.Namespace, clock: Clock = utcnow) -> int:
    if args.callbacks_cmd == "plan":
        return asyncio.run(_plan(settings, args, clock))
    return asyncio.run(_record(settings, args, clock))


async def _plan(settings: Settings, args: argparse.Namespace, clock: Clock) -> int:
    try:
        week = Week.parse(args.week)
        rules = Rules(Quota(settings.callback_per_community_min,
                            settings.callback_per_community_max),
                      settings.callback_cooldown_weeks, ZoneInfo(settings.timezone))
    except ValueError as e:
        print(f"抽取失败：{e}", file=sys.stderr)
        return 1
    out = Path(args.output or f"回访表-{week}.xlsx")
    app = await build_app(settings, {}, clock=clock)
    try:
        async with app.deps.sm() as s, s.begin():
            planned = await plan_week(s, week, rules, clock())
            found = await lines(s, week)
    finally:
        await app.close()
    try:
        write_call_sheet(week, found, out, rules.tz)
    except OSError as e:
        print(f"无法写入 {out}：{e.strerror or e}", file=sys.stderr)
        return 1
    print(f"已生成 {out}：{_summary(planned)}")
    return 0


def _summary(p: Planned) -> str:
    communities = len({c.community_id for c in p.calls})
    line = f"{p.week} 电话回访 {len(p.calls)} 户，{communities} 个社区"
    if p.carried:
        line += f"，其中上周未接通再拨 {p.carried} 户"
    if not p.new:
        line += "（本周名单此前已抽取，按原名单输出）"
    return line


async def _record(settings: Settings, args: argparse.Namespace, clock: Clock) -> int:
    if args.sheet:
        try:
            results = read_filled(Path(args.sheet))
        except (OSError, ValueError) as e:
            print(f"读取回访表失败：{e}", file=sys.stderr)
            return 1
    else:
        try:
            said = words.parse(f"回访 {' '.join(args.said)}")
        except words.Unclear:
            said = None
        if said is None:
            print(f"没看懂这条回访结果。请这样写：{EXAMPLE.replace('回访 ', '')}"
                  "；打不通写：编号 未接通", file=sys.stderr)
            return 1
        results = [said]
    actor = Actor(roles=frozenset({Role.CENTRE}), name=args.by)
    app = await build_app(settings, {}, clock=clock)
    failed = 0
    try:
        for result in results:
            try:
                async with app.deps.sm() as s, s.begin():
                    print(await record(s, app.deps, result, actor))
            except Refused as no:
                print(str(no), file=sys.stderr)
                failed += 1
    finally:
        await app.close()
    return 1 if failed and len(results) == 1 else 0
