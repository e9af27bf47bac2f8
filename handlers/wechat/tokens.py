"""The Official Account's access token, shared by every process through the database.

WeChat keeps one live token per app: a fetch replaces the previous token (which keeps working
for about five minutes) and fetches are counted per day. So the token lives in the
`access_tokens` table; a process that finds it within REFRESH_EARLY of its expiry takes a
short lease on the row (`refreshing_until`), asks WeChat, and writes the new token. The others
keep using the current token meanwhile; only when there is no usable one do they wait, for at
most one lease, for the refresher to write.

A token WeChat calls invalid (40001, 42001, 40014) is dropped with `invalidate(token)`: only if
it is still the stored one, so a fresh token another process just wrote is kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.sqlutil import insert_for
from models.base import utcnow
from models.tokens import AccessToken

log = logging.getLogger(__name__)

REFRESH_EARLY = timedelta(minutes=5)
LEASE = timedelta(seconds=30)

Fetch = Callable[[], Awaitable[tuple[str, int]]]  # -> (token, seconds it lives)


class TokenUnavailable(Exception):
    """No usable token: WeChat refused to issue one, or another process is still asking."""


class TokenStore:
    def __init__(self, sm: async_sessionmaker[AsyncSession], key: str, fetch: Fetch,
                 clock: Callable[[], datetime] = utcnow, *, poll: float = 0.2) -> None:
        self._sm, self._key, self._fetch, self._clock, self._poll = sm, key, fetch, clock, poll
        self._cached: tuple[str, datetime] | None = None
        self._lock = asyncio.Lock()  # one refresh per process; lanes share its result

    async def get(self) -> str:
        cached = self._cached
        if cached is not None and cached[1] - REFRESH_EARLY > self._clock():
            return cached[0]
        async with self._lock:
            return await self._fresh()

    async def invalidate(self, token: str) -> None:
        if self._cached is not None and self._cached[0] == token:
            self._cached = None
        async with self._sm() as s, s.begin():
            await s.execute(update(AccessToken)
                            .where(AccessToken.key == self._key, AccessToken.token == token)
                            .values(expires_at=self._clock(), updated_at=self._clock()))

    async def _fresh(self) -> str:
        give_up = time.monotonic() + LEASE.total_seconds()
        while True:
            now = self._clock()
            token, expires = await self._read()
            if token is not None and expires is not None and expires - REFRESH_EARLY > now:
                self._cached = (token, expires)
                return token
            usable = token if token is not None and expires is not None and expires > now \
                else None
            if await self._claim(now):
                return await self._refresh(usable)
            if usable is not None:
                return usable  # another process is refreshing; this one works until then
            if time.monotonic() > give_up:
                raise TokenUnavailable("another process holds the refresh and wrote no token")
            await asyncio.sleep(self._poll)

    async def _refresh(self, usable: str | None) -> str:
        try:
            token, lives = await self._fetch()
        except Exception:  # cancelled instead: the lease runs out by itself
            await self._release()
            if usable is not None:
                log.warning("access token refresh failed; using the current one meanwhile")
                return usable
            raise
        expires = self._clock() + timedelta(seconds=max(lives, 60))
        async with self._sm() as s, s.begin():
            await s.execute(update(AccessToken).where(AccessToken.key == self._key).values(
                token=token, expires_at=expires, refreshing_until=None,
                updated_at=self._clock()))
        self._cached = (token, expires)
        log.info("access token refreshed; valid %d s", lives)
        return token

    async def _read(self) -> tuple[str | None, datetime | None]:
        async with self._sm() as s:
            row = (await s.execute(select(AccessToken.token, AccessToken.expires_at)
                                   .where(AccessToken.key == self._key))).first()
        return (row[0], row[1]) if row else (None, None)

    async def _claim(self, now: datetime) -> bool:
        async with self._sm() as s, s.begin():
            await s.execute(insert_for(s, AccessToken).values(key=self._key, updated_at=now)
                            .on_conflict_do_nothing(index_elements=["key"]))
            done = await s.execute(
                update(AccessToken)
                .where(AccessToken.key == self._key,
                       or_(AccessToken.refreshing_until.is_(None),
                           AccessToken.refreshing_until <= now),
                       # another process may have written a fresh token since our read
                       or_(AccessToken.token.is_(None), AccessToken.expires_at.is_(None),
                           AccessToken.expires_at <= now + REFRESH_EARLY))
                .values(refreshing_until=now + LEASE)
                .execution_options(synchronize_session=False))
        return bool(cast(CursorResult[Any], done).rowcount)

    async def _release(self) -> None:
        async with self._sm() as s, s.begin():
            await s.execute(update(AccessToken).where(AccessToken.key == self._key)
                            .values(refreshing_until=None))
