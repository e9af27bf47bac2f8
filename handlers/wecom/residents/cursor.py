"""Where the report pull stands (wecom_sync_state), read and written inside a page's
transaction: the position never gets ahead of what is committed."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models.base import utcnow
from models.wecom import WeComSyncState

KEY = "resident_orders"


@dataclass(frozen=True, slots=True)
class Position:
    done_until: int  # start of the last complete run (unix seconds)
    since: int  # this run's begin_modify_time
    run_started: int | None  # None: no run under way
    page_cursor: str  # "" = this run's first page

    def start(self, now: int, overlap: int) -> Position:
        """A new run reads what changed since the last complete one began, less an overlap
        (WeCom's clock and ours differ; a report modified during the last run is read again)."""
        return Position(self.done_until, max(0, self.done_until - overlap), now, "")

    def after_page(self, next_cursor: str) -> Position:
        if next_cursor:
            return Position(self.done_until, self.since, self.run_started, next_cursor)
        return Position(self.run_started or self.done_until, self.since, None, "")

    def restarted(self) -> Position:
        return Position(self.done_until, self.since, self.run_started, "")


async def load(s: AsyncSession) -> Position:
    row = await s.get(WeComSyncState, KEY)
    if row is None:
        return Position(0, 0, None, "")
    return Position(row.done_until, row.since, row.run_started, row.page_cursor)


async def save(s: AsyncSession, pos: Position) -> None:
    row = await s.scalar(select(WeComSyncState).where(WeComSyncState.key == KEY))
    if row is None:
        row = WeComSyncState(key=KEY)
        s.add(row)
    row.done_until, row.since = pos.done_until, pos.since
    row.run_started, row.page_cursor = pos.run_started, pos.page_cursor
    row.updated_at = utcnow()
