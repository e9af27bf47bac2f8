"""Staff groups through the WeCom smart robot: the callback at /wechat/wecom/robot and the
sender that answers through each message's response_url.

Real wechatpy crypto (receiveid ""), real HTTP over loopback both ways (WeCom -> our callback,
our outbox -> a fake response_url), the real core on an SQLite file.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from wechatpy.crypto import PrpCrypto, WeChatCrypto

from bot.app import App, build_app
from bot.delivery.capabilities import Capabilities
from bot.deps import Ctx
from bot.messages import Inbound, Outbound
from config.settings import Settings
from handlers.wechat.signing import signature
from handlers.wecom.robot import PATH, SmartRobot
from models.enums import ChatKind, OutboxStatus
from models.people import ChatBinding, Identity
from models.robot import RobotReplyUrl
from models.tickets import InboundLog, Outbox, Ticket
from tests.conftest import FakeClock
from tests.contract.channels import drain, invite_code, served
from tests.fakes.minimal import MinimalSender
from tests.fakes.wecom_robot import RESPONSE, FakeWeComRobots

TOKEN = "robot-callback-token"
AES_KEY = "kWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2D"
GROUP = "wrkSFfCgAAxxxxxxGROUP01"
COORD = "zhangwei"  # WeCom userids
WORKER = "zhengbo"
REPORTER = "liming"


@dataclass
class Robot:
    """WeCom's side: what people @-mention the robot with, sealed as WeCom seals it."""

    app: App
    fake: FakeWeComRobots
    app_sender: MinimalSender  # the WeCom app's chats (staff privately), recorded
    url: str
    http: aiohttp.ClientSession
    clock: FakeClock
    msg_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    nonces: itertools.count[int] = field(default_factory=lambda: itertools.count(7001))
    key: bytes = field(default_factory=lambda: WeChatCrypto(TOKEN, AES_KEY, "").key)

    def message(self, userid: str, text: str, *, chat: str | None = GROUP,
                msgid: str | None = None) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "msgid": msgid or f"CAIQ16HMjQYY{next(self.msg_ids):04d}", "aibotid": "AIBOTID",
            "chattype": "group" if chat else "single", "from": {"userid": userid},
            "response_url": self.fake.response_url(), "msgtype": "text",
            "text": {"content": text}}
        if chat:
            msg["chatid"] = chat
        return msg

    def seal(self, plain: str, *, timestamp: int | None = None, forge: bool = False
             ) -> tuple[bytes, dict[str, str]]:
        ts = str(int(self.clock().timestamp()) if timestamp is None else timestamp)
        nonce = str(next(self.nonces))
        encrypted = PrpCrypto(self.key).encrypt(plain, "").decode()
        sig = "0" * 40 if forge else signature(TOKEN, ts, nonce, encrypted)
        body = json.dumps({"encrypt": encrypted}).encode()
        return body, {"msg_signature": sig, "timestamp": ts, "nonce": nonce}

    async def post(self, body: bytes, params: dict[str, str]) -> int:
        async with self.http.post(self.url, params=params, data=body) as r:
            assert await r.text() == "" or r.status != 200
            return r.status

    async def say(self, msg: dict[str, Any], **kw: Any) -> int:
        return await self.post(*self.seal(json.dumps(msg, ensure_ascii=False), **kw))

    async def mention(self, userid: str, text: str) -> int:
        return await self.say(self.message(userid, f"@网格助手 {text}"))


@pytest.fixture
async def robot(loaded_settings: Settings, clock: FakeClock) -> AsyncIterator[Robot]:
    async with FakeWeComRobots() as fake:
        s = Settings(_env_file=None, database_url=loaded_settings.database_url,  # type: ignore[call-arg]
                     wecom_robot_token=SecretStr(TOKEN), wecom_robot_aes_key=SecretStr(AES_KEY),
                     wechat_http_timeout_s=5.0)
        edge = SmartRobot.from_settings(s)
        assert edge is not None
        app_sender = MinimalSender(channel="wecom", capabilities=Capabilities(buttons=0))
        app = await build_app(s, {"wecom_robot": edge.sender, "wecom": app_sender}, clock=clock)
        async with served(app, edge) as (base, http):
            yield Robot(app, fake, app_sender, f"{base}{PATH}", http, clock)


async def _on_the_app(robot: Robot, who: str, userid: str) -> None:
    """`who` redeems an invite on the WeCom app (as that edge does): bound to a person."""
    code = await invite_code(robot.app, who)
    await robot.app.core.on_start(
        Ctx("wecom", userid, who, userid, ChatKind.PRIVATE, f"inv-{userid}"), code)


def _on_the_app_says(robot: Robot, userid: str, text: str) -> Inbound:
    return Inbound(channel="wecom", external_id=f"w-{text}", chat_id=userid,
                   chat_kind=ChatKind.PRIVATE, sender_id=userid, sender_name=userid, text=text,
                   message_id=f"w-{text}", received_at=robot.clock())


async def _bound_group(robot: Robot) -> None:
    await _on_the_app(robot, "coord", COORD)
    assert await robot.mention(COORD, "/bind FN-02") == 200
    await drain(robot.app, robot.clock)


async def _counts(robot: Robot) -> tuple[int, int, int]:
    async with robot.app.deps.sm() as s:
        return (await s.scalar(select(func.count()).select_from(InboundLog).where(
                    InboundLog.channel == "wecom_robot")) or 0,
                await s.scalar(select(func.count()).select_from(RobotReplyUrl)) or 0,
                await s.scalar(select(func.count()).select_from(Ticket)) or 0)


async def test_url_verification(robot: Robot) -> None:
    body, params = robot.seal("8431256073458291")
    echostr = json.loads(body)["encrypt"]
    async with robot.http.get(robot.url, params={**params, "echostr": echostr}) as r:
        assert (r.status, await r.text()) == (200, "8431256073458291")
    forged = {**params, "echostr": echostr, "msg_signature": "0" * 40}
    async with robot.http.get(robot.url, params=forged) as r:
        assert r.status == 403 and "8431256073458291" not in await r.text()


async def test_a_bound_group_reports_and_is_answered_through_the_response_url(
        robot: Robot) -> None:
    await _bound_group(robot)
    async with robot.app.deps.sm() as s:
        binding = (await s.scalars(select(ChatBinding))).one()
        linked = (await s.scalars(select(Identity).where(
            Identity.channel == "wecom_robot", Identity.user_id == COORD))).one()
        on_app = (await s.scalars(select(Identity).where(
            Identity.channel == "wecom", Identity.user_id == COORD))).one()
    # the coordinator, known to the WeCom app, is the same person here: the bind was allowed
    assert (binding.channel, binding.chat_id) == ("wecom_robot", GROUP)
    assert linked.person_id == on_app.person_id is not None
    assert linked.private_chat_id is None  # staff are reached through the app
    [bound] = robot.fake.texts()
    assert "本群已绑定到 南关网格" in bound

    assert await robot.mention(REPORTER, "南关路的路灯坏了三天了") == 200
    await drain(robot.app, robot.clock)
    async with robot.app.deps.sm() as s:
        ticket = (await s.scalars(select(Ticket))).one()
        grid_code = await s.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.grid_id == binding.grid_id))
    assert (ticket.channel, ticket.chat_id, ticket.chat_kind) == ("wecom_robot", GROUP, "group")
    assert ticket.text == "南关路的路灯坏了三天了"  # the @-mention cut off
    assert grid_code == 1
    codes = [code for code, _body in robot.fake.replies]
    assert len(codes) == len(set(codes)) == 2  # each message answered through its own URL
    assert f"工单号 {ticket.number}" in robot.fake.texts()[1]


async def test_forged_stale_malformed_and_oversized_callbacks_store_nothing(
        robot: Robot) -> None:
    msg = json.dumps(robot.message(REPORTER, "@网格助手 南关路的路灯坏了"), ensure_ascii=False)
    now = int(robot.clock().timestamp())
    not_json, params = robot.seal("{not json")
    statuses = [
        await robot.post(*robot.seal(msg, forge=True)),
        await robot.post(*robot.seal(msg, timestamp=now - 301)),
        await robot.post(*robot.seal(msg, timestamp=now + 301)),
        await robot.post(b"{\"encrypt\": ", robot.seal(msg)[1]),
        await robot.post(b"[1, 2]", robot.seal(msg)[1]),
        await robot.post(not_json, params),
        await robot.post(*robot.seal(json.dumps({"msgid": "x", "msgtype": "text",
                                                 "text": {"content": "报事"}}))),
        await robot.post(json.dumps({"encrypt": "A" * 70_000}).encode(), robot.seal(msg)[1]),
    ]
    assert statuses == [403, 403, 403, 400, 400, 400, 400, 413]
    assert await _counts(robot) == (0, 0, 0)


async def test_a_replayed_msgid_makes_one_ticket_and_one_answer(robot: Robot) -> None:
    await _bound_group(robot)
    msg = robot.message(REPORTER, "@网格助手 南关路的井盖丢了", msgid="CAIQreplayed")
    assert [await robot.say(msg) for _ in range(3)] == [200, 200, 200]
    await drain(robot.app, robot.clock)
    _logged, urls, tickets = await _counts(robot)
    assert (urls, tickets) == (2, 1)  # the bind's URL and the report's, kept once
    async with robot.app.deps.sm() as s:
        assert await s.scalar(select(func.count()).select_from(InboundLog).where(
            InboundLog.external_id == "CAIQreplayed")) == 1
    assert len(robot.fake.replies) == 2


async def test_without_a_fresh_url_the_message_is_undeliverable_and_the_coordinator_told(
        robot: Robot) -> None:
    await _bound_group(robot)
    await _on_the_app(robot, "worker", WORKER)
    assert await robot.mention(REPORTER, "南关路的路灯坏了三天了") == 200
    await drain(robot.app, robot.clock)
    async with robot.app.deps.sm() as s:
        number = await s.scalar(select(Ticket.number))
    answered = len(robot.fake.replies)
    # the worker acknowledges on the app; telling the group needs a URL nobody gave since
    await robot.app.core.on_message(_on_the_app_says(robot, WORKER, f"接单 {number}"))
    await drain(robot.app, robot.clock)
    assert len(robot.fake.replies) == answered  # nothing more could be POSTed
    async with robot.app.deps.sm() as s:
        dead = (await s.execute(select(Outbox.last_error).where(
            Outbox.channel == "wecom_robot", Outbox.status == OutboxStatus.DEAD))).scalars().all()
    assert len(dead) == 1 and "Undeliverable" in (dead[0] or "")
    told = robot.app_sender.texts(COORD)
    assert any("无法送达" in x for x in told), told
    assert all("response_code" not in x for x in told)


async def test_an_expired_url_is_not_used(robot: Robot) -> None:
    await _bound_group(robot)
    assert await robot.mention(REPORTER, "南关路的路灯坏了三天了") == 200
    robot.clock.advance(minutes=56)  # the URL's hour is nearly over
    await drain(robot.app, robot.clock)
    assert len(robot.fake.replies) == 1  # only the bind's answer, given at once
    assert any("无法送达" in x for x in robot.app_sender.texts(COORD))


async def test_rows_due_together_go_as_one_message(robot: Robot) -> None:
    await _bound_group(robot)
    assert await robot.mention(REPORTER, "南关路的路灯坏了三天了") == 200
    async with robot.app.deps.sm() as s, s.begin():  # queued before the outbox runs
        for text in ("第二条通知", "第三条通知"):
            s.add(Outbox(channel="wecom_robot", chat_id=GROUP, chat_kind="group",
                         payload=Outbound("wecom_robot", GROUP, ChatKind.GROUP, text).payload(),
                         status="pending", attempts=0, next_attempt_at=robot.clock(),
                         created_at=robot.clock()))
    await drain(robot.app, robot.clock)
    last = robot.fake.texts()[-1]
    assert len(robot.fake.replies) == 2
    assert "工单号" in last and "第二条通知" in last and "第三条通知" in last
    assert last.index("工单号") < last.index("第二条通知") < last.index("第三条通知")
    async with robot.app.deps.sm() as s:
        left = await s.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.status.in_(["pending", "sending", "dead"])))
    assert left == 0
    assert robot.fake.calls.count(RESPONSE) == 2



async def test_a_single_chat_is_a_private_chat(robot: Robot) -> None:
    code = await invite_code(robot.app, "worker")
    assert await robot.say(robot.message(WORKER, code, chat=None)) == 200
    assert await robot.say(robot.message(WORKER, "我的工单", chat=None)) == 200
    await drain(robot.app, robot.clock)
    async with robot.app.deps.sm() as s:
        ident = (await s.scalars(select(Identity).where(
            Identity.channel == "wecom_robot", Identity.user_id == WORKER))).one()
    assert ident.person_id is not None and ident.private_chat_id == WORKER
    # both answers were due together: one message, through the newer message's URL
    [(code, _body)] = robot.fake.replies
    [both] = robot.fake.texts()
    assert both.index("绑定成功：您现在是 南关网格 的网格员") < both.index("您还没有报过事")
    async with robot.app.deps.sm() as s:
        unused = list(await s.scalars(select(RobotReplyUrl.url).where(
            RobotReplyUrl.used_at.is_(None))))
    assert len(unused) == 1 and code not in unused[0]  # the older one is still there
