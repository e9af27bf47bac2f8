"""`run_bot.py wecom grids push [--dry-run]` and `wecom residents sync` (居民上报).

Exit codes: 0 done, 1 the county does not fit WeCom's limits (nothing changed), 2 not
configured, 3 WeCom unreachable, 4 WeCom refused, 5 the database failed. Failures print one
line, no traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy.exc import DBAPIError

from bot.app import prepare_database, sla_config
from bot.county.index import CountyHolder
from bot.delivery.media import MediaStore
from bot.notify.texts import t, use_language
from config.settings import Settings
from handlers.wechat.api import Unreachable, WeChatError
from handlers.wecom.residents import plan as planning
from handlers.wecom.residents import push, texts  # noqa: F401  (texts registers its keys)
from handlers.wecom.residents.retry import PATIENT, Backoff
from handlers.wecom.residents.sync import client_for, configured, pull
from models.base import utcnow
from models.db import make_engine, make_sessionmaker

log = logging.getLogger(__name__)
Out = Callable[[str], None]
OK, LIMITS, NOT_CONFIGURED, UNREACHABLE, REFUSED, DATABASE = 0, 1, 2, 3, 4, 5


def grids_push(settings: Settings, args: argparse.Namespace) -> int:
    return _guarded(settings, lambda: push_command(settings, bool(args.dry_run), print))


def residents_sync(settings: Settings, args: argparse.Namespace) -> int:
    return _guarded(settings, lambda: sync_command(settings, print))


def _guarded(settings: Settings, run: Callable[[], Coroutine[Any, Any, int]]) -> int:
    use_language(settings.language)
    if not configured(settings):
        print(t("wecom.cli.not_configured"))
        return NOT_CONFIGURED
    return asyncio.run(run())


async def _answering(out: Out, work: Awaitable[int]) -> int:
    """WeCom's failures as one line for the operator and an exit code."""
    try:
        return await work
    except Unreachable as e:
        log.info("WeCom unreachable: %s", e)
        out(t("wecom.cli.unreachable"))
        return UNREACHABLE
    except WeChatError as e:
        out(t("wecom.cli.refused", code=e.errcode))
        return REFUSED
    except DBAPIError as e:  # never its text: it carries the rows' values (a mobile)
        out(t("wecom.cli.database", what=type(e.orig).__name__))
        return DATABASE


async def push_command(settings: Settings, dry_run: bool, out: Out,
                       backoff: Backoff = PATIENT) -> int:
    return await _answering(out, _push(settings, dry_run, out, backoff))


async def sync_command(settings: Settings, out: Out, backoff: Backoff = PATIENT) -> int:
    return await _answering(out, _sync(settings, out, backoff))


async def _push(settings: Settings, dry_run: bool, out: Out, backoff: Backoff) -> int:
    await prepare_database(settings)
    engine = make_engine(settings.database_url)
    sm = make_sessionmaker(engine)
    try:
        async with sm() as s:
            nodes, names = await push.desired(s)
            have = await push.pushed(s)
        problems = planning.check(nodes, names)
        if problems:
            out(t("wecom.push.problems", n=len(problems)))
            for p in problems:
                out(f"  {p}")
            return LIMITS
        ops = planning.plan(nodes, have)
        if not ops:
            out(t("wecom.push.nothing"))
            return OK
        if dry_run:
            for op in ops:
                out(op.describe())
            out(t("wecom.push.plan", n=len(ops)))
            return OK
        client = client_for(settings, sm)
        try:
            root = await push.find_root(client, backoff)
            if root is None:
                out(t("wecom.cli.no_root"))
                return REFUSED
            done = await push.execute(client, sm, ops, have, root, backoff)
        finally:
            await client.close()
        for op in ops:
            out(op.describe())
        if done.invalid:
            out(t("wecom.push.invalid", ids="、".join(sorted(done.invalid))))
        out(t("wecom.push.done", added=done.added, updated=done.updated, deleted=done.deleted))
        return OK
    finally:
        await engine.dispose()


async def _sync(settings: Settings, out: Out, backoff: Backoff) -> int:
    await prepare_database(settings)
    engine = make_engine(settings.database_url)
    sm = make_sessionmaker(engine)
    county = CountyHolder(sm)
    client = client_for(settings, sm)
    try:
        await county.refresh(force=True)
        report = await pull(client, sm, county, sla_config(settings), settings.ticket_prefix,
                            utcnow, backoff=backoff,
                            media=MediaStore(settings.media_root(), settings.media_max_bytes))
        out(t("wecom.sync.done", n=report.orders, new=report.new, steps=report.steps))
        return OK
    finally:
        await client.close()
        await engine.dispose()
