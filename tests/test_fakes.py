"""The Telegram fakes must behave like the real thing as far as aiogram can tell."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    GetChatMember,
    SendMessage,
)
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    ChatMemberAdministrator,
    ChatMemberMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
    Update,
)
from aiogram.types import KeyboardButton as ReplyButton

from tests.fakes.botapi import FakeBotAPI
from tests.fakes.recording import (
    RecordingBot,
    callback_update_json,
    make_callback_update,
    make_message_update,
    message_update_json,
)

TOKEN = "123:ABC"
GROUP = -1001234567890
USER = 555


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI(token=TOKEN, max_poll_wait=0.3) as server:
        yield server


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    real_bot = Bot(TOKEN, session=session)
    yield real_bot
    await real_bot.session.close()


def keyboard(*labels: str) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(text=label, callback_data=f"cb:{label}") for label in labels]
    return InlineKeyboardMarkup(inline_keyboard=[buttons])


# --------------------------------------------------------------------------- HTTP fake


async def test_get_me_and_send_message_round_trip(api: FakeBotAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123, "grid_intake_bot", True)

    first = await bot.send_message(GROUP, "收到，工单 FS-0001", reply_markup=keyboard("受理"))
    second = await bot.send_message(USER, "123")

    assert second.message_id == first.message_id + 1
    assert first.chat.id == GROUP and first.chat.type == "supergroup"
    assert first.from_user is not None and first.from_user.id == 123
    assert first.text == "收到，工单 FS-0001"
    # Plain == would also compare the bot mounted on results (a pydantic private attribute).
    assert first.reply_markup is not None
    assert first.reply_markup.model_dump() == keyboard("受理").model_dump()
    # Raw string params must stay strings even when they look like JSON numbers.
    assert api.sent(USER)[0]["text"] == "123"
    assert api.sent_texts(GROUP) == ["收到，工单 FS-0001"]
    assert api.sent(GROUP)[0]["chat_id"] == GROUP
    assert api.sent(GROUP)[0]["reply_markup"]["inline_keyboard"][0][0]["text"] == "受理"
    assert [c.method for c in api.calls] == ["getMe", "sendMessage", "sendMessage"]


async def test_reply_keyboard_is_not_echoed_and_reply_is_linked(api: FakeBotAPI, bot: Bot) -> None:
    api.push_update(message_update_json(1, GROUP, "supergroup", USER, "张三", text="路灯坏了"))
    markup = ReplyKeyboardMarkup(keyboard=[[ReplyButton(text="取消")]])
    sent = await bot.send_message(
        GROUP, "请补充位置", reply_markup=markup, reply_parameters=ReplyParameters(message_id=1)
    )
    assert sent.reply_markup is None
    assert sent.reply_to_message is not None and sent.reply_to_message.text == "路灯坏了"
    assert api.sent()[0]["reply_markup"] == {"keyboard": [[{"text": "取消"}]]}


async def test_get_updates_honours_offset(api: FakeBotAPI, bot: Bot) -> None:
    ids = [
        api.push_update(message_update_json(n, GROUP, "group", USER, "李四", text=f"#{n}"))
        for n in range(3)
    ]
    assert ids == [0, 1, 2]
    # Without an update_id the fake numbers it after the highest one seen.
    assert api.push_update({"message": {"chat": {"id": USER, "type": "private"}}}) == 3

    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [0, 1, 2, 3]
    assert updates[0].message is not None and updates[0].message.text == "#0"

    updates = await bot.get_updates(offset=2, timeout=0)
    assert [u.update_id for u in updates] == [2, 3]
    assert api.confirmed_offset == 2
    await api.wait_confirmed(1, timeout=0.1)
    with pytest.raises(TimeoutError):
        await api.wait_confirmed(2, timeout=0.05)

    # Confirmed updates are gone for good, even for a later call without offset.
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [2, 3]
    assert [u.update_id for u in await bot.get_updates(offset=4, timeout=0)] == []
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == []


async def test_long_poll_wakes_on_push_and_is_capped(api: FakeBotAPI, bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, api.push_update, message_update_json(7, USER, "private", USER, "王五"))
    started = time.monotonic()
    updates = await bot.get_updates(timeout=30)
    assert [u.update_id for u in updates] == [7]
    assert time.monotonic() - started < 0.25

    started = time.monotonic()
    assert await bot.get_updates(offset=8, timeout=30) == []
    assert 0.25 <= time.monotonic() - started < 1.0  # capped by max_poll_wait=0.3


async def test_injected_faults_surface_as_aiogram_errors(api: FakeBotAPI, bot: Bot) -> None:
    api.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(GROUP, "hello")
    assert retry.value.retry_after == 7
    assert "Too Many Requests: retry after 7" in str(retry.value)

    api.fail_next("sendmessage", status=500, count=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(GROUP, "hello")

    api.fail_next("sendMessage", status=403, description="Forbidden: bot was kicked")
    with pytest.raises(Exception, match="bot was kicked"):
        await bot.send_message(GROUP, "hello")

    ok = await bot.send_message(GROUP, "hello")
    assert [c.status for c in api.calls_of("sendMessage")] == [429, 500, 500, 403, 200]
    assert [m["result"]["message_id"] for m in api.sent()] == [ok.message_id]


async def test_unknown_method_and_bad_token(api: FakeBotAPI, bot: Bot) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{api.base_url}/bot{TOKEN}/sendTeleport", data={"chat_id": "1"})
        assert resp.status == 404
        assert await resp.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }
        # Telegram also accepts JSON bodies and any method-name case.
        resp = await http.post(
            f"{api.base_url}/bot{TOKEN}/SENDMESSAGE", json={"chat_id": USER, "text": "hi"}
        )
        assert (await resp.json())["result"]["text"] == "hi"
    assert api.calls[0].method == "sendTeleport"
    assert api.calls[0].params == {"chat_id": 1}
    # methods the product does not call are not answered either
    for unused in (
        bot.get_chat(GROUP),
        bot.send_location(GROUP, 30.0, 120.0),
        bot.edit_message_text("x", chat_id=GROUP, message_id=1),
    ):
        with pytest.raises(TelegramNotFound, match="method not found"):
            await unused

    wrong = Bot("999:WRONG", session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await wrong.session.close()


async def test_validation_errors_look_like_telegram(api: FakeBotAPI, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(GROUP, "")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(GROUP, "报" * 4097)
    # Markup does not count towards the limit.
    await bot.send_message(GROUP, "<b>" + "报" * 4000 + "</b>", parse_mode="HTML")


async def test_photo_upload_media_group_and_download(api: FakeBotAPI, bot: Bot) -> None:
    jpeg = b"\xff\xd8\xff\xe0 pretend this is a street lamp"
    sent = await bot.send_photo(GROUP, BufferedInputFile(jpeg, "lamp.jpg"), caption="现场照片")

    call = api.calls_of("sendPhoto")[0]
    assert call.params["photo"].startswith("attach://")
    assert [f.content for f in call.files.values()] == [jpeg]
    assert sent.photo is not None and sent.caption == "现场照片"

    downloaded = await bot.download(sent.photo[-1].file_id)
    assert downloaded is not None and downloaded.read() == jpeg

    album = await bot.send_media_group(
        USER,
        media=[
            InputMediaPhoto(media=sent.photo[-1].file_id, caption="对比"),
            InputMediaPhoto(media=BufferedInputFile(b"second", "b.jpg")),
        ],
    )
    assert len(album) == 2
    assert album[0].media_group_id == album[1].media_group_id is not None
    assert album[0].photo is not None and album[0].photo[-1].file_id == sent.photo[-1].file_id
    assert album[0].caption == "对比" and album[1].caption is None
    assert album[1].message_id == album[0].message_id + 1


async def test_keyboard_removal_and_not_modified(api: FakeBotAPI, bot: Bot) -> None:
    msg = await bot.send_message(GROUP, "待受理", reply_markup=keyboard("受理", "驳回"))
    cleared = await bot.edit_message_reply_markup(chat_id=GROUP, message_id=msg.message_id)
    assert isinstance(cleared, Message)
    assert cleared.reply_markup is None and cleared.text == "待受理"
    assert cleared.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=GROUP, message_id=msg.message_id)
    assert await bot.answer_callback_query("cbq-1", text="ok") is True
    assert [m["method"] for m in api.sent()] == ["sendMessage"]


async def test_chat_member_and_webhook(api: FakeBotAPI, bot: Bot) -> None:
    api.set_member_status(GROUP, USER, "administrator")

    me_member = await bot.get_chat_member(GROUP, 123)
    admin = await bot.get_chat_member(GROUP, USER)
    plain = await bot.get_chat_member(GROUP, 777)
    assert isinstance(me_member, ChatMemberAdministrator)
    assert isinstance(admin, ChatMemberAdministrator) and admin.can_restrict_members
    assert isinstance(plain, ChatMemberMember)
    api.set_member_status(GROUP, 123, "left")  # the bot was removed from the group
    assert (await bot.get_chat_member(GROUP, 123)).status == "left"

    assert await bot.set_webhook("https://example.invalid/tg", secret_token="s3cret") is True
    assert api.webhook_url == "https://example.invalid/tg"
    with pytest.raises(TelegramConflictError):
        await bot.get_updates(timeout=0)
    api.push_update(message_update_json(1, USER, "private", USER, "赵六", text="hi"))
    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert api.webhook_url == ""
    assert await bot.get_updates(timeout=0) == []
    assert api.calls_of("setWebhook")[0].params["secret_token"] == "s3cret"


async def test_dispatcher_polling_end_to_end(api: FakeBotAPI, bot: Bot) -> None:
    router = Router()

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.reply(f"已登记：{message.text}")

    seen: list[str | None] = []

    @router.callback_query(F.data == "ack")
    async def ack(query: CallbackQuery) -> None:
        assert isinstance(query.message, Message)
        seen.append(query.message.text)
        await query.answer("已确认")

    dp = Dispatcher()
    dp.include_router(router)
    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        update_id = api.push_update(
            message_update_json(0, GROUP, "supergroup", USER, "张三", text="井盖缺失")
        )
        reply = await api.wait_for_sent(lambda m: m["text"].startswith("已登记"), timeout=3)
        assert reply["chat_id"] == GROUP
        assert reply["reply_parameters"]["message_id"] == 0
        await api.wait_confirmed(update_id, timeout=3)

        api.push_update(callback_update_json(0, USER, "ack", GROUP, reply["result"]["message_id"]))
        answered = await api.wait_for_call("answerCallbackQuery", timeout=3)
        assert answered.params["text"] == "已确认"
        # The callback carries the bot's real message, not the builder's placeholder text.
        assert seen == ["已登记：井盖缺失"]
    finally:
        await dp.stop_polling()
        await polling


async def test_network_failure_is_a_network_error(api: FakeBotAPI, bot: Bot) -> None:
    await api.close()
    with pytest.raises(TelegramNetworkError):
        await bot.get_me()


# --------------------------------------------------------------------------- recording session


async def test_recording_session_through_dispatcher() -> None:
    bot = RecordingBot()
    router = Router()

    @router.message(F.text == "/report")
    async def report(message: Message) -> None:
        await message.answer("请描述问题", reply_markup=keyboard("取消"))

    @router.callback_query(F.data == "cb:取消")
    async def cancel(query: CallbackQuery) -> None:
        await query.answer()
        assert isinstance(query.message, Message)
        await query.message.edit_reply_markup(reply_markup=None)

    dp = Dispatcher()
    dp.include_router(router)

    update = make_message_update(1, GROUP, "supergroup", USER, "张三", text="/report", bot=bot)
    assert update.bot is bot
    await dp.feed_update(bot, update)
    assert bot.sent_texts() == ["请描述问题"]
    sent_id = bot.session.results[0].message_id
    assert sent_id >= 1_000_000
    stored = bot.session.messages[(GROUP, sent_id)]
    assert stored.reply_markup is not None
    assert stored.reply_markup.model_dump() == keyboard("取消").model_dump()

    await dp.feed_update(bot, make_callback_update(2, USER, "cb:取消", GROUP, sent_id))
    assert [type(r) for r in bot.requests] == [
        SendMessage, AnswerCallbackQuery, EditMessageReplyMarkup]
    assert bot.session.messages[(GROUP, sent_id)].reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=GROUP, message_id=sent_id)


async def test_recording_session_defaults_and_queues() -> None:
    bot = RecordingBot()
    me = await bot.get_me()
    assert (me.id, me.username, me.can_read_all_group_messages) == (42, "grid_intake_bot", True)
    assert bot.id == 42
    assert isinstance(await bot.get_chat_member(GROUP, 42), ChatMemberAdministrator)
    assert isinstance(await bot.get_chat_member(GROUP, USER), ChatMemberMember)
    assert await bot.delete_webhook() is True
    assert await bot.set_webhook("https://example.invalid") is True
    assert bot.session.webhook_url == "https://example.invalid"
    assert await bot.answer_callback_query("x") is True

    # a queued result wins once: here the bot is a plain member of one group
    bot.session.queue_result(GetChatMember, ChatMemberMember(user=me))
    assert isinstance(await bot.get_chat_member(GROUP, 42), ChatMemberMember)
    assert isinstance(await bot.get_chat_member(GROUP, 42), ChatMemberAdministrator)

    ok = await bot.send_message(USER, "first")
    photo = await bot.send_photo(
        USER, "AgACphoto", caption="图", reply_parameters=ReplyParameters(message_id=ok.message_id))
    assert photo.photo is not None and photo.photo[-1].file_id == "AgACphoto"
    assert photo.reply_to_message is not None and photo.reply_to_message.text == "first"
    album = await bot.send_media_group(
        GROUP, [InputMediaPhoto(media="a"), InputMediaPhoto(media="b")]
    )
    assert album[0].media_group_id == album[1].media_group_id
    assert bot.sent_texts(USER) == ["first"]

    bot.session.files["AgACphoto"] = b"jpeg bytes"
    downloaded = await bot.download("AgACphoto")
    assert downloaded is not None and downloaded.read() == b"jpeg bytes"

    # a method the product does not call fails loudly rather than answering something
    with pytest.raises(NotImplementedError, match="SendLocation"):
        await bot.send_location(GROUP, 30.0, 120.0)
    assert isinstance(bot.session.results[-1], NotImplementedError)


def test_update_builders() -> None:
    update = make_message_update(
        10,
        GROUP,
        "supergroup",
        USER,
        "张三",
        text="/report@grid_intake_bot 😀 @grid_intake_bot 路灯",
        username="zhangsan",
    )
    message = update.message
    assert message is not None and message.from_user is not None
    assert message.message_id == 10 and message.from_user.username == "zhangsan"
    entities = [(e.type, e.offset, e.length) for e in message.entities or []]
    # The emoji is two UTF-16 code units, which shifts the mention's offset.
    assert entities == [("bot_command", 0, 23), ("mention", 27, 16)]

    photo = make_message_update(
        11,
        USER,
        "private",
        USER,
        "张三",
        caption="照片",
        photo_file_id="AgAC1",
        media_group_id="g1",
    ).message
    assert photo is not None and photo.photo is not None
    assert photo.photo[-1].file_id == "AgAC1" and photo.media_group_id == "g1"
    assert photo.chat.type == "private" and photo.caption_entities is None

    replied = make_message_update(
        12,
        GROUP,
        "group",
        USER,
        "张三",
        location=(31.2, 121.5),
        reply_to_message=message,
        entities=[],
        message_id=99,
    ).message
    assert replied is not None and replied.location is not None
    assert replied.reply_to_message is not None and replied.reply_to_message.message_id == 10
    assert replied.message_id == 99 and replied.chat.title

    raw = callback_update_json(13, USER, "ack", GROUP, 1000, message_text="工单")
    callback = Update.model_validate(raw).callback_query
    assert callback is not None and callback.data == "ack"
    assert isinstance(callback.message, Message) and callback.message.text == "工单"
    assert callback.message.chat.type == "supergroup"
