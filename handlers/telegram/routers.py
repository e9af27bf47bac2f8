"""aiogram Routers. They only translate: Telegram event -> core call (replies go via outbox)."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.enums import ChatMemberStatus
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message, Update

from bot.core import Core
from bot.deps import Ctx
from bot.notify.texts import t
from handlers.telegram.callbacks import unpack
from handlers.telegram.convert import chat_kind, display_name, from_service, to_inbound
from handlers.telegram.media import fetch
from models.enums import Channel, ChatKind

log = logging.getLogger(__name__)

# a tapped button whose message should lose its keyboard (the choice is made)
CONSUMING = {"rate", "place", "assign", "transfer_to", "setcat"}


def _ctx(message: Message) -> Ctx:
    user = message.from_user
    return Ctx(Channel.TELEGRAM.value, str(user.id if user else message.chat.id),
               display_name(user), str(message.chat.id), chat_kind(message),
               str(message.message_id))


def commands_router() -> Router:
    r = Router(name="commands")

    @r.message(CommandStart(), F.chat.type == "private")
    async def start(message: Message, command: CommandObject, core: Core) -> None:
        await core.on_start(_ctx(message), (command.args or "").strip())

    @r.message(Command("help"))
    async def help_(message: Message, core: Core) -> None:
        await core.on_help(_ctx(message))

    @r.message(Command("my"))
    async def my(message: Message, core: Core, event_update: Update, bot: Bot) -> None:
        me = await bot.me()
        ib = to_inbound(message, event_update.update_id, bot.id, me.username)
        ib.text = "/my"
        await core.on_message(ib)

    @r.message(Command("cancel"))
    async def cancel(message: Message, core: Core) -> None:
        await core.cancel_pending(_ctx(message))
        await core.on_help(_ctx(message))

    @r.message(Command("queue"), F.chat.type == "private")
    async def queue(message: Message, core: Core) -> None:
        await core.on_queue(_ctx(message))

    @r.message(Command("bind"), F.chat.type.in_({"group", "supergroup"}))
    async def bind(message: Message, command: CommandObject, core: Core, bot: Bot) -> None:
        ctx = _ctx(message)
        bound = await core.on_bind(ctx, command.args or "", message.chat.title or "")
        if bound and not await _sees_group_messages(bot, message.chat.id):
            await core.on_notice(ctx, t("bind.privacy", ctx.lang))

    return r


async def _sees_group_messages(bot: Bot, chat_id: int) -> bool:
    me = await bot.me()
    if me.can_read_all_group_messages:
        return True
    member = await bot.get_chat_member(chat_id, me.id)
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.CREATOR)


def callbacks_router() -> Router:
    r = Router(name="callbacks")

    @r.callback_query()
    async def on_button(query: CallbackQuery, core: Core) -> None:
        action = unpack(query.data)
        user = query.from_user
        if action is None:
            # forged, stale-format or foreign data: refuse, change nothing
            await query.answer(t("worker.not_allowed"), show_alert=True)
            return
        msg = query.message
        chat_id = str(msg.chat.id) if msg else str(user.id)
        kind = ChatKind.PRIVATE if (msg is None or msg.chat.type == "private") else ChatKind.GROUP
        ctx = Ctx(Channel.TELEGRAM.value, str(user.id), display_name(user), chat_id, kind,
                  str(msg.message_id) if msg else None)
        answer, ok = await core.on_action(ctx, action, key=query.id)
        await query.answer(answer[:200], show_alert=not ok)
        if ok and action.op in CONSUMING and isinstance(msg, Message):
            try:
                await msg.edit_reply_markup(reply_markup=None)
            except Exception:  # the keyboard is cosmetic; the state change already committed
                log.debug("could not clear keyboard", exc_info=True)

    return r


def messages_router() -> Router:
    r = Router(name="messages")

    @r.message()
    async def any_message(message: Message, core: Core, event_update: Update, bot: Bot) -> None:
        if from_service(message):
            return
        me = await bot.me()
        ib = to_inbound(message, event_update.update_id, bot.id, me.username)
        ib.media = await fetch(bot, ib.media, core.media)
        await core.on_message(ib)

    return r


def build_routers() -> list[Router]:
    return [commands_router(), callbacks_router(), messages_router()]
