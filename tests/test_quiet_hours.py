"""Quiet hours (QUIET_HOURS, 22-7): a normal ticket's notices to staff wait for the morning
without holding up anything else; urgent ones wake them at once."""

from __future__ import annotations

from sqlalchemy import select

from bot.tickets.sweeper import release_held
from models.enums import OutboxStatus
from models.tickets import Outbox
from tests.test_telegram_flow import GROUP, WORKER, Flow, plain, report
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed

URGENT = "报事 南关农贸市场门口电线掉下来了，有触电危险"


async def _held(flow: Flow) -> list[Outbox]:
    async with flow.tg.app.deps.sm() as s:
        return list((await s.scalars(select(Outbox).where(
            Outbox.status == OutboxStatus.HELD.value))).all())


async def test_a_card_reported_at_night_reaches_the_worker_in_the_morning(
        staffed: Flow) -> None:
    flow = staffed
    flow.tg.clock.advance(hours=13)  # 10:00 -> 23:00 local
    tk = await report(flow)
    assert any(tk.number in plain(x) for x in flow.texts(GROUP))  # the resident hears at once
    assert not [x for x in flow.texts(WORKER) if tk.number in x]  # the worker sleeps
    held = await _held(flow)
    assert [r.chat_id for r in held] == [str(WORKER)]
    assert await release_held(flow.tg.app.deps) == 0  # still night: nothing goes

    # the worker is up anyway and asks: the answer is not stuck behind the held card
    await flow.say(WORKER, "我的工单")
    await flow.deliver()
    assert tk.number in flow.texts(WORKER)[-1]

    flow.tg.clock.advance(hours=8)  # 07:00
    assert await release_held(flow.tg.app.deps) == 1
    await flow.deliver()
    assert flow.texts(WORKER)[-1].startswith(f"【新工单】{tk.number}")
    assert await _held(flow) == []


async def test_an_urgent_card_wakes_the_worker(staffed: Flow) -> None:
    flow = staffed
    flow.tg.clock.advance(hours=15)  # 01:00 local
    tk = await report(flow, URGENT)
    assert tk.priority == "urgent"
    assert any(x.startswith("【紧急】") and tk.number in x for x in flow.texts(WORKER))
    assert await _held(flow) == []


async def test_by_day_nothing_is_held(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    assert flow.texts(WORKER)[-1].startswith(f"【新工单】{tk.number}")
    assert await _held(flow) == []
