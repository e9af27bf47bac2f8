"""Long polling that confirms a batch to Telegram only after every update in it was handled.

aiogram's own polling advances the offset as soon as it yields an update and runs handlers
as background tasks, so a crash loses what was fetched. Here a `getUpdates` batch is fetched
as raw JSON and each update is parsed on its own: one the installed aiogram cannot parse (a
shape from another Bot API version) is logged once and skipped instead of failing every
fetch. Updates of one chat are handled in order, chats side by side, and the offset moves
past the whole batch once every update in it was handled or given up on; a crash means
Telegram sends the batch again, and the idempotent intake turns the repeats into nothing.

An update whose handler fails never holds up the others and never makes them run again. A
transient database error (locked, connection lost: the transaction rolled back) is retried
for that update alone, up to 3 tries within 5 s; any other error, or one that outlasts the
retries, is logged with one traceback, answered with one apology, and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram import __version__ as aiogram_version
from aiogram.methods import TelegramMethod
from aiogram.types import ReplyParameters, Update
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from bot.health import ChannelHealth, Health
from bot.notify.texts import t

log = logging.getLogger(__name__)

RETRY_TRIES = 3  # tries of one update that failed on a transient error
RETRY_FIRST_DELAY = 0.5  # then doubled: tries at about 0 s, 0.5 s and 1.5 s
# no new try once this much has passed (a locked SQLite file answers after its busy timeout)
RETRY_WINDOW = 5.0
_TRANSIENT_DB = re.compile(r"database is locked|database table is locked|busy|connection",
                           re.IGNORECASE)


class RawUpdates(TelegramMethod[list[dict[str, Any]]]):
    """`getUpdates` answered as plain JSON, through the same bot session.

    aiogram's `GetUpdates` validates the whole array at once, so one update it cannot parse
    fails every fetch from then on.
    """

    __returning__ = list[dict[str, Any]]
    __api_method__ = "getUpdates"

    offset: int | None = None
    limit: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


def stale_after(timeout: int) -> float:
    """Seconds without a successful getUpdates after which intake counts as stuck."""
    return 3 * timeout + 30


def chat_key(update: Update) -> str:
    """Updates from one chat are handled in order; different chats run side by side."""
    if update.message:
        return f"c{update.message.chat.id}"
    if update.callback_query:
        return f"u{update.callback_query.from_user.id}"
    if update.my_chat_member:
        return f"c{update.my_chat_member.chat.id}"
    return f"x{update.update_id}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def transient(exc: BaseException) -> bool:
    """A database hiccup whose transaction rolled back, so running the update again is safe.

    Bot API errors are not retried: they come after the core call committed, and a second
    run would repeat its effects (a second keyboard, a second notice).
    """
    if isinstance(exc, sqlite3.OperationalError):
        return bool(_TRANSIENT_DB.search(str(exc)))
    if not isinstance(exc, sa_exc.SQLAlchemyError):
        return False
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return bool(_TRANSIENT_DB.search(str(exc.orig))) or any(
            isinstance(e, ConnectionError | TimeoutError) for e in _causes(exc))
    return False


def _brief(exc: BaseException) -> str:
    # a statement's parameters can hold what residents wrote: name the error, not the row
    detail = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    return f"{type(exc).__name__}: {str(detail)[:200]}"


def _parse_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{exc.error_count()} errors, first at {where}: {first['msg']}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


class Poller:
    def __init__(self, bot: Bot, dp: Dispatcher, timeout: int = 25,
                 health: ChannelHealth | None = None) -> None:
        self.bot, self.dp, self.timeout = bot, dp, timeout
        self.offset: int | None = None
        self.health = health or Health().channel(
            "telegram", "polling", success="poll", stale_after=stale_after(timeout))

    async def run(self, stop: asyncio.Event) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        delay = 1.0
        allowed = self.dp.resolve_used_update_types()
        while not stop.is_set():
            try:
                updates = await self.bot(
                    RawUpdates(offset=self.offset, timeout=self.timeout, allowed_updates=allowed),
                    request_timeout=self.timeout + 10)
                delay = 1.0
            except Exception as e:  # network or API trouble: back off, never give up
                log.warning("getUpdates failed (%s); retrying in %.0fs", type(e).__name__, delay)
                self.health.failed(f"getUpdates: {type(e).__name__}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 60)
                continue
            self.health.ok()
            if updates:
                await self.handle(updates)
        if self.offset is not None:
            try:  # confirm what was handled; the one update this returns stays unconfirmed
                await self.bot(RawUpdates(offset=self.offset, timeout=0, limit=1))
            except Exception:
                log.info("final offset confirm failed; handled updates will be deduplicated")

    async def handle(self, batch: Sequence[Any]) -> int:
        """Feed one getUpdates batch (raw JSON); returns how many updates were skipped.

        Whatever happened, the offset moves past the whole batch.
        """
        ids = [r["update_id"] for r in batch if isinstance(r, dict)
               and isinstance(r.get("update_id"), int) and not isinstance(r["update_id"], bool)]
        lanes: dict[str, list[Update]] = defaultdict(list)
        skipped = 0
        for raw in batch:
            update = self._parse(raw)
            if update is None:
                skipped += 1
            else:
                lanes[chat_key(update)].append(update)
        skipped += sum(await asyncio.gather(*(self._lane(lane) for lane in lanes.values())))
        if ids:
            self.offset = max(max(ids) + 1, self.offset or 0)
        return skipped

    def _parse(self, raw: Any) -> Update | None:
        try:
            return Update.model_validate(raw, context={"bot": self.bot})
        except Exception as e:
            uid = raw.get("update_id") if isinstance(raw, dict) else None
            kinds = ",".join(k for k in raw if k != "update_id") if isinstance(raw, dict) else "?"
            log.warning("update %s (%s) cannot be parsed by aiogram %s (%s); skipping it",
                        uid, kinds, aiogram_version, _parse_problem(e))
            self.health.skip()
            return None

    async def _lane(self, updates: list[Update]) -> int:
        """One chat's updates in order; returns how many were skipped."""
        skipped = 0
        for update in updates:
            if not await self._feed(update):
                skipped += 1
        return skipped

    async def _feed(self, update: Update) -> bool:
        loop = asyncio.get_running_loop()
        started, delay = loop.time(), RETRY_FIRST_DELAY
        for attempt in range(1, RETRY_TRIES + 1):
            try:
                await self.dp.feed_update(self.bot, update)
                return True
            except Exception as e:
                in_time = loop.time() - started + delay <= RETRY_WINDOW
                if attempt < RETRY_TRIES and in_time and transient(e):
                    log.warning("update %s failed (%s); trying it again in %.1fs",
                                update.update_id, _brief(e), delay)
                    await asyncio.sleep(delay)
                    delay *= 2
                    continue
                tries = f" {attempt} times" if attempt > 1 else ""
                log.error("update %s failed%s; skipping it", update.update_id, tries,
                          exc_info=e)
                break
        self.health.skip()
        await self._apologise(update)
        return False

    async def _apologise(self, update: Update) -> None:
        """Whoever sent what we gave up on hears so, rather than waiting for a reply."""
        try:
            if update.message:
                await self.bot.send_message(
                    update.message.chat.id, t("error.generic"),
                    reply_parameters=ReplyParameters(message_id=update.message.message_id,
                                                     allow_sending_without_reply=True))
            elif update.callback_query:
                await self.bot.answer_callback_query(update.callback_query.id,
                                                     t("error.generic"), show_alert=True)
        except Exception:  # the platform may be what is failing; the log has the update
            log.warning("could not tell the sender of update %s", update.update_id)
