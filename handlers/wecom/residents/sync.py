"""Residents' reports pulled from WeCom (report/resident/get_order_list,
https://developer.work.weixin.qq.com/document/path/97157): page by page, each page and the
position after it committed together, retried with backoff while WeCom is unreachable.

`ResidentSync` is serve's loop (every WECOM_RESIDENT_SYNC_SECONDS); `pull` is one complete run,
shared with `run_bot.py wecom residents sync`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.county.index import CountyHolder
from bot.delivery.media import MediaStore
from bot.tickets.sla import SlaConfig
from config.settings import Settings
from handlers.wechat.api import Unreachable, WeChatError
from handlers.wecom.api import WeComClient
from handlers.wecom.residents import cursor
from handlers.wecom.residents.media import fetch
from handlers.wecom.residents.orders import Order, parse_order
from handlers.wecom.residents.retry import PATIENT, Backoff, retrying
from handlers.wecom.residents.store import PageContext, PageResult, unknown, write_page

log = logging.getLogger(__name__)

ORDER_LIST = "/cgi-bin/report/resident/get_order_list"
PAGE_SIZE = 50  # WeCom's most per page
OVERLAP_SECONDS = 300
_T = TypeVar("_T")


@dataclass(slots=True)
class PullReport:
    pages: int = 0
    orders: int = 0
    new: int = 0
    steps: int = 0
    conflicts: int = 0

    def add(self, r: PageResult) -> None:
        self.pages += 1
        self.orders += r.orders
        self.new += r.new
        self.steps += r.steps
        self.conflicts += r.conflicts


async def pull(client: WeComClient, sm: async_sessionmaker[AsyncSession], county: CountyHolder,
               sla: SlaConfig, prefix: str, clock: Callable[[], datetime], *,
               backoff: Backoff = PATIENT, page_size: int = PAGE_SIZE,
               overlap: int = OVERLAP_SECONDS, stop: asyncio.Event | None = None,
               media: MediaStore | None = None, media_timeout: float = 20.0) -> PullReport:
    """One run to its last page, resuming a run a killed process left half done."""
    report = PullReport()
    async with sm() as s:
        pos = await cursor.load(s)
    if pos.run_started is None:
        pos = pos.start(int(clock().timestamp()), overlap)
    restarted = False
    while stop is None or not stop.is_set():
        body: dict[str, Any] = {"begin_modify_time": pos.since, "cursor": pos.page_cursor,
                                "limit": page_size}
        try:
            data = await retrying(partial(client.call, ORDER_LIST, body), backoff, stop)
        except WeChatError:
            if not pos.page_cursor or restarted:
                raise
            # a cursor WeCom no longer takes: the run again from its first page (the
            # reports already written are recognised by their order_id)
            restarted, pos = True, pos.restarted()
            continue
        orders = _orders(data.get("order_list"))
        nxt = str(data.get("next_cursor") or "")
        if nxt == pos.page_cursor:
            nxt = ""  # a cursor that does not move would loop forever
        fetched: dict[str, str] = {}
        if media is not None and orders:
            async with sm() as s:
                fresh = await unknown(s, orders)
            fetched = await fetch(client, media, fresh, media_timeout)
        index = await county.refresh()
        async with sm() as s, s.begin():
            result = await write_page(s, orders, PageContext(index, sla, prefix, clock(),
                                                             fetched))
            pos = pos.after_page(nxt)
            await cursor.save(s, pos)
        report.add(result)
        if not nxt:
            break
    return report


def _orders(raw: object) -> list[Order]:
    out: list[Order] = []
    for item in raw if isinstance(raw, list) else []:
        try:
            out.append(parse_order(item))
        except (ValueError, AttributeError):
            log.warning("skipped a WeCom report without an order id")
    return out


def configured(settings: Settings) -> bool:
    return bool(settings.wecom_corp_id and settings.wecom_secret)


def client_for(settings: Settings, sm: async_sessionmaker[AsyncSession]) -> WeComClient:
    assert settings.wecom_corp_id and settings.wecom_secret
    return WeComClient(settings.wecom_api_base, settings.wecom_corp_id,
                       settings.wecom_secret.get_secret_value(), sm,
                       settings.wechat_http_timeout_s)


class ResidentSync:
    """serve's loop: pull every WECOM_RESIDENT_SYNC_SECONDS until the app stops."""

    name = "wecom_resident"

    def __init__(self, settings: Settings, backoff: Backoff = PATIENT) -> None:
        self.settings, self.backoff = settings, backoff
        self.last: PullReport | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ResidentSync | None:
        if not configured(settings) or settings.wecom_resident_sync_seconds <= 0:
            return None
        return cls(settings)

    async def run(self, app: Any) -> None:
        """`app` is bot.app.App: its deps (sessions, county, SLA, clock, media), stop, outbox
        and health (/healthz turns 503 when no pull succeeded for three rounds and the
        longest backoff)."""
        deps, every = app.deps, self.settings.wecom_resident_sync_seconds
        health = app.health.channel(self.name, "pull", success="sync",
                                    stale_after=3 * every + self.backoff.most * 5)
        client = client_for(self.settings, deps.sm)
        try:
            while not app.stop.is_set():
                try:
                    self.last = await pull(client, deps.sm, deps.county, deps.sla, deps.prefix,
                                           deps.clock, backoff=self.backoff, stop=app.stop,
                                           media=deps.media)
                    health.ok()
                    if self.last.new or self.last.steps:
                        deps.wake_outbox()
                except (Unreachable, WeChatError) as e:
                    health.failed(type(e).__name__)
                    log.warning("居民上报 sync paused: %s", e)
                except DBAPIError as e:  # its text carries the rows' values: a mobile
                    health.failed(type(e).__name__)
                    log.error("居民上报 sync failed in the database (%s); will retry",
                              type(e.orig).__name__)
                except Exception as e:
                    health.failed(type(e).__name__)
                    log.exception("居民上报 sync failed; will retry")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(app.stop.wait(), timeout=every)
        finally:
            await client.close()
