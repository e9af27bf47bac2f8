"""Long polling that confirms an update to Telegram only after its effects are committed.

aiogram's own polling advances the offset as soon as it yields an update and runs handlers
as background tasks, so a crash loses what was fetched. Here the offset moves past an update
only once its handler returned; a crash means Telegram sends it again, and the idempotent
intake turns the repeat into nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates
from aiogram.types import ReplyParameters, Update

from bot.texts import t

log = logging.getLogger(__name__)

MAX_TRIES = 5


def chat_key(update: Update) -> str:
    """Updates from one chat are handled in order; different chats run side by side."""
    if update.message:
        return f"c{update.message.chat.id}"
    if update.callback_query:
        return f"u{update.callback_query.from_user.id}"
    if update.my_chat_member:
        return f"c{update.my_chat_member.chat.id}"
    return f"x{update.update_id}"


class Poller:
    def __init__(self, bot: Bot, dp: Dispatcher, timeout: int = 25) -> None:
        self.bot, self.dp, self.timeout = bot, dp, timeout
        self.offset: int | None = None
        self._tries: dict[int, int] = defaultdict(int)

    async def run(self, stop: asyncio.Event) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        delay = 1.0
        allowed = self.dp.resolve_used_update_types()
        while not stop.is_set():
            try:
                updates = await self.bot(
                    GetUpdates(offset=self.offset, timeout=self.timeout, allowed_updates=allowed),
                    request_timeout=self.timeout + 10)
                delay = 1.0
            except Exception as e:  # network or API trouble: back off, never give up
                log.warning("getUpdates failed (%s); retrying in %.0fs", type(e).__name__, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 60)
                continue
            if updates and await self.handle(updates):
                # something failed and will come straight back: don't spin on it
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 30)
        if self.offset is not None:
            try:  # confirm what was handled; the one update this returns stays unconfirmed
                await self.bot(GetUpdates(offset=self.offset, timeout=0, limit=1))
            except Exception:
                log.info("final offset confirm failed; handled updates will be deduplicated")

    async def handle(self, updates: list[Update]) -> int:
        """Feed one getUpdates batch; returns how many chats stopped on a failure."""
        by_chat: dict[str, list[Update]] = defaultdict(list)
        for u in updates:
            by_chat[chat_key(u)].append(u)
        failed = await asyncio.gather(*(self._chat(batch) for batch in by_chat.values()))
        unfinished = [f for f in failed if f is not None]
        self.offset = min(unfinished) if unfinished else updates[-1].update_id + 1
        return len(unfinished)

    async def _chat(self, batch: list[Update]) -> int | None:
        """Handle in order; return the first update id that must come back, if any."""
        for u in batch:
            try:
                await self.dp.feed_update(self.bot, u)
                self._tries.pop(u.update_id, None)
            except Exception:
                self._tries[u.update_id] += 1
                if self._tries[u.update_id] >= MAX_TRIES:
                    log.exception("update %s failed %d times; skipping it", u.update_id,
                                  MAX_TRIES)
                    self._tries.pop(u.update_id, None)
                    await self._apologise(u)
                    continue
                log.exception("update %s failed; it will be fetched again", u.update_id)
                return u.update_id
        return None

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
