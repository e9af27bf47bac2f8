"""The core's front door: handlers hand it neutral messages and button presses."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import actions, assign, directory, onboarding, queries, tell
from bot.asking import Refused
from bot.deps import Ctx, Deps
from bot.intake import IntakeOutcome, IntakeWriter
from bot.lifecycle import TransitionRefused
from bot.messages import Action, Inbound
from bot.report_text import is_chatter, is_command, is_report, report_word, strip_invisible
from bot.sqlutil import insert_for
from bot.texts import t
from models.enums import ChatKind
from models.people import Identity
from models.tickets import InboundLog, PendingInput, SentMessage, Ticket

log = logging.getLogger(__name__)

CANCEL_WORDS = {"取消", "cancel", "算了"}
MY_WORDS = {"我的工单", "我的报事", "/my"}


@dataclass(slots=True)
class Handled:
    """What the core did with a message (handlers need nothing more; tests read it)."""

    # report | duplicate | folded | held | empty | chatter | media | place | resolve | return |
    # progress | query | ignored
    kind: str
    outcome: IntakeOutcome | None = None


def _kind(out: IntakeOutcome) -> str:
    if out.duplicate:
        return "duplicate"
    return "folded" if out.folded else "held" if out.held else "empty" if out.empty \
        else "report"


class Core:
    def __init__(self, deps: Deps, intake: IntakeWriter) -> None:
        self.deps = deps
        self.intake = intake

    def ticket_pattern(self) -> re.Pattern[str]:
        return re.compile(rf"\b{re.escape(self.deps.prefix)}-\d{{8}}-\d{{4,}}\b", re.I)

    async def on_message(self, ib: Inbound) -> Handled:
        ib.text = strip_invisible(ib.text)
        ib.sender_name = strip_invisible(ib.sender_name)
        ctx = Ctx(ib.channel, ib.sender_id, ib.sender_name, ib.chat_id, ib.chat_kind,
                  ib.message_id)
        if ib.chat_kind == ChatKind.PRIVATE or ib.location or ib.reply_to_bot:
            done = await self._follow_up(ctx, ib)
            if done is not None:
                self.deps.wake_outbox()
                return done
        text = ib.text.strip()
        if self._is_query(text):
            async with self.deps.sm() as s, s.begin():
                if text in MY_WORDS:
                    await queries.my_tickets(s, self.deps, ctx)
                else:
                    await queries.status(s, self.deps, ctx, text.upper())
            self.deps.wake_outbox()
            return Handled("query")
        if is_command(text):
            if ib.chat_kind == ChatKind.PRIVATE:
                await self.on_help(ctx)
            return Handled("ignored")
        if is_report(ib):
            if is_chatter(ib):
                return await self._chatter(ctx, ib)
            out = await self.intake.submit(ib, report=True)
            return Handled(_kind(out), out)
        if ib.media or ib.location:  # kept for a report that may follow
            out = await self.intake.submit(ib, report=False)
            return Handled("duplicate" if out.duplicate else "media", out)
        return Handled("ignored")

    async def _chatter(self, ctx: Ctx, ib: Inbound) -> Handled:
        """Thanks or an emoji is never a ticket; in a group it gets no answer (less noise)."""
        if ib.chat_kind == ChatKind.PRIVATE:
            async with self.deps.sm() as s, s.begin():
                if await self._first_time(s, ctx, ib.external_id):
                    ctx.reply(s, t("chatter.thanks", ctx.lang))
            self.deps.wake_outbox()
        return Handled("chatter")

    async def _follow_up(self, ctx: Ctx, ib: Inbound) -> Handled | None:
        """Answers to a question the bot asked, and workers' replies to a card.

        Logged under the same key as a report, in the same transaction: a platform that
        redelivers (offset not yet confirmed when the process died) gets no second effect.
        """
        async with self.deps.sm() as s, s.begin():
            if await s.scalar(select(InboundLog.id).where(
                    InboundLog.channel == ib.channel, InboundLog.external_id == ib.external_id)):
                return Handled("duplicate")
            done = await self._answer_or_note(s, ctx, ib)
            if done is not None:
                s.add(InboundLog(channel=ib.channel, external_id=ib.external_id,
                                 chat_id=ib.chat_id, sender_id=ib.sender_id,
                                 received_at=ib.received_at))
            return done

    async def _answer_or_note(self, s: AsyncSession, ctx: Ctx, ib: Inbound) -> Handled | None:
        if ib.chat_kind == ChatKind.PRIVATE:
            await self._remember_private_chat(s, ctx)
        pending = await s.scalar(select(PendingInput).where(
            PendingInput.channel == ctx.channel, PendingInput.user_id == ctx.user_id,
            PendingInput.expires_at > self.deps.clock()))
        reply_ticket = await self._replied_ticket(s, ib)
        # in a group only a reply to the question, or a shared location, answers it
        if pending is not None and pending.action == "place" and (
                reply_ticket not in (None, pending.ticket_id)
                or (ib.chat_kind == ChatKind.GROUP and reply_ticket is None
                    and ib.location is None)):
            return None
        if pending is not None and reply_ticket not in (None, pending.ticket_id):
            pending = None  # a reply to another ticket's card is about that ticket
        if pending is not None:
            ticket = await s.get(Ticket, pending.ticket_id, with_for_update=True)
            if ticket is not None:
                return await self._answer(s, ctx, ib, pending, ticket)
        if reply_ticket is not None and ib.chat_kind == ChatKind.PRIVATE:
            ticket = await s.get(Ticket, reply_ticket, with_for_update=True)
            if ticket is not None:
                try:
                    said = await actions.progress_note(s, self.deps, ctx, ticket,
                                                       ib.text.strip(), ib.media)
                except Refused as no:
                    ctx.reply(s, str(no))
                    return Handled("progress")
                if said:
                    ctx.reply(s, said)
                    return Handled("progress")
        # staff talk to the bot privately about their cards; a stray message there is almost
        # never a new problem, and a ticket from it would be noise in their grid's figures
        if (ib.chat_kind == ChatKind.PRIVATE and report_word(ib.text) is None
                and not is_command(ib.text) and not self._is_query(ib.text.strip())
                and await directory.standing_roles(s, ctx.channel, ctx.user_id)):
            ctx.reply(s, t("staff.private_hint", ctx.lang))
            return Handled("staff_hint")
        return None

    def _is_query(self, text: str) -> bool:
        return text in MY_WORDS or self.ticket_pattern().fullmatch(text) is not None

    async def _answer(self, s: AsyncSession, ctx: Ctx, ib: Inbound, pending: PendingInput,
                      ticket: Ticket) -> Handled:
        text = ib.text.strip()
        await s.delete(pending)
        if text.lower() in CANCEL_WORDS:
            ctx.reply(s, t("worker.cancelled", ctx.lang))
            return Handled(pending.action)
        try:
            if pending.action == "resolve":
                ctx.reply(s, await actions.finish_resolve(s, self.deps, ctx, ticket, text,
                                                          ib.media))
            elif pending.action == "return":
                ctx.reply(s, await actions.finish_return(s, self.deps, ctx, ticket,
                                                         text or "—"))
            elif pending.action == "place":
                await assign.answer_place(s, self.deps, ctx, ib, ticket)
        except Refused as no:
            ctx.reply(s, str(no))
        return Handled(pending.action)

    async def _replied_ticket(self, s: AsyncSession, ib: Inbound) -> int | None:
        if not ib.reply_to_message_id:
            return None
        return await s.scalar(select(SentMessage.ticket_id).where(
            SentMessage.channel == ib.channel, SentMessage.chat_id == ib.chat_id,
            SentMessage.message_id == ib.reply_to_message_id))

    async def _remember_private_chat(self, s: AsyncSession, ctx: Ctx) -> None:
        known = await s.scalar(select(Identity.private_chat_id).where(
            Identity.channel == ctx.channel, Identity.user_id == ctx.user_id))
        if known != ctx.chat_id:
            await onboarding.ensure_identity(s, ctx, private=True, now=self.deps.clock())

    async def on_action(self, ctx: Ctx, action: Action, key: str | None = None
                        ) -> tuple[str, bool]:
        """A button press -> (short answer for the presser, done). A refusal changes nothing.

        `key` names the press itself (Telegram's callback query id): a redelivered press is
        answered without acting again.
        """
        try:
            async with self.deps.sm() as s, s.begin():
                if not await self._first_time(s, ctx, key and f"cb:{key}"):
                    return t("action.duplicate", ctx.lang), True
                answer = await actions.act(s, self.deps, ctx, action)
        except (Refused, TransitionRefused) as no:
            return (str(no) if isinstance(no, Refused)
                    else t("worker.not_allowed", ctx.lang)), False
        self.deps.wake_outbox()
        return answer, True

    async def on_start(self, ctx: Ctx, payload: str) -> None:
        """/start in private: plain welcome, an invite code, or following a ticket (t_<number>)."""
        async with self.deps.sm() as s, s.begin():
            if not await self._first_time(s, ctx, self._message_key(ctx)):
                return  # redelivered: the first answer is already on its way
            await onboarding.ensure_identity(s, ctx, private=True, now=self.deps.clock())
            if payload.startswith("t_"):
                await queries.follow(s, self.deps, ctx, payload[2:].upper())
            elif payload:
                ctx.reply(s, await onboarding.redeem(s, self.deps, ctx, payload))
                await tell.cards_waiting_for(s, self.deps, ctx)
            else:
                ctx.reply(s, t("start.welcome", ctx.lang))
        self.deps.wake_outbox()

    async def on_bind(self, ctx: Ctx, code: str, title: str) -> bool:
        async with self.deps.sm() as s, s.begin():
            if not await self._first_time(s, ctx, self._message_key(ctx)):
                return False
            answer, ok = await onboarding.bind_chat(s, self.deps, ctx, code, title)
            ctx.reply(s, answer, reply_to=ctx.message_id)
        self.deps.wake_outbox()
        return ok

    @staticmethod
    def _message_key(ctx: Ctx) -> str | None:
        # the same key intake logs a message under (see Inbound.external_id)
        return f"{ctx.chat_id}:{ctx.message_id}" if ctx.message_id else None

    async def _first_time(self, s: AsyncSession, ctx: Ctx, key: str | None) -> bool:
        """Log `key` in this transaction; False if it was already logged (a redelivery)."""
        if key is None:
            return True
        done = await s.execute(insert_for(s, InboundLog).values(
            channel=ctx.channel, external_id=key[:96], chat_id=ctx.chat_id,
            sender_id=ctx.user_id, media=[], has_media=False, received_at=self.deps.clock(),
        ).on_conflict_do_nothing(index_elements=["channel", "external_id"]))
        return bool(done.rowcount)

    async def on_notice(self, ctx: Ctx, text: str) -> None:
        async with self.deps.sm() as s, s.begin():
            ctx.reply(s, text)
        self.deps.wake_outbox()

    async def on_queue(self, ctx: Ctx) -> None:
        async with self.deps.sm() as s, s.begin():
            await queries.unrouted_queue(s, self.deps, ctx)
        self.deps.wake_outbox()

    async def on_help(self, ctx: Ctx) -> None:
        async with self.deps.sm() as s, s.begin():
            ctx.reply(s, t("help", ctx.lang))
        self.deps.wake_outbox()

    async def cancel_pending(self, ctx: Ctx) -> None:
        async with self.deps.sm() as s, s.begin():
            await s.execute(delete(PendingInput).where(PendingInput.channel == ctx.channel,
                                                       PendingInput.user_id == ctx.user_id))
