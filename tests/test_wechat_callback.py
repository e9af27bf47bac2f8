"""The Official Account's callback at /wechat/oa: WeChat's own sample decrypts through it, and
every forged, stale, replayed or hostile request is refused with nothing stored.

Real wechatpy crypto, real HTTP over loopback, the real core on an SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from wechatpy.crypto import WeChatCrypto

from bot.core import Handled
from bot.messages import Inbound
from config.settings import Settings
from handlers.wechat.signing import signature
from models.tickets import InboundLog, Outbox, Ticket
from tests.conftest import FakeClock
from tests.contract.wechat import TOKEN, OAStack, WeChatUsers, oa_stack

# WeChat's documented sample for the Official Account (WXBizMsgCrypt's Sample.py): compatible
# mode, the plaintext beside its encrypted copy
SAMPLE_TOKEN = "spamtest"
SAMPLE_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SAMPLE_APPID = "wx2c2769f8efd9abc2"
SAMPLE_TIMESTAMP = "1409735669"
SAMPLE_NONCE = "1320562132"
SAMPLE_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SAMPLE_PLAIN = (
    "<ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
    "<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>"
    "<CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId>")
SAMPLE_ENCRYPT = (
    "<Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87w"
    "zQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyW"
    "NlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrC"
    "VKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0"
    "CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]>"
    "</Encrypt>")
RESIDENT = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


@pytest.fixture
async def stack(loaded_settings: Settings, clock: FakeClock) -> AsyncIterator[OAStack]:
    async with oa_stack(loaded_settings, clock) as s:
        yield s


async def _stored(stack: OAStack) -> tuple[int, int, int]:
    async with stack.app.deps.sm() as s:
        return (await s.scalar(select(func.count()).select_from(InboundLog)) or 0,
                await s.scalar(select(func.count()).select_from(Ticket)) or 0,
                await s.scalar(select(func.count()).select_from(Outbox)) or 0)


@pytest.mark.parametrize("mode", ["compatible", "safe"])
async def test_the_documented_sample_decrypts_through_the_endpoint(
        loaded_settings: Settings, clock: FakeClock, mode: str) -> None:
    async with oa_stack(loaded_settings, clock, wechat_oa_token=SAMPLE_TOKEN,
                        wechat_oa_aes_key=SAMPLE_AES_KEY, wechat_oa_appid=SAMPLE_APPID,
                        wechat_replay_window_s=0) as stack:
        # compatible mode's plaintext is not signed: a changed copy must not be believed
        plain = SAMPLE_PLAIN.replace("abcdteT", "伪造的内容") if mode == "compatible" else \
            "<ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>"
        body = f"<xml>{plain}{SAMPLE_ENCRYPT}</xml>"
        params = {"timestamp": SAMPLE_TIMESTAMP, "nonce": SAMPLE_NONCE, "encrypt_type": "aes",
                  "msg_signature": SAMPLE_MSG_SIGNATURE}
        sample = WeChatCrypto(SAMPLE_TOKEN, SAMPLE_AES_KEY, SAMPLE_APPID)
        answer = await WeChatUsers(stack, crypto=sample).raw(body.encode(), params)
        assert answer.status == 200, answer.body
        async with stack.app.deps.sm() as s:
            ticket = (await s.scalars(select(Ticket))).one()
            logged = await s.scalar(select(InboundLog.external_id).where(
                InboundLog.ticket_id == ticket.id))
        assert ticket.text == "abcdteT"
        assert ticket.reporter_user_id == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
        assert ticket.channel == "wechat" and ticket.chat_kind == "private"
        assert logged == "6054768590064713728"
        # the passive reply, encrypted with the same key, carries the ticket number
        assert "<Encrypt>" in answer.body
        assert f"工单号 {ticket.number}" in (answer.text or "")


async def test_url_verification(stack: OAStack) -> None:
    ts = str(int(stack.clock().timestamp()))
    good = {"timestamp": ts, "nonce": "77", "echostr": "5927782489442352469",
            "signature": signature(TOKEN, ts, "77")}
    async with stack.http.get(stack.url, params=good) as r:
        assert (r.status, await r.text()) == (200, "5927782489442352469")
    async with stack.http.get(stack.url, params={**good, "nonce": "78"}) as r:
        assert r.status == 403
        assert "5927782489442352469" not in await r.text()


@pytest.mark.parametrize("mode", ["plain", "compat", "aes"])
async def test_a_text_report_is_answered_in_the_passive_reply(stack: OAStack, mode: str) -> None:
    users = WeChatUsers(stack, mode=mode)
    answer = await users.say(RESIDENT, "报事 南关农贸市场门口垃圾堆了三天没人清运")
    async with stack.app.deps.sm() as s:
        ticket = (await s.scalars(select(Ticket))).one()
        unsent = await s.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.chat_id == RESIDENT, Outbox.status != "sent"))
    assert answer.text is not None and f"工单号 {ticket.number}" in answer.text
    assert "南关网格员" in answer.text
    assert unsent == 0  # taken by the passive reply: the outbox will not send it again
    await stack.app.outbox.run_once()
    assert stack.api.texts(RESIDENT) == [answer.text]


async def test_forged_stale_and_hostile_requests_store_nothing(stack: OAStack) -> None:
    users = WeChatUsers(stack, mode="plain")
    report = users.xml(RESIDENT, "text", {"Content": "报事 南关路灯坏了"})
    refusals = [
        (await users.post(report, forge=True)).status,
        (await users.post(report, mode="aes", forge=True)).status,
        (await users.post(report, mode="compat", forge=True)).status,
        (await users.post(report, timestamp=users.now() - 301)).status,
        (await users.post(report, timestamp=users.now() + 301)).status,
        (await users.post("<xml><Content>unclosed</xml>")).status,
        (await users.post('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "报事 南关">'
                          '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
                          f'<xml><FromUserName>{RESIDENT}</FromUserName>'
                          '<MsgType>text</MsgType><Content>&b;</Content>'
                          '<MsgId>1</MsgId></xml>')).status,
        (await users.post('<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml/>', mode="aes")).status,
        (await users.post(report.replace("南关路灯坏了", "南" * 70_000))).status,
    ]
    assert refusals == [403, 403, 403, 403, 403, 400, 400, 400, 413]
    # a signature WeChat used is no pass for another body (plaintext mode signs no body)
    first = await users.post(users.xml("someone-else", "text", {"Content": "你好"}), nonce="9")
    again = await users.post(report, nonce="9")
    assert (first.status, again.status) == (200, 403)
    async with stack.app.deps.sm() as s:
        reports = await s.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.reporter_user_id == RESIDENT))
        logged = await s.scalar(select(func.count()).select_from(InboundLog).where(
            InboundLog.sender_id == RESIDENT))
    assert (reports, logged) == (0, 0)


async def test_a_retried_message_makes_one_ticket(stack: OAStack) -> None:
    users = WeChatUsers(stack)
    report = users.xml(RESIDENT, "text", {"Content": "报事 南关路口的井盖丢了"}, msg_id=42)
    answers = [await users.post(report) for _ in range(4)]  # WeChat's three retries
    assert {a.status for a in answers} == {200}
    assert _stored_tickets(await _stored(stack)) == 1
    # each retry gets the same passive reply; the resident is told once
    assert len({a.text for a in answers}) == 1 and answers[0].text is not None
    await stack.app.outbox.run_once()
    assert stack.api.texts(RESIDENT) == []


def _stored_tickets(stored: tuple[int, int, int]) -> int:
    return stored[1]


async def test_a_slow_answer_follows_as_a_customer_service_message(
        stack: OAStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("handlers.wechat.oa.ANSWER_WITHIN", 0.0)  # the core "took" too long
    users = WeChatUsers(stack)
    answer = await users.say(RESIDENT, "报事 南关路口的井盖丢了")
    assert (answer.status, answer.body) == (200, "success")
    for _ in range(100):  # the message is still being handled after the answer
        if _stored_tickets(await _stored(stack)):
            break
        await asyncio.sleep(0.02)
    [ticket] = (await _tickets(stack))
    await stack.app.outbox.run_once()
    [told] = stack.api.texts(RESIDENT)
    assert f"工单号 {ticket.number}" in told


async def test_a_failure_answers_500_and_the_retry_is_handled(
        stack: OAStack, monkeypatch: pytest.MonkeyPatch) -> None:
    real = stack.app.core.on_message
    calls = []

    async def broken_once(ib: Inbound) -> Handled:
        calls.append(ib.external_id)
        if len(calls) == 1:
            raise OSError("database went away")
        return await real(ib)

    monkeypatch.setattr(stack.app.core, "on_message", broken_once)
    users = WeChatUsers(stack)
    report = users.xml(RESIDENT, "text", {"Content": "报事 南关路口的井盖丢了"}, msg_id=77)
    first = await users.post(report)
    retry = await users.post(report)
    assert first.status == 500 and retry.status == 200
    assert retry.text is not None and "工单号" in retry.text
    assert calls == ["77", "77"] and len(await _tickets(stack)) == 1


async def _tickets(stack: OAStack) -> list[Ticket]:
    async with stack.app.deps.sm() as s:
        return list((await s.scalars(select(Ticket))).all())
