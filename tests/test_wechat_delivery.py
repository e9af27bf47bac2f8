"""Messages out on the Official Account: the 48-hour window and templates, WeChat's errors,
shared access tokens, photos from the media store and texts cut to 2048 bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import prepare_database
from bot.messages import (
    Outbound,
    PermanentSendError,
    TemplateNotice,
    TransientSendError,
    Undeliverable,
)
from config.settings import Settings
from handlers.wechat.oa import OfficialAccount
from handlers.wechat.oa_sender import TemplateSpec, byte_pieces, fit
from handlers.wechat.tokens import REFRESH_EARLY, TokenStore
from models.db import make_engine, make_sessionmaker
from models.enums import ChatKind
from models.tickets import Outbox, Ticket
from tests.conftest import FakeClock
from tests.contract.wechat import OAStack, WeChatChannel, oa_stack, openid_of
from tests.fakes.wechat_api import CUSTOM, TEMPLATE, UPLOAD

REPORT = "报事 南关农贸市场门口垃圾堆了三天没人清运"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"


def _with(settings: Settings, **kw: object) -> Settings:
    """`settings` with an account configured (and these values), validated as from .env."""
    values: dict[str, object] = {"database_url": settings.database_url, "wechat_oa_appid": "wx1",
                                 "wechat_oa_secret": "s", "wechat_oa_token": "t", **kw}
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
async def stack(loaded_settings: Settings, clock: FakeClock) -> AsyncIterator[OAStack]:
    async with oa_stack(loaded_settings, clock) as s:
        yield s


async def _reported(ch: WeChatChannel) -> Ticket:
    await ch.join("worker")
    await ch.say("resident", REPORT)
    await ch.deliver()
    async with ch.app.deps.sm() as s:
        return (await s.scalars(select(Ticket))).one()


async def test_after_48_hours_of_silence_an_update_goes_as_a_template(stack: OAStack) -> None:
    ch = WeChatChannel(stack)
    ticket = await _reported(ch)
    resident = openid_of("resident")
    stack.clock.advance(hours=49)
    await ch.say("worker", f"接单 {ticket.number}")
    await ch.deliver()
    assert not any("已由网格员" in x for x in stack.api.texts(resident)
                   if not x.startswith("[template]"))  # no customer-service message
    [notice] = stack.api.templates
    assert notice["touser"] == resident and notice["template_id"] == "TPL-ticket-update"
    assert notice["data"]["character_string1"]["value"] == ticket.number
    assert notice["data"]["thing2"]["value"] == "已接单"
    assert notice["data"]["time3"]["value"].startswith("2026-03-05 11:")  # Shanghai time
    assert notice["data"]["thing4"]["value"].startswith("已由网格员")
    assert len(notice["data"]["thing4"]["value"]) <= 20
    # the worker wrote just now: their own answer is an ordinary message
    assert any(f"已接单：{ticket.number}" in x for x in stack.api.texts(openid_of("worker")))


@pytest.mark.parametrize("errcode", [45015, 45047])
async def test_a_refused_update_goes_as_a_template(stack: OAStack, errcode: int) -> None:
    ch = WeChatChannel(stack)
    ticket = await _reported(ch)
    resident = openid_of("resident")
    stack.api.fail(CUSTOM, errcode, touser=resident)
    await ch.say("worker", f"接单 {ticket.number}")
    await ch.deliver()
    [notice] = stack.api.templates
    assert notice["touser"] == resident
    assert notice["data"]["thing2"]["value"] == "已接单"
    async with stack.app.deps.sm() as s:
        assert (await s.scalars(select(Outbox).where(Outbox.status == "dead"))).all() == []


@pytest.mark.parametrize("errcode", [45015, 45047])
async def test_without_a_template_a_refusal_tells_the_coordinator(
        loaded_settings: Settings, clock: FakeClock, errcode: int) -> None:
    async with oa_stack(loaded_settings, clock, wechat_oa_template_id=None) as stack:
        ch = WeChatChannel(stack)
        await ch.join("coord")
        ticket = await _reported(ch)
        resident = openid_of("resident")
        stack.api.fail(CUSTOM, errcode, touser=resident)
        await ch.say("worker", f"接单 {ticket.number}")
        await ch.deliver()
        async with stack.app.deps.sm() as s:
            dead = (await s.scalars(select(Outbox).where(Outbox.status == "dead"))).one()
        assert dead.chat_id == resident and dead.attempts == 1
        assert f"errcode {errcode}" in (dead.last_error or "")
        assert "Undeliverable" in (dead.last_error or "")
        told = [x for x in ch.heard("coord") if x.startswith("【无法送达】")]
        assert len(told) == 1 and "已由网格员" in told[0]


async def test_an_expired_token_is_refreshed_once_and_the_send_retried(stack: OAStack) -> None:
    ch = WeChatChannel(stack)
    ticket = await _reported(ch)
    assert stack.api.token_fetches == 1
    stack.api.expire_tokens()
    await ch.say("worker", f"接单 {ticket.number}")
    await ch.deliver()
    assert stack.api.token_fetches == 2
    assert any("已由网格员" in x for x in stack.api.texts(openid_of("resident")))
    refused = [c for c in stack.api.calls_to(CUSTOM) if c.errcode]
    assert [c.errcode for c in refused] == [40001]


async def test_errors_map_to_retry_or_dead(stack: OAStack) -> None:
    sender = stack.oa.sender
    msg = Outbound(channel="wechat", chat_id="o-someone", chat_kind=ChatKind.PRIVATE,
                   text="您好")
    stack.api.fail(CUSTOM, 40001, times=2)  # refused again after the refresh
    with pytest.raises(TransientSendError):
        await sender.send(msg)
    stack.api.fail(CUSTOM, 40003)
    with pytest.raises(PermanentSendError) as e:
        await sender.send(msg)
    assert not isinstance(e.value, Undeliverable)
    stack.api.fail(CUSTOM, 43004)
    with pytest.raises(Undeliverable):
        await sender.send(msg)
    stack.api.fail(CUSTOM, -1)
    with pytest.raises(TransientSendError):
        await sender.send(msg)


async def test_a_hanging_api_times_out_as_transient(loaded_settings: Settings,
                                                   clock: FakeClock) -> None:
    async with oa_stack(loaded_settings, clock, wechat_http_timeout_s=0.3) as stack:
        stack.api.delay = 2.0
        with pytest.raises(TransientSendError):
            await stack.oa.sender.send(Outbound(channel="wechat", chat_id="o-1",
                                                chat_kind=ChatKind.PRIVATE, text="您好"))


async def test_an_unreachable_api_is_transient(loaded_settings: Settings) -> None:
    settings = _with(loaded_settings, wechat_api_base="http://127.0.0.1:9",
                     wechat_http_timeout_s=2.0)
    oa = OfficialAccount.from_settings(settings)
    assert oa is not None
    try:
        with pytest.raises(TransientSendError):
            await oa.sender.send(Outbound(channel="wechat", chat_id="o1",
                                          chat_kind=ChatKind.PRIVATE, text="您好"))
    finally:
        await oa.close()


async def test_a_photo_from_another_channel_is_uploaded_from_the_store(stack: OAStack) -> None:
    store = stack.app.core.media
    assert store is not None
    sha = store.put(JPEG).sha256
    msg = Outbound(channel="wechat", chat_id="o-worker", chat_kind=ChatKind.PRIVATE,
                   text="【新工单】…", photos=[f"telegram|AgACAgQAAx|{sha}",
                                               "telegram|no-bytes-here|"])
    await stack.oa.sender.send(msg)
    await stack.oa.sender.send(msg)  # the same photo again: uploaded once
    assert len(stack.api.calls_to(UPLOAD)) == 1
    kinds = [c["msgtype"] for c in stack.api.custom]
    assert kinds == ["image", "text", "image", "text"]
    uploaded = stack.api.custom[0]["image"]["media_id"]
    assert stack.api.media[uploaded] == JPEG


async def test_long_texts_are_cut_to_2048_bytes(stack: OAStack) -> None:
    text = "\n".join(["工单进展说明：" + "清运" * 100, "😀" * 600, "好"])
    pieces = byte_pieces(text)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert all(len(p.encode()) <= 2048 for p in pieces) and len(pieces) == 3
    await stack.oa.sender.send(Outbound(channel="wechat", chat_id="o-1",
                                        chat_kind=ChatKind.PRIVATE, text=text))
    assert [c["text"]["content"] for c in stack.api.custom] == pieces


def test_template_fields() -> None:
    spec = TemplateSpec.parse("T", "number=character_string1, state=phrase3,line=keyword2")
    assert spec.keys == {"number": "character_string1", "state": "phrase3", "line": "keyword2"}
    assert fit("phrase3", "已办结，待确认") == "已办结，…"
    assert fit("thing4", "短") == "短"
    for bad in ("", "number", "colour=thing1", "number=thing 1"):
        with pytest.raises(ValueError, match="WECHAT_OA_TEMPLATE_FIELDS"):
            TemplateSpec.parse("T", bad)


def test_not_configured_is_none(loaded_settings: Settings) -> None:
    assert OfficialAccount.from_settings(loaded_settings) is None
    with pytest.raises(ValueError, match="EncodingAESKey"):
        OfficialAccount.from_settings(_with(loaded_settings, wechat_oa_aes_key="too-short"))


async def test_processes_share_one_token_and_refresh_it_early(settings: Settings) -> None:
    await prepare_database(settings.model_copy(update={"sample_data": False}))
    engine = make_engine(settings.database_url)
    now = [datetime(2026, 3, 3, 2, 0, tzinfo=UTC)]
    fetched: list[str] = []

    async def fetch() -> tuple[str, int]:
        await asyncio.sleep(0.05)  # long enough for the other process to ask meanwhile
        fetched.append(f"T{len(fetched) + 1}")
        return fetched[-1], 7200

    def clock() -> datetime:
        return now[0]

    a, b = (TokenStore(make_sessionmaker(engine), "wechat:wx1", fetch, clock, poll=0.01)
            for _ in range(2))
    try:
        assert await asyncio.gather(a.get(), b.get()) == ["T1", "T1"]
        assert fetched == ["T1"]
        # inside the last five minutes: one refreshes, the other keeps the still valid token
        # (or, on a slow machine, already reads the new one); never a second fetch
        now[0] += timedelta(seconds=7200) - REFRESH_EARLY + timedelta(seconds=1)
        assert sorted(await asyncio.gather(a.get(), b.get())) in (["T1", "T2"], ["T2", "T2"])
        assert fetched == ["T1", "T2"]
        assert await a.get() == await b.get() == "T2"
        # WeChat refused T1: dropping it does not drop T2, which another process wrote
        await a.invalidate("T1")
        assert await b.get() == "T2" and fetched == ["T1", "T2"]
        await b.invalidate("T2")
        assert await b.get() == "T3"
        # `a` learns only when WeChat refuses its cached T2; then it reads T3, no new fetch
        await a.invalidate("T2")
        assert await a.get() == "T3" and fetched == ["T1", "T2", "T3"]
    finally:
        await engine.dispose()


async def test_the_template_send_maps_errors(stack: OAStack) -> None:
    notice = TemplateNotice("wechat", "o-1", "FS-20260303-0001", "已办结，待确认",
                            stack.clock(), "工单 FS-20260303-0001 已办结：垃圾已清运")
    assert await stack.oa.sender.send_template(notice) is not None
    stack.api.fail(TEMPLATE, 43101)
    with pytest.raises(Undeliverable):
        await stack.oa.sender.send_template(notice)
