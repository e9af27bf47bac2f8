"""`desk link --person NAME_OR_ID`: a sign-in link printed for the first administrator."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url

from config.settings import Settings
from handlers.web.desk import base_url
from handlers.web.links import Links, TooMany, person_named
from handlers.web.staff import load
from models.base import utcnow
from models.db import is_sqlite, make_engine, make_sessionmaker, upgrade
from models.people import Identity


async def _link(settings: Settings, who: str) -> tuple[str | None, str]:
    await upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            person = await person_named(s, who)
            if person is None or await load(s, person.id, None) is None:
                return None, f"找不到可以使用网页工作台的人员“{who}”（社区、网格长或指挥中心；" \
                             "同名时请用编号）"
            # the desk acts as the person's chat account, where they have one
            ident = await s.scalar(select(Identity.id).where(
                Identity.person_id == person.id).order_by(Identity.id).limit(1))
            try:
                url = await Links(base_url(settings), utcnow).issue(s, person.id, ident)
            except TooMany:
                return None, "登录链接申请太频繁，请 10 分钟后再试"
            note = "" if ident else "（此人尚未绑定聊天账号：登录后只能查看，不能办理）"
            return url, f"{person.name} 的登录链接，10 分钟内有效，只能用一次{note}："
    finally:
        await engine.dispose()


def run(settings: Settings, args: argparse.Namespace) -> int:
    if settings.desk_secret_key is None:
        print("网页工作台未开启：请先设置 DESK_SECRET_KEY", file=sys.stderr)
        return 1
    db = make_url(settings.database_url).database if is_sqlite(settings.database_url) else None
    if db and db != ":memory:" and not Path(db).exists():
        print(f"找不到数据库 {db}（请检查 DATABASE_URL）", file=sys.stderr)
        return 1
    url, said = asyncio.run(_link(settings, args.person))
    if url is None:
        print(said, file=sys.stderr)
        return 1
    print(said)
    print(url)
    return 0
