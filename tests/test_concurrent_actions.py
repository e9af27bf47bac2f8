"""Concurrent presses of one button take effect once, on SQLite and on PostgreSQL.

Every press runs in its own task, on its own connection, at the same time: the real race
of a double tap or of a worker and a leader pressing together.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App, build_app
from bot.deps import Ctx
from bot.messages import Action, Inbound
from bot.people.onboarding import create_invite
from config.settings import Settings
from models.enums import ChatKind, StaffRole
from models.enums import TicketState as S
from models.tickets import Outbox, Ticket, TicketEvent
from tests.pg import fresh_database

WORKER, LEADER, RESIDENT = "501", "502", "700"
PRESSES = 20


def _ctx(user: str, name: str = "") -> Ctx:
    return Ctx("telegram", user, name or user, user, ChatKind.PRIVATE)


async def _onboard(app: App, user: str, role: StaffRole) -> None:
    async with app.deps.sm() as s, s.begin():
        inv = await create_invite(s, role, grid="FN-02", community=None, now=app.deps.clock(),
                                  ttl_days=7)
    await app.core.on_start(_ctx(user), inv.code)


async def _report(app: App, i: int) -> Ticket:
    ib = Inbound(channel="telegram", external_id=f"{RESIDENT}:{i}", chat_id=RESIDENT,
                 chat_kind=ChatKind.PRIVATE, sender_id=RESIDENT, sender_name="张大妈",
                 text=f"南关农贸市场门口垃圾堆了{i}天", message_id=str(i))
    done = await app.core.on_message(ib)
    assert done.outcome is not None and done.outcome.ticket_id is not None
    async with app.deps.sm() as s:
        ticket = await s.get(Ticket, done.outcome.ticket_id)
    assert ticket is not None and ticket.state == S.ASSIGNED
    return ticket


async def _transitions_to(app: App, ticket_id: int, state: S) -> int:
    async with app.deps.sm() as s:
        return int(await s.scalar(select(func.count()).select_from(TicketEvent).where(
            TicketEvent.ticket_id == ticket_id, TicketEvent.kind == "transition",
            TicketEvent.to_state == state.value)) or 0)


async def _notices_to(app: App, chat: str, contains: str) -> int:
    async with app.deps.sm() as s:
        rows = await s.scalars(select(Outbox.payload).where(Outbox.chat_id == chat))
        return sum(contains in str(p.get("text", "")) for p in rows)


async def _race(app: App) -> None:
    """The story of issue 8, item 1, with every press doubled or worse."""
    await _onboard(app, WORKER, StaffRole.WORKER)
    await _onboard(app, LEADER, StaffRole.LEADER)
    ticket = await _report(app, 1)

    # 20 concurrent 接单 by the worker and the leader at once
    presses = [app.core.on_action(_ctx(WORKER if i % 2 else LEADER), Action("ack", ticket.id))
               for i in range(PRESSES)]
    answers = await asyncio.gather(*presses)
    assert sum(ok for _a, ok in answers) == 1, answers
    assert await _transitions_to(app, ticket.id, S.ACKNOWLEDGED) == 1
    assert await _notices_to(app, RESIDENT, "已由网格员") == 1
    refusals = [a for a, ok in answers if not ok]
    assert len(refusals) == PRESSES - 1
    assert all("已处理" in a and "已接单" in a for a in refusals), set(refusals)

    # resolve it, then two 不满意 presses by the reporter at once
    answer, ok = await app.core.on_action(_ctx(WORKER), Action("resolve", ticket.id))
    assert ok, answer
    await app.core.on_message(Inbound(
        channel="telegram", external_id=f"{WORKER}:900", chat_id=WORKER,
        chat_kind=ChatKind.PRIVATE, sender_id=WORKER, sender_name=WORKER, text="已清运",
        message_id="900"))
    async with app.deps.sm() as s:
        assert (await s.get(Ticket, ticket.id)).state == S.RESOLVED  # type: ignore[union-attr]
    ratings = await asyncio.gather(*(
        app.core.on_action(_ctx(RESIDENT, "张大妈"), Action("rate", ticket.id, "unsatisfied"))
        for _ in range(5)))
    assert sum(ok for _a, ok in ratings) == 1, ratings
    assert await _transitions_to(app, ticket.id, S.REOPENED) == 1
    assert await _notices_to(app, WORKER, "重新派单") == 1


@pytest.fixture
async def sqlite_app(loaded_settings: Settings) -> AsyncIterator[App]:
    app = await build_app(loaded_settings, senders={})
    try:
        yield app
    finally:
        await app.close()


async def test_concurrent_presses_take_effect_once_on_sqlite(sqlite_app: App,
                                                             tmp_path: Path) -> None:
    await _race(sqlite_app)


async def test_concurrent_presses_take_effect_once_on_postgresql() -> None:
    async with fresh_database("presses_test") as url:
        app = await build_app(Settings(database_url=url, _env_file=None), senders={})
        try:
            await _race(app)
        finally:
            await app.close()
