"""The coordinators' group through WeCom's group robot webhook: escalations and messages given
up on, batched; a digest at 18:00; within 20 posts a minute; nothing posted twice.

A fake webhook on 127.0.0.1, the real core and sweeper on an SQLite file, the webhook's rounds
driven one at a time (`tick`) on the fake clock.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.app import App, build_app
from bot.delivery.capabilities import Capabilities
from bot.messages import Outbound, PermanentSendError
from bot.tickets.sweeper import sweep_once
from config.settings import Settings
from handlers.http import make_web_app
from handlers.wecom.webhook import PAUSE_S, PER_MINUTE, POLL_S, GroupWebhook
from models.enums import ChatKind
from models.robot import WebhookCursor
from models.tickets import Outbox, Ticket, TicketEvent
from tests.conftest import FakeClock
from tests.contract.channels import drain
from tests.fakes.minimal import MinimalChat, MinimalSender
from tests.fakes.wecom_robot import WEBHOOK, FakeWeComRobots

PHONE = re.compile(r"1[3-9]\d{9}")


class _Refusing:
    """A channel whose platform refuses every message (the outbox dead-letters them)."""

    channel = "refusing"
    capabilities = Capabilities()

    async def send(self, msg: Outbound) -> str | None:
        raise PermanentSendError("blocked by the user")


@dataclass
class Stack:
    app: App
    fake: FakeWeComRobots
    settings: Settings
    clock: FakeClock
    chat: MinimalChat

    def hook(self) -> GroupWebhook:
        hook = GroupWebhook.from_settings(self.settings)
        assert hook is not None
        hook.mount(make_web_app(self.app), self.app)
        return hook

    async def report(self, text: str) -> str:
        before = await self.numbers()
        await self.app.core.on_message(self.chat.private(f"r{len(before)}", f"报事 {text}"))
        [number] = set(await self.numbers()) - set(before)
        return number

    async def numbers(self) -> list[str]:
        async with self.app.deps.sm() as s:
            return list(await s.scalars(select(Ticket.number)))


@pytest.fixture
async def stack(loaded_settings: Settings, clock: FakeClock) -> AsyncIterator[Stack]:
    async with FakeWeComRobots() as fake:
        s = Settings(_env_file=None, database_url=loaded_settings.database_url,  # type: ignore[call-arg]
                     wecom_group_webhook_url=SecretStr(fake.webhook_url),
                     wechat_http_timeout_s=5.0)
        app = await build_app(s, {"minimal": MinimalSender(), "refusing": _Refusing()},
                              clock=clock)
        try:
            yield Stack(app, fake, s, clock, MinimalChat())
        finally:
            await app.close()


async def _escalated(stack: Stack, *texts: str) -> list[str]:
    numbers = [await stack.report(text) for text in texts]
    await drain(stack.app, stack.clock)
    stack.clock.advance(days=3)  # nobody acknowledged
    assert await sweep_once(stack.app.deps) >= len(numbers)
    return numbers


def test_off_without_the_url(settings: Settings) -> None:
    assert GroupWebhook.from_settings(settings) is None


async def test_escalations_go_as_one_post_once_also_after_a_restart(stack: Stack) -> None:
    hook = stack.hook()
    assert await hook.tick(stack.app) == POLL_S  # a new cursor starts at the present
    numbers = await _escalated(stack, "南关路的路灯坏了", "西关小区垃圾没人清运")
    await hook.tick(stack.app)
    [post] = stack.fake.posted()
    assert post.startswith("### 督办提醒")
    assert all(n in post for n in numbers) and "第 1 次督办" in post
    assert not PHONE.search(post)
    assert await hook.tick(stack.app) == POLL_S and len(stack.fake.posts) == 1

    second = stack.hook()  # another process: the lease keeps it off
    assert await second.tick(stack.app) == POLL_S
    await hook.close()
    stack.clock.advance(seconds=61)  # the first is gone; its lease runs out
    assert await second.tick(stack.app) == POLL_S
    assert len(stack.fake.posts) == 1
    await second.close()


async def test_two_processes_at_once_post_it_once(stack: Stack) -> None:
    first, second = stack.hook(), stack.hook()
    await first.tick(stack.app)
    await _escalated(stack, "南关路的路灯坏了")
    await asyncio.gather(first.tick(stack.app), second.tick(stack.app))
    await asyncio.gather(first.tick(stack.app), second.tick(stack.app))
    assert len(stack.fake.posts) == 1
    await first.close()
    await second.close()


async def test_over_the_rate_limit_it_pauses_then_posts(stack: Stack) -> None:
    hook = stack.hook()
    await hook.tick(stack.app)
    await _escalated(stack, "南关路的路灯坏了")
    stack.fake.fail(WEBHOOK, 45009)
    assert await hook.tick(stack.app) == PAUSE_S
    calls = len(stack.fake.calls)
    assert 0 < await hook.tick(stack.app) <= PAUSE_S
    assert len(stack.fake.calls) == calls and stack.fake.posts == []  # waited, did not ask
    stack.clock.advance(seconds=PAUSE_S)
    await hook.tick(stack.app)
    assert len(stack.fake.posts) == 1
    await hook.close()


async def test_a_5xx_is_retried_with_backoff_and_posts_once(stack: Stack) -> None:
    hook = stack.hook()
    await hook.tick(stack.app)
    [number] = await _escalated(stack, "南关路的路灯坏了")
    stack.fake.fail_http(WEBHOOK, 502, times=2)
    waits = [await hook.tick(stack.app), await hook.tick(stack.app)]
    assert waits[0] < waits[1] and stack.fake.posts == []
    await hook.tick(stack.app)
    [post] = stack.fake.posted()
    assert number in post
    assert await hook.tick(stack.app) == POLL_S and len(stack.fake.posts) == 1
    await hook.close()


async def test_no_more_than_twenty_posts_a_minute(stack: Stack) -> None:
    hook = stack.hook()
    await hook.tick(stack.app)
    [number] = await _escalated(stack, "南关路的路灯坏了")
    async with stack.app.deps.sm() as s:
        ticket_id = await s.scalar(select(Ticket.id).where(Ticket.number == number))
    assert ticket_id is not None
    waits = []
    for i in range(PER_MINUTE + 1):
        async with stack.app.deps.sm() as s, s.begin():  # one more escalation each round
            s.add(TicketEvent(ticket_id=ticket_id, at=stack.clock(), kind="escalate",
                              actor_role="system", actor_name="system", note=f"level {i + 2}"))
        waits.append(await hook.tick(stack.app))
        stack.clock.advance(seconds=1)
    assert len(stack.fake.posts) == PER_MINUTE
    assert waits[-1] > 30  # the 21st waits for the minute to pass
    stack.clock.advance(seconds=waits[-1])
    await hook.tick(stack.app)
    assert len(stack.fake.posts) == PER_MINUTE + 1
    await hook.close()


async def test_a_message_given_up_on_is_posted(stack: Stack) -> None:
    hook = stack.hook()
    await hook.tick(stack.app)
    number = await stack.report("南关路的路灯坏了")
    async with stack.app.deps.sm() as s, s.begin():
        ticket_id = await s.scalar(select(Ticket.id).where(Ticket.number == number))
        s.add(Outbox(channel="refusing", chat_id="someone", chat_kind=ChatKind.PRIVATE.value,
                     payload=Outbound("refusing", "someone", ChatKind.PRIVATE,
                                      "您的工单已受理").payload(),
                     ticket_id=ticket_id, status="pending", attempts=0,
                     next_attempt_at=stack.clock(), created_at=stack.clock()))
    await drain(stack.app, stack.clock)
    await hook.tick(stack.app)
    [post] = stack.fake.posted()
    assert f"工单 {number} 的一条通知没有送到" in post
    assert "someone" not in post and "您的工单已受理" not in post
    await hook.close()


async def test_the_daily_digest_at_six_in_the_evening(stack: Stack) -> None:
    hook = stack.hook()
    await hook.tick(stack.app)
    await stack.report("南关路的路灯坏了")
    await stack.report("西关小区垃圾没人清运")
    await drain(stack.app, stack.clock)
    assert await hook.tick(stack.app) == POLL_S and stack.fake.posts == []  # 10:00: not yet
    stack.clock.advance(hours=8, minutes=5)  # 18:05 in Shanghai
    await hook.tick(stack.app)
    [digest] = stack.fake.posted()
    assert digest.startswith("### 今日工单（2026-03-03）")
    assert "府南：新报 1，在办 1" in digest and "西城：新报 1，在办 1" in digest
    assert not PHONE.search(digest)
    assert await hook.tick(stack.app) == POLL_S and len(stack.fake.posts) == 1  # once a day
    async with stack.app.deps.sm() as s:
        assert await s.scalar(select(WebhookCursor.digest_day)) == "2026-03-03"
    await hook.close()
