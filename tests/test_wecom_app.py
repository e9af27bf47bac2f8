"""The WeCom app at /wechat/wecom: WeCom's own sample decrypts through it, hostile requests are
refused with nothing stored, card clicks drive the lifecycle once and grey the card out, and
the sender maps WeCom's answers.

Real wechatpy crypto, real HTTP over loopback, the real core on an SQLite file, and a fake
WeCom API on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from bot.messages import Action as Act
from bot.messages import Button, Outbound, RetryLater, Undeliverable
from config.settings import Settings
from handlers.wecom.cards import card_for, pack, unpack
from models.enums import ChatKind
from models.enums import TicketState as S
from models.tickets import Attachment, InboundLog, Outbox, Ticket
from tests.conftest import FakeClock
from tests.contract.channels import drain, invite_code
from tests.contract.wecom import (
    AGENT_ID,
    WeComStack,
    WeComUsers,
    find_button,
    userid_of,
    wecom_stack,
)
from tests.fakes.wecom_api import SEND

# WeCom's documented sample (WXBizMsgCrypt's Sample): URL verification and one text message
SAMPLE_VERIFY = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
                 "timestamp": "1409659589", "nonce": "263014780",
                 "echostr": "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8"
                            "TgAE7OaBO+FZXvnaqQ=="}
SAMPLE_POST = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
               "timestamp": "1409659813", "nonce": "1372623149"}
SAMPLE_BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQ"
    "KFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3"
    "W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdn"
    "LxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQ"
    "H03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH"
    "27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2p"
    "DBS8R07+qN+E7Q==]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>")
REPORT = "报事 南关农贸市场门口垃圾堆了三天没人清运"
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
       b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01"
       b"\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture
async def stack(loaded_settings: Settings, clock: FakeClock) -> AsyncIterator[WeComStack]:
    async with wecom_stack(loaded_settings, clock) as s:
        yield s


async def _stored(stack: WeComStack) -> tuple[int, int, int]:
    async with stack.app.deps.sm() as s:
        return (await s.scalar(select(func.count()).select_from(InboundLog)) or 0,
                await s.scalar(select(func.count()).select_from(Ticket)) or 0,
                await s.scalar(select(func.count()).select_from(Outbox)) or 0)


async def _ticket(stack: WeComStack) -> Ticket:
    async with stack.app.deps.sm() as s:
        return (await s.scalars(select(Ticket).order_by(Ticket.id.desc()))).first()  # type: ignore[return-value]


async def _worker_with_a_ticket(stack: WeComStack) -> tuple[WeComUsers, Ticket]:
    users = WeComUsers(stack)
    assert await users.say(userid_of("worker"), await invite_code(stack.app, "worker")) == 200
    assert await users.say(userid_of("resident"), REPORT) == 200
    await drain(stack.app, stack.clock)
    return users, await _ticket(stack)


async def test_the_documented_sample_verifies_and_decrypts(loaded_settings: Settings,
                                                           clock: FakeClock) -> None:
    async with wecom_stack(loaded_settings, clock, wechat_replay_window_s=0,
                           wecom_agent_id=218) as stack:
        async with stack.http.get(stack.url, params=SAMPLE_VERIFY) as r:
            assert r.status == 200
            assert await r.text() == "1616140317555161061"
        assert await WeComUsers(stack).raw(SAMPLE_BODY.encode(), SAMPLE_POST) == 200
        async with stack.app.deps.sm() as s:
            logged = (await s.execute(select(InboundLog.external_id, InboundLog.sender_id)
                                      .where(InboundLog.channel == "wecom"))).all()
        assert logged == [("4561255354251345929", "mycreate")]


@pytest.mark.parametrize("hostile", ["forged", "stale", "oversized", "entities", "malformed",
                                     "other_app", "other_corp"])
async def test_hostile_requests_are_refused_and_store_nothing(stack: WeComStack,
                                                              hostile: str) -> None:
    users = WeComUsers(stack)
    before = await _stored(stack)
    xml = users.xml(userid_of("resident"), "text", {"Content": REPORT})
    body, params = users.seal(xml)
    if hostile == "forged":
        params["msg_signature"] = "0" * 40
    elif hostile == "stale":
        body, params = users.seal(xml, timestamp=users.now() - 301)
    elif hostile == "oversized":
        body = body.replace(b"</xml>", b"<Pad>" + b"x" * 70_000 + b"</Pad></xml>")
    elif hostile == "entities":
        body = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
                b'<!ENTITY b "&a;&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>')
    elif hostile == "malformed":
        body = b"<xml><Encrypt>unclosed"
    elif hostile == "other_app":
        body, params = users.seal(xml.replace(f"<AgentID>{AGENT_ID}", "<AgentID>1000099"))
    else:  # sealed for another corp: the receive id inside is not ours
        other = WeComUsers(stack)
        from wechatpy.crypto import WeChatCrypto

        from tests.contract.wecom import AES_KEY, TOKEN
        other.crypto = WeChatCrypto(TOKEN, AES_KEY, "wwothercorp0000001")
        body, params = other.seal(xml)
    status = await users.raw(body, params)
    assert 400 <= status < 500
    assert await _stored(stack) == before


async def test_a_retried_message_is_one_report(stack: WeComStack) -> None:
    users = WeComUsers(stack)
    body, params = users.seal(users.xml(userid_of("resident"), "text", {"Content": REPORT}))
    for _ in range(3):  # WeCom's retries: the same message, the same MsgId
        assert await users.raw(body, params) == 200
    assert (await _stored(stack))[1] == 1


async def test_a_card_click_acts_once_and_greys_the_card_out(stack: WeComStack) -> None:
    users, tk = await _worker_with_a_ticket(stack)
    found = find_button(stack.api, userid_of("worker"), "接单", tk.number)
    assert found is not None, stack.api.texts(userid_of("worker"))
    card, key = found
    created = users.now()
    for _ in range(2):  # the click and WeCom's retry of the same event
        assert await users.click(userid_of("worker"), card, key, created=created) == 200
    await drain(stack.app, stack.clock)
    assert (await _ticket(stack)).state == S.ACKNOWLEDGED
    resident = stack.api.texts(userid_of("resident"))
    assert sum(f"{tk.number} 已由网格员" in x for x in resident) == 1
    updates = stack.api.updates
    assert [u["button"]["replace_name"] for u in updates] == ["已接单"]
    assert updates[0]["userids"] == [userid_of("worker")] and updates[0]["agentid"] == AGENT_ID


async def test_a_forged_or_foreign_click_changes_nothing(stack: WeComStack) -> None:
    users, tk = await _worker_with_a_ticket(stack)
    found = find_button(stack.api, userid_of("worker"), "接单", tk.number)
    assert found is not None
    card, key = found
    # a member who is not the ticket's worker presses the same button
    assert await users.click(userid_of("neighbour"), card, key) == 200
    # keys we never issued
    for forged in ("t1|ack|99999999999999999999|", "t1|drop_table|1|", "t2|ack|1|", "ack"):
        assert await users.click(userid_of("worker"), card, forged) == 200
    await drain(stack.app, stack.clock)
    assert (await _ticket(stack)).state == S.ASSIGNED
    assert any("无权处理" in x for x in stack.api.texts(userid_of("neighbour")))
    assert sum("没有权限" in x or "无权" in x for x in stack.api.texts(userid_of("worker"))) == 4
    assert stack.api.updates == []


async def test_words_work_as_well_as_cards(stack: WeComStack) -> None:
    users, tk = await _worker_with_a_ticket(stack)
    assert await users.say(userid_of("worker"), f"接单 {tk.number}") == 200
    assert await users.say(userid_of("worker"), f"办结 {tk.number} 已清运") == 200
    await drain(stack.app, stack.clock)
    assert (await _ticket(stack)).state == S.RESOLVED


async def test_a_photo_after_a_report_is_added_to_it(stack: WeComStack) -> None:
    users = WeComUsers(stack)
    media_id = stack.api.put_media(PNG)
    assert await users.say(userid_of("resident"), REPORT) == 200
    # the photo that follows the report, as people send them: fetched at once, added to it
    assert await users.post(users.xml(userid_of("resident"), "image",
                                      {"PicUrl": "http://example.invalid/p.png",
                                       "MediaId": media_id})) == 200
    await drain(stack.app, stack.clock)
    tk = await _ticket(stack)
    assert (await _stored(stack))[1] == 1
    async with stack.app.deps.sm() as s:
        photo = (await s.scalars(select(Attachment).where(
            Attachment.ticket_id == tk.id))).one()
    assert photo.media_sha is not None and photo.file_id == media_id
    assert stack.app.core.media is not None
    assert stack.app.core.media.get(photo.media_sha) == PNG
    assert f"已把照片补充到工单 {tk.number}。" in stack.api.texts(userid_of("resident"))


async def test_the_sender_maps_wecom_answers(stack: WeComStack) -> None:
    sender = stack.wecom.sender
    msg = Outbound(channel="wecom", chat_id="someone", chat_kind=ChatKind.PRIVATE, text="你好")
    stack.api.fail(SEND, 81013)
    with pytest.raises(Undeliverable):
        await sender.send(msg)
    stack.api.fail(SEND, 45009)
    with pytest.raises(RetryLater):
        await sender.send(msg)
    stack.api.expire_tokens()  # refreshed once, then sent
    assert await sender.send(msg) is not None
    assert stack.api.token_fetches == 2


def test_card_keys_parse_strictly() -> None:
    assert unpack(pack(Act("ack", 12))) == Act("ack", 12)
    assert unpack(pack(Act("place", 3, "FN-04"))) == Act("place", 3, "FN-04")
    for bad in ("", "t1|ack|0|", "t1|ack|-1|", "t1|nope|1|", "t1|ack|1|" + "x" * 33,
                "t1|ack|9223372036854775808|", "t1|ack|1"):
        assert unpack(bad) is None, bad


def test_a_long_card_goes_as_text_first_and_buttons_after() -> None:
    buttons = [[Button("接单", Act("ack", 1)), Button("办结", Act("resolve", 1))]]
    short = card_for(Outbound("wecom", "u", ChatKind.PRIVATE, "【新工单】FS-1\n南关：垃圾",
                              buttons, ticket_id=1))
    assert short is not None and short.text_first == ""
    assert short.body["sub_title_text"] == "南关：垃圾"
    long_text = "【新工单】FS-1\n" + "内容很长。" * 40
    long = card_for(Outbound("wecom", "u", ChatKind.PRIVATE, long_text, buttons, ticket_id=1))
    assert long is not None and long.text_first == long_text
    assert "sub_title_text" not in long.body
    assert [b["text"] for b in long.body["button_list"]] == ["接单", "办结"]
    ids = {card_for(Outbound("wecom", "u", ChatKind.PRIVATE, "x", buttons, ticket_id=1)
                    ).body["task_id"] for _ in range(50)}  # type: ignore[union-attr]
    assert len(ids) == 50  # WeCom refuses a task id used before
    assert card_for(Outbound("wecom", "u", ChatKind.PRIVATE, "x")) is None
