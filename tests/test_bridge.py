"""The bridge over real HTTP on 127.0.0.1: signed requests in, signed posts to a fake connector
out, the core on a real SQLite file. Refused requests store nothing; repeats act once."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from bot.app import App
from config.settings import Settings
from handlers import serve
from handlers.bridge import capabilities
from handlers.bridge.edge import MAX_BODY, BridgeEdge
from models.county import Grid
from models.enums import OutboxStatus
from models.people import ChatBinding
from models.tickets import Attachment, InboundLog, Outbox, Ticket
from tests.conftest import FakeClock
from tests.contract.bridge import GROUP, SECRET, BridgeStack, Connector, bridge_stack
from tests.contract.channels import drain, invite_code
from tests.procs import REPO, clean_env, free_port

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
REPORT = "报事 南关农贸市场门口垃圾堆了三天没人清运"


@pytest.fixture
async def stack(loaded_settings: Settings, clock: FakeClock) -> AsyncIterator[BridgeStack]:
    async with bridge_stack(loaded_settings, clock) as s:
        yield s


@pytest.fixture
def conn(stack: BridgeStack) -> Connector:
    return Connector(stack)


async def count(app: App, model: type) -> int:
    async with app.deps.sm() as s:
        return await s.scalar(select(func.count()).select_from(model)) or 0


async def nothing_stored(app: App) -> bool:
    return (await count(app, InboundLog), await count(app, Ticket), await count(app, Outbox)) \
        == (0, 0, 0)


async def join(stack: BridgeStack, conn: Connector, who: str) -> str:
    chat = f"p-{who}"
    posted = await conn.say(chat, who, f"/start {await invite_code(stack.app, who)}",
                            kind="private")
    assert posted.status == 200
    await drain(stack.app, stack.clock)
    return chat


# -- refused before anything is stored --------------------------------------------------

async def test_a_forged_signature_is_refused(stack: BridgeStack, conn: Connector) -> None:
    posted = await conn.post(conn.message(GROUP, "u1", REPORT), secret=b"not-the-secret-at-all")
    assert posted.status == 401 and "Signature" in posted.body["error"]
    assert await nothing_stored(stack.app)


async def test_a_signature_over_another_body_is_refused(stack: BridgeStack,
                                                        conn: Connector) -> None:
    ts = int(stack.clock().timestamp())
    signed_for = json.dumps(conn.message(GROUP, "u1", "你好")).encode()
    from handlers.bridge.signing import sign
    headers = sign(SECRET.encode(), ts, signed_for)
    posted = await conn.post(conn.message(GROUP, "u1", REPORT), headers=headers)
    assert posted.status == 401
    posted = await conn.post(conn.message(GROUP, "u1", REPORT), headers={})
    assert posted.status == 401
    assert await nothing_stored(stack.app)


@pytest.mark.parametrize("skew", [-301, 301, -10_000_000])
async def test_a_stale_or_early_timestamp_is_refused(stack: BridgeStack, conn: Connector,
                                                     skew: int) -> None:
    ts = int(stack.clock().timestamp()) + skew
    posted = await conn.post(conn.message(GROUP, "u1", REPORT), timestamp=ts)
    assert posted.status == 401 and "window" in posted.body["error"]
    assert await nothing_stored(stack.app)


async def test_inside_the_window_is_taken(stack: BridgeStack, conn: Connector) -> None:
    posted = await conn.post(conn.message(GROUP, "u1", REPORT),
                             timestamp=int(stack.clock().timestamp()) - 290)
    assert posted.status == 200
    assert await count(stack.app, Ticket) == 1


async def test_an_oversized_body_is_refused(stack: BridgeStack, conn: Connector) -> None:
    msg = conn.message(GROUP, "u1", REPORT, padding="x" * MAX_BODY)
    posted = await conn.post(msg)
    assert posted.status == 413
    assert await nothing_stored(stack.app)


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", b'"text"', b"",
    b'{"chat": {"id": "g", "kind": "group"}, "sender": {"id": "u"}, "text": "hi"}',
    b'{"id": "1", "sender": {"id": "u"}, "text": "hi"}',
    b'{"id": "1", "chat": {"id": "g", "kind": "group"}, "text": "hi"}',
    b'{"id": "1", "chat": {"id": "g", "kind": "group"}, "sender": {"id": "u"}}',
    b'{"id": "1", "chat": {"id": "g", "kind": "group"}, "sender": {"id": "u"}, "text": "  "}',
    b'{"id": "1", "chat": {"id": "g", "kind": "channel"}, "sender": {"id": "u"}, "text": "x"}',
    b'{"id": "", "chat": {"id": "g", "kind": "group"}, "sender": {"id": "u"}, "text": "x"}',
    b'{"id": "1", "chat": {"id": "g", "kind": "group"}, "sender": {"id": "u"},'
    b' "location": {"lat": 95, "lon": 120}}',
    b'{"id": "1", "chat": {"id": "g", "kind": "group"}, "sender": {"id": "u"},'
    b' "location": {"lat": 30, "lon": 120, "datum": "bd09"}}',
    b'{"id": "1", "chat": {"id": "g", "kind": "group"}, "sender": {"id": "u"},'
    b' "media": [{"kind": "photo", "url": "file:///etc/passwd"}]}',
    b'{"id": "1", "chat": {"id": "g", "kind": "group"}, "sender": {"id": "u"},'
    b' "media": [{"kind": "sticker", "url": "https://example.org/a.png"}]}',
])
async def test_malformed_or_incomplete_is_refused(stack: BridgeStack, conn: Connector,
                                                  body: bytes) -> None:
    posted = await conn.post(body)
    assert posted.status == 400, posted
    assert posted.body["error"]
    assert await nothing_stored(stack.app)


async def test_refusals_log_neither_the_text_nor_the_secret(
        stack: BridgeStack, conn: Connector, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    phone = "13912345678"
    await conn.post(conn.message(GROUP, "u1", f"报事 路灯坏了 电话{phone}"), secret=b"x" * 20)
    await conn.post(b'{"id": "1", "chat": {"id": "g", "kind": "group"}, "sender": {"id": "u"},'
                    b' "text": 5, "note": "' + phone.encode() + b'"}')
    assert "refused" in caplog.text
    assert phone not in caplog.text and SECRET not in caplog.text


# -- messages in ---------------------------------------------------------------------

async def test_a_message_becomes_a_ticket_and_the_answer_is_signed(
        stack: BridgeStack, conn: Connector) -> None:
    posted = await conn.say(GROUP, "u1", REPORT, name="张大妈")
    assert posted.status == 200 and posted.body == {"ok": True}
    async with stack.app.deps.sm() as s:
        tk = (await s.scalars(select(Ticket))).one()
    assert (tk.channel, tk.chat_id, tk.reporter_user_id) == ("bridge", GROUP, "u1")
    await drain(stack.app, stack.clock)
    said = stack.connector.received
    assert stack.connector.refused == 0
    assert any(m["chat_id"] == GROUP and tk.number in m["text"] for m in said)
    first = said[0]
    assert set(first) == {"id", "chat_id", "text", "reply_to", "mention", "choices", "media"}
    assert stack.connector.headers[0]["X-Bridge-Signature"].startswith("sha256=")


async def test_a_repeated_id_acts_once(stack: BridgeStack, conn: Connector) -> None:
    msg = conn.message(GROUP, "u1", REPORT)
    assert (await conn.post(msg)).status == 200
    again = await conn.post(msg)  # a new timestamp and signature: a connector's retry
    assert again.status == 200 and again.body["duplicate"] is True
    both = await asyncio.gather(*(conn.post(m) for m in [conn.message(GROUP, "u2", REPORT)] * 4))
    assert [p.status for p in both] == [200] * 4
    assert await count(stack.app, Ticket) == 2
    await drain(stack.app, stack.clock)
    # u2's report is the same problem at the same place: it follows u1's ticket (附议)
    numbers = [m["text"] for m in stack.connector.received if "工单号" in m["text"]]
    follows = [m["text"] for m in stack.connector.received if "已登记为工单" in m["text"]]
    assert (len(numbers), len(follows)) == (1, 1)


async def test_a_sender_without_a_name_is_named_plainly(stack: BridgeStack,
                                                         conn: Connector) -> None:
    msg = conn.message(GROUP, "wxid_0000abcd", REPORT)
    msg["sender"] = {"id": "wxid_0000abcd"}
    assert (await conn.post(msg)).status == 200
    async with stack.app.deps.sm() as s:
        tk = (await s.scalars(select(Ticket))).one()
    assert tk.reporter_name == "群成员abcd"


async def test_a_location_is_read(stack: BridgeStack, conn: Connector) -> None:
    msg = conn.message(GROUP, "u1", "报事 这里路灯不亮", mentions_bot=True,
                       location={"lat": 32.64, "lon": 110.78, "datum": "gcj02"})
    assert (await conn.post(msg)).status == 200
    async with stack.app.deps.sm() as s:
        tk = (await s.scalars(select(Ticket))).one()
    assert tk.datum == "gcj02" and tk.lat == pytest.approx(32.64)


async def test_a_reply_to_a_card_by_its_connector_id_is_a_note(stack: BridgeStack,
                                                                conn: Connector) -> None:
    chat = await join(stack, conn, "worker")
    await conn.say(GROUP, "u1", REPORT)
    await drain(stack.app, stack.clock)
    card = next(i for i, m in enumerate(stack.connector.received)
                if m["chat_id"] == chat and "【新工单】" in m["text"])
    card_id = f"c-{card + 1}"  # the fake connector numbers what it took, from 1
    msg = conn.message(chat, "worker", "已联系环卫所，下午来车", kind="private",
                       reply_to=card_id)
    assert (await conn.post(msg)).status == 200
    await drain(stack.app, stack.clock)
    assert any("有新进展：已联系环卫所" in x for x in stack.connector.texts(GROUP))


# -- binding a group -----------------------------------------------------------------

async def test_a_group_is_bound_by_bind(stack: BridgeStack, conn: Connector) -> None:
    await join(stack, conn, "coord")
    refused = await conn.say(GROUP, "u1", "/bind FN-02")  # a resident may not
    assert refused.status == 200
    assert await count(stack.app, ChatBinding) == 0
    assert (await conn.say(GROUP, "coord", "/bind FN-02")).status == 200
    async with stack.app.deps.sm() as s:
        binding = (await s.scalars(select(ChatBinding))).one()
        grid = await s.get(Grid, binding.grid_id)
    assert (binding.channel, binding.chat_id, binding.title) == ("bridge", GROUP, "测试群")
    assert grid is not None and grid.code == "FN-02"
    await drain(stack.app, stack.clock)
    told = stack.connector.texts(GROUP)
    assert any("只有社区工作人员" in x for x in told)
    assert any("本群已绑定到" in x for x in told)
    # a report without a place now goes to the group's grid
    await conn.say(GROUP, "u1", "报事 楼道灯坏了")
    async with stack.app.deps.sm() as s:
        tk = (await s.scalars(select(Ticket))).one()
    assert tk.grid_id == binding.grid_id


async def test_bind_after_a_mention_binds(stack: BridgeStack, conn: Connector) -> None:
    await join(stack, conn, "coord")
    msg = conn.message(GROUP, "coord", "@网格助手\u2005/bind FN-02", mentions_bot=True)
    assert (await conn.post(msg)).status == 200
    assert await count(stack.app, ChatBinding) == 1


async def test_a_repeated_bind_answers_once(stack: BridgeStack, conn: Connector) -> None:
    await join(stack, conn, "coord")
    msg = conn.message(GROUP, "coord", "/bind FN-02")
    await conn.post(msg)
    await conn.post(msg)
    await drain(stack.app, stack.clock)
    assert sum("本群已绑定到" in x for x in stack.connector.texts(GROUP)) == 1


# -- messages out --------------------------------------------------------------------

async def test_a_5xx_is_retried_and_delivered_once(stack: BridgeStack, conn: Connector) -> None:
    stack.connector.fail(503, times=2)
    await conn.say(GROUP, "u1", REPORT)
    await drain(stack.app, stack.clock)
    told = [m for m in stack.connector.received if "工单号" in m["text"]]
    assert len(told) == 1
    assert stack.connector.posts == 3
    async with stack.app.deps.sm() as s:
        row = (await s.scalars(select(Outbox).where(Outbox.chat_id == GROUP))).one()
    assert row.status == OutboxStatus.SENT and row.attempts == 3
    assert row.external_message_id == "c-1"  # the connector's own id for it
    # every try carries the same id (the row and part), so a connector can drop a repeat
    assert stack.connector.tried_ids == [f"{row.id}.1"] * 3


async def test_a_4xx_is_given_up_on(stack: BridgeStack, conn: Connector) -> None:
    stack.connector.fail(400)
    await conn.say(GROUP, "u1", REPORT)
    await drain(stack.app, stack.clock)
    async with stack.app.deps.sm() as s:
        row = (await s.scalars(select(Outbox).where(Outbox.chat_id == GROUP))).one()
    assert row.status == OutboxStatus.DEAD and "400" in (row.last_error or "")
    assert stack.connector.received == []


async def test_a_429_waits_its_retry_after(stack: BridgeStack, conn: Connector) -> None:
    stack.connector.fail(429)
    await conn.say(GROUP, "u1", REPORT)
    await stack.app.outbox.run_once()
    async with stack.app.deps.sm() as s:
        row = (await s.scalars(select(Outbox).where(Outbox.chat_id == GROUP))).one()
    assert row.status == OutboxStatus.PENDING
    assert row.next_attempt_at >= stack.clock() + timedelta(seconds=29)
    await drain(stack.app, stack.clock)
    assert len(stack.connector.received) == 1


async def test_buttons_go_as_choices_and_a_number_presses_one(
        loaded_settings: Settings, clock: FakeClock) -> None:
    async with bridge_stack(loaded_settings, clock,
                            bridge_capabilities="buttons=6,quoting=1") as stack:
        conn = Connector(stack)
        chat = await join(stack, conn, "worker")
        await conn.say(GROUP, "u1", REPORT)
        await drain(stack.app, stack.clock)
        card = next(m for m in stack.connector.received
                    if m["chat_id"] == chat and "【新工单】" in m["text"])
        labels = [c["label"] for c in card["choices"]]
        assert "接单" in labels and [c["n"] for c in card["choices"]] == list(
            range(1, len(labels) + 1))
        assert "回复数字" not in card["text"]
        await conn.say(chat, "worker", str(labels.index("接单") + 1), kind="private")
        async with stack.app.deps.sm() as s:
            tk = (await s.scalars(select(Ticket))).one()
        assert tk.state == "acknowledged"


# -- media ---------------------------------------------------------------------------

async def test_media_in_is_kept_and_goes_out_by_a_signed_link(stack: BridgeStack,
                                                              conn: Connector) -> None:
    chat = await join(stack, conn, "worker")
    url = stack.connector.file("pothole.jpg", JPEG)
    msg = conn.message(GROUP, "u1", REPORT, media=[{"kind": "photo", "url": url}])
    assert (await conn.post(msg)).status == 200
    async with stack.app.deps.sm() as s:
        att = (await s.scalars(select(Attachment))).one()
    assert att.media_sha is not None and att.file_id == url
    await drain(stack.app, stack.clock)
    card = next(m for m in stack.connector.received
                if m["chat_id"] == chat and "【新工单】" in m["text"])
    [media] = card["media"]
    assert media["kind"] == "photo" and att.media_sha in media["url"]
    link = urlsplit(media["url"])
    assert not link.netloc  # relative to the service the connector posts to
    got = await stack.http.get(stack.base + media["url"])
    assert got.status == 200 and await got.read() == JPEG
    forged = media["url"].replace("sig=", "sig=0")
    assert (await stack.http.get(stack.base + forged)).status == 403
    other = media["url"].replace(att.media_sha, "a" * 64)
    assert (await stack.http.get(stack.base + other)).status == 403
    bare = f"{stack.base}/bridge/v1/media/{att.media_sha}"
    assert (await stack.http.get(bare)).status == 403
    stack.clock.advance(hours=25)
    assert (await stack.http.get(stack.base + media["url"])).status == 403


async def test_a_repeated_message_with_media_is_not_fetched_again(stack: BridgeStack,
                                                                  conn: Connector) -> None:
    url = stack.connector.file("drain.jpg", JPEG)
    msg = conn.message(GROUP, "u1", REPORT, media=[{"kind": "photo", "url": url}])
    assert (await conn.post(msg)).body == {"ok": True}
    assert (await conn.post(msg)).body == {"ok": True, "duplicate": True}
    assert stack.connector.fetches == 1
    assert (await count(stack.app, Ticket), await count(stack.app, Attachment)) == (1, 1)


async def test_a_failed_fetch_keeps_the_message(stack: BridgeStack, conn: Connector) -> None:
    missing = stack.connector.base_url + "/files/nothing.jpg"
    not_media = stack.connector.file("notes.txt", b"just some text")
    msg = conn.message(GROUP, "u1", REPORT, media=[{"kind": "photo", "url": missing},
                                                   {"kind": "photo", "url": not_media}])
    assert (await conn.post(msg)).status == 200
    assert await count(stack.app, Ticket) == 1
    async with stack.app.deps.sm() as s:
        atts = (await s.scalars(select(Attachment))).all()
    assert [a.media_sha for a in atts] == [None, None]
    assert {a.file_id for a in atts} == {missing, not_media}


# -- configuration ---------------------------------------------------------------------

def configured(base: Settings, **values: Any) -> Settings:
    return Settings(_env_file=None, database_url=base.database_url, **values)  # type: ignore[call-arg]


def test_capabilities_are_read() -> None:
    got = capabilities.parse(" buttons=0, quoting=1,max_text=2000 ,per_minute=20")
    assert (got.capabilities.buttons, got.capabilities.quoting, got.capabilities.max_text,
            got.per_minute) == (0, True, 2000, 20)
    empty = capabilities.parse("")
    assert empty.capabilities == capabilities.BASE and empty.per_minute is None


@pytest.mark.parametrize("text, says", [
    ("buttons", "is not one of"), ("colour=1", "is not one of"), ("buttons=-1", "buttons"),
    ("quoting=2", "quoting"), ("max_text=ten", "max_text"), ("max_text=10", "max_text"),
    ("buttons=1,buttons=2", "twice"), ("per_minute=２０", "per_minute"),
])
def test_malformed_capabilities_fail_the_start(text: str, says: str,
                                               loaded_settings: Settings) -> None:
    with pytest.raises(ValueError, match=says):
        capabilities.parse(text)
    settings = configured(loaded_settings, bridge_secret=SECRET, bridge_capabilities=text)
    with pytest.raises(ValueError, match="BRIDGE_CAPABILITIES"):
        BridgeEdge.from_settings(settings)


async def test_serve_refuses_to_start_with_malformed_capabilities(tmp_path: Path) -> None:
    env = clean_env()
    env.update({"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
                "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(free_port()),
                "BRIDGE_SECRET": SECRET, "BRIDGE_CAPABILITIES": "buttons=yes"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "run_bot.py", "serve", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    said = err.decode()
    assert "BRIDGE_CAPABILITIES: buttons must be a whole number" in said and SECRET not in said


def test_serve_starts_the_bridge_when_its_secret_is_set(loaded_settings: Settings) -> None:
    edges = serve.configured(configured(loaded_settings, bridge_secret=SECRET))
    [bridge] = [e for e in edges if isinstance(e, BridgeEdge)]
    assert bridge.name == "bridge" and bridge.follow_link("FS-1") is None


def test_the_bridge_is_off_without_a_secret_and_refuses_a_short_one(
        loaded_settings: Settings) -> None:
    assert BridgeEdge.from_settings(configured(loaded_settings)) is None
    short = configured(loaded_settings, bridge_secret="short")
    with pytest.raises(ValueError, match="16 characters"):
        BridgeEdge.from_settings(short)
