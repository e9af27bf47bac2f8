"""The core's front door: handlers hand it neutral messages and button presses."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks import chat as callback_chat
from bot.delivery import choices
from bot.deps import Ctx, Deps
from bot.intake.classify import is_chatter, is_command, is_report, report_word, strip_invisible
from bot.intake.writer import IntakeOutcome, IntakeWriter
from bot.messages import Action, Inbound
from bot.notify import tell
from bot.notify.texts import t
from bot.people import directory, onboarding
from bot.sqlutil import insert_for
from bot.tickets import actions, assign, by_words, offline, offline_words, queries, words
from bot.tickets.lifecycle import Refused
from models.enums import ChatKind, RouteStatus
from models.people import Identity
from models.tickets import InboundLog, PendingInput, SentMessage, Ticket

log = logging.getLogger(__name__)

CANCEL_WORDS = {"取消", "cancel", "算了"}
QUERY_WORDS = ("查询", "查", "进度", "怎么样", "咋样", "如何", "状态", "进展如何", "处理了吗")
MY_WORDS = {"我的工单", "我的报事", "/my"}
QUEUE_WORDS = {"待分派", "待分派工单", "/queue"}  # the unrouted queue, for coordinators
DESK_WORDS = {"网页", "/desk"}  # a sign-in link to the web desk, when the desk is on
# the desk (an edge) answers those words: (session, ctx) -> what to say
DeskLink = Callable[[AsyncSession, Ctx], Awaitable[str]]


@dataclass(slots=True)
class Handled:
    """What the core did with a message (handlers need nothing more; tests read it)."""

    # report | duplicate | folded | held | empty | chatter | media | place | resolve | return |
    # progress | query | offline | ignored
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
        self.media = deps.media  # channels keep arriving media here before handing it over
        self.desk_link: DeskLink | None = None

    async def on_message(self, ib: Inbound) -> Handled:
        ib.text = strip_invisible(ib.text)
        ib.sender_name = strip_invisible(ib.sender_name)
        if ib.location is not None and not ib.location.usable():
            log.warning("dropped an unusable location from %s", ib.channel)
            ib.location = None
        ctx = Ctx(ib.channel, ib.sender_id, ib.sender_name, ib.chat_id, ib.chat_kind,
                  ib.message_id)
        text = ib.text.strip()
        code = onboarding.typed_code(text) \
            if ib.chat_kind == ChatKind.PRIVATE and not ib.media else None
        if code is not None:  # a staff member's invite code, typed where no link can carry it
            await self.on_start(ctx, code)
            return Handled("start")
        n = choices.number(text) if not ib.media else None
        if n is not None:
            done = await self._choose(ctx, ib, n)
            if done is not None:
                return done
        # an action in words or a query comes first: it also answers while a question waits
        call = callback_chat.parse(text) if not ib.media else None
        if call is not None:
            done = await self._act_on(
                ctx, ib, lambda s: callback_chat.carry_out(s, self.deps, ctx, call), "callback")
            if done is not None:
                return done
        # 代报: staff filing for a resident met face to face, and photos sent just after it
        filing = offline_words.parse(text)
        if filing is not None:
            done = await self._act_on(
                ctx, ib, lambda s: offline.carry_out(s, self.deps, ctx, ib, filing), "offline")
            if done is not None:
                return done
        if await offline.media_may_follow(self.deps, ctx, ib):
            done = await self._act_on(
                ctx, ib, lambda s: offline.add_media(s, self.deps, ctx, ib), "media")
            if done is not None:
                return done
        said = words.parse(text, self.deps.prefix)
        if said is not None:
            done = await self._by_words(ctx, ib, said)
            if done is not None:
                return done
        if text in DESK_WORDS and not ib.media \
                and (self.desk_link is not None or ib.chat_kind == ChatKind.PRIVATE):
            async with self.deps.sm() as s, s.begin():
                if await self._first_time(s, ctx, ib.external_id):
                    # without the desk, 网页 is still not a report about a web page
                    ctx.reply(s, await self.desk_link(s, ctx) if self.desk_link is not None
                              else t("desk.off", ctx.lang))
            self.deps.wake_outbox()
            return Handled("desk")
        query = self._query(text)
        if query is not None:
            async with self.deps.sm() as s, s.begin():
                if not await self._first_time(s, ctx, ib.external_id):
                    return Handled("duplicate")
                if query == "my":
                    await queries.my_tickets(s, self.deps, ctx)
                elif query == "queue":
                    await queries.unrouted_queue(s, self.deps, ctx)
                else:
                    await queries.status(s, self.deps, ctx, query)
                await self._remind_pending(s, ctx)
            self.deps.wake_outbox()
            return Handled("query")
        # in a group where nobody can quote, the reporter's next words may answer "where?"
        if ib.chat_kind == ChatKind.PRIVATE or ib.location or ib.reply_to_bot \
                or not self.deps.quoting(ib.channel):
            done = await self._follow_up(ctx, ib)
            if done is not None:
                self.deps.wake_outbox()
                return done
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
                    await self._remind_pending(s, ctx)
            self.deps.wake_outbox()
        return Handled("chatter")

    async def _follow_up(self, ctx: Ctx, ib: Inbound) -> Handled | None:
        """Answers to a question the bot asked, and workers' replies to a card.

        Logged under the same key as a report, in the same transaction: a platform that
        redelivers (offset not yet confirmed when the process died) gets no second effect.
        Most messages are none of these: a read without the write lock says so first.
        """
        if not await self._may_follow_up(ctx, ib):
            return None
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

    async def _may_follow_up(self, ctx: Ctx, ib: Inbound) -> bool:
        """Could this message be an answer, a note on a card, a staff hint, or a first word
        in a new private chat? (A private report remembers its chat in the intake batch.)"""
        async with self.deps.reader()() as s:
            if await s.scalar(select(PendingInput.id).where(
                    PendingInput.channel == ctx.channel, PendingInput.user_id == ctx.user_id,
                    PendingInput.expires_at > self.deps.clock())):
                return True
            if await self._replied_ticket(s, ib) is not None:
                return True
            if ib.chat_kind != ChatKind.PRIVATE:
                return False
            if not is_report(ib) and await s.scalar(select(Identity.private_chat_id).where(
                    Identity.channel == ctx.channel, Identity.user_id == ctx.user_id)) \
                    != ctx.chat_id:
                return True
            return report_word(ib.text) is None and not is_command(ib.text) \
                and bool(await directory.standing_roles(s, ctx.channel, ctx.user_id))

    async def _answer_or_note(self, s: AsyncSession, ctx: Ctx, ib: Inbound) -> Handled | None:
        if ib.chat_kind == ChatKind.PRIVATE:
            await self._remember_private_chat(s, ctx)
        pending = await s.scalar(select(PendingInput).where(
            PendingInput.channel == ctx.channel, PendingInput.user_id == ctx.user_id,
            PendingInput.expires_at > self.deps.clock()))
        reply_ticket = await self._replied_ticket(s, ib)
        # in a group only a reply to the question, or a shared location, answers it; where
        # nobody can quote, the reporter's words in that group do when they name a place
        if pending is not None and pending.action == "place" and (
                reply_ticket not in (None, pending.ticket_id)
                or (ib.chat_kind == ChatKind.GROUP and reply_ticket is None
                    and ib.location is None
                    and (self.deps.quoting(ib.channel)
                         or not await self._names_a_place_here(s, ib, pending)))):
            return None
        if pending is not None and reply_ticket not in (None, pending.ticket_id):
            pending = None  # a reply to another ticket's card is about that ticket
        if pending is not None and is_chatter(ib):
            return None  # 谢谢 is not where the pothole is: thanked, and reminded (_chatter)
        if pending is not None and report_word(ib.text) is not None and reply_ticket is None:
            # a new report is not the answer to the question: file it, and say the question
            # still waits
            await self._remind_pending(s, ctx)
            return None
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
                and not is_command(ib.text)
                and await directory.standing_roles(s, ctx.channel, ctx.user_id)):
            ctx.reply(s, t("staff.private_hint" if self.deps.quoting(ctx.channel)
                           else "staff.private_hint_words", ctx.lang))
            return Handled("staff_hint")
        return None

    def _query(self, text: str) -> str | None:
        """"my" for 我的工单, a ticket number for a status question, None for anything else.

        A number inside a short question counts (查询 FS-…, FS-… 怎么样了); a longer text
        that mentions a number, or starts with a report word, is a report about it.
        """
        if text in MY_WORDS:
            return "my"
        if text in QUEUE_WORDS:
            return "queue"
        if report_word(text):
            return None
        m = words.number_pattern(self.deps.prefix).search(text)
        if m is None:
            return None
        rest = (text[:m.start()] + text[m.end():]).strip()
        if len(rest) <= 12 or any(w in rest for w in QUERY_WORDS):
            return m.group(0).upper()
        return None

    async def _choose(self, ctx: Ctx, ib: Inbound, n: int) -> Handled | None:
        """"2" where numbered choices were offered: what the second button does."""
        async def press(s: AsyncSession) -> str:
            action = await choices.chosen(s, ctx.channel, ctx.chat_id, ctx.user_id, n,
                                          self.deps.clock())
            if action is None:
                raise by_words.NotMeant
            return await actions.act(s, self.deps, ctx, action)
        return await self._act_on(ctx, ib, press, "choice")

    async def _by_words(self, ctx: Ctx, ib: Inbound, said: words.Said) -> Handled | None:
        """An action typed as words; None when it turned out not to be one (a report)."""
        return await self._act_on(
            ctx, ib, lambda s: by_words.carry_out(s, self.deps, ctx, ib, said), "words")

    async def _act_on(self, ctx: Ctx, ib: Inbound,
                      act: Callable[[AsyncSession], Awaitable[str]], kind: str
                      ) -> Handled | None:
        """Run an action for a message, answered in that chat; None if it was not one."""
        try:
            async with self.deps.sm() as s, s.begin():
                if not await self._first_time(s, ctx, ib.external_id):
                    return Handled("duplicate")
                if ib.chat_kind == ChatKind.PRIVATE:
                    await self._remember_private_chat(s, ctx)
                answer = await act(s)
                # a step that asked or answered here already (接单's card, 办结's question)
                # needs no second copy of its short answer
                if not ctx.replied(s):
                    ctx.reply(s, answer, reply_to=ctx.message_id)
                await self._remind_pending(s, ctx)
        except by_words.NotMeant:
            return None
        except Refused as no:
            async with self.deps.sm() as s, s.begin():
                # logged here, not above: that transaction was rolled back with the refusal
                if await self._first_time(s, ctx, ib.external_id):
                    ctx.reply(s, str(no), reply_to=ctx.message_id)
        self.deps.wake_outbox()
        return Handled(kind)

    async def _remind_pending(self, s: AsyncSession, ctx: Ctx) -> None:
        """A question still waits for this person: say so, so the answer is not forgotten."""
        pending = await s.scalar(select(PendingInput).where(
            PendingInput.channel == ctx.channel, PendingInput.user_id == ctx.user_id,
            PendingInput.expires_at > self.deps.clock()))
        if pending is None:
            return
        number = await s.scalar(select(Ticket.number).where(Ticket.id == pending.ticket_id))
        if number:
            ctx.reply(s, t(f"pending.{pending.action}", ctx.lang, number=number))

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

    async def _names_a_place_here(self, s: AsyncSession, ib: Inbound,
                                  pending: PendingInput) -> bool:
        """Words in the group the ticket was reported in, naming a place the router knows."""
        chat = await s.scalar(select(Ticket.chat_id).where(Ticket.id == pending.ticket_id))
        if chat != ib.chat_id or not ib.text.strip():
            return False
        res = self.deps.county.index.router.route(ib.text)
        return res.status == RouteStatus.ROUTED or bool(res.candidates)

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

    async def on_action(self, ctx: Ctx, action: Action, key: str | None = None,
                        in_chat: bool = False) -> tuple[str, bool]:
        """A button press -> (short answer for the presser, done). A refusal changes nothing.

        `key` names the press itself (Telegram's callback query id): a redelivered press is
        answered without acting again. `in_chat`: the channel shows no short answer beside
        the chat (WeCom's cards), so the answer, or the refusal, is said in the chat unless
        the step already said something there.
        """
        dedup = key and f"cb:{key}"
        try:
            async with self.deps.sm() as s, s.begin():
                if not await self._first_time(s, ctx, dedup):
                    return t("action.duplicate", ctx.lang), True
                answer = await actions.act(s, self.deps, ctx, action)
                if in_chat and not ctx.replied(s):
                    ctx.reply(s, answer)
        except Refused as no:
            if in_chat:
                async with self.deps.sm() as s, s.begin():
                    # logged here: the transaction above was rolled back with the refusal
                    if await self._first_time(s, ctx, dedup):
                        ctx.reply(s, str(no))
                self.deps.wake_outbox()
            return str(no), False
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
        return bool(cast(CursorResult[Any], done).rowcount)

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
