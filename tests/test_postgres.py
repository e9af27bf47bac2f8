"""PostgreSQL as the multi-instance backend: two service instances share one database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app import App, build_app
from bot.messages import Inbound
from bot.tickets.sweeper import sweep_once
from config.settings import Settings
from models.base import utcnow
from models.enums import ChatKind
from models.enums import TicketState as S
from models.tickets import InboundLog, Outbox, Ticket
from tests.pg import fresh_database


@pytest.fixture
async def two_instances() -> AsyncIterator[tuple[App, App]]:
    async with fresh_database("intake_test") as url:
        settings = Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]
        first = await build_app(settings, senders={})
        second = await build_app(settings, senders={})
        try:
            yield first, second
        finally:
            await first.close()
            await second.close()


def report(i: int, text: str = "报事 南关村口垃圾没人清") -> Inbound:
    # a resident each: one person's repeats fold into one ticket (tests/test_noise.py)
    return Inbound(channel="telegram", external_id=f"-100:{i}", chat_id="-100",
                   chat_kind=ChatKind.GROUP, sender_id=str(5000 + i),
                   sender_name=f"居民{i % 7}", text=text, message_id=str(i))


async def test_same_reports_through_two_instances_make_one_ticket_each(
    two_instances: tuple[App, App],
) -> None:
    a, b = two_instances
    reports = [report(i) for i in range(120)]
    # each instance gets every report (a redelivery landing on the other instance), at once
    results = await asyncio.gather(
        *(a.core.on_message(r) for r in reports), *(b.core.on_message(r) for r in reports))
    kinds = [r.kind for r in results]
    assert kinds.count("report") == 120 and kinds.count("duplicate") == 120
    async with a.deps.sm() as s:
        tickets = await s.scalar(select(func.count()).select_from(Ticket))
        numbers = await s.scalar(select(func.count(func.distinct(Ticket.number))))
        logged = await s.scalar(select(func.count()).select_from(InboundLog))
        replies = await s.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.chat_id == "-100"))
        rows = (await s.execute(select(Ticket.id, Ticket.state, Ticket.merged_into_id))).all()
    assert tickets == numbers == logged == replies == 120
    # the same problem at the same place: the first of each batch leads and the rest follow
    # it (附议); batches of the two instances may each open one, never a card per report
    leads = {tid for tid, state, _into in rows if state == S.ASSIGNED.value}
    assert 1 <= len(leads) <= 10
    assert all(state == S.MERGED.value and into in leads
               for tid, state, into in rows if tid not in leads)


async def test_sweepers_on_two_instances_handle_each_due_ticket_once(
    two_instances: tuple[App, App],
) -> None:
    a, b = two_instances
    for i in range(40):
        await a.core.on_message(report(i, "报事 这里有个坑"))  # no place: asked, waits
    later = utcnow() + timedelta(hours=2)
    a.deps.clock = b.deps.clock = lambda: later
    done = await asyncio.gather(sweep_once(a.deps), sweep_once(b.deps))
    assert sum(done) == 40
    async with a.deps.sm() as s:
        unrouted = await s.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.unrouted.is_(True)))
        told = await s.scalar(select(func.count()).select_from(Outbox).where(
            Outbox.chat_id == "-100"))
    assert unrouted == 40
    assert told == 80  # one question at intake, one "moved to the community queue" each


async def test_merges_both_ways_at_once_apply_one_and_never_deadlock(
    two_instances: tuple[App, App],
) -> None:
    """合并 A 到 B on one instance while 合并 B 到 A runs on the other: the rows are locked in
    id order, so one merge happens and the other is refused, with no deadlock error."""
    from bot.deps import Ctx
    from bot.people.onboarding import create_invite
    from models.enums import StaffRole

    a, b = two_instances
    async with a.deps.sm() as s, s.begin():
        inv = await create_invite(s, StaffRole.COORDINATOR, grid=None, community="FN",
                                  now=a.deps.clock(), ttl_days=7)
    await a.core.on_start(Ctx("telegram", "900", "周主任", "900", ChatKind.PRIVATE, "j"),
                          inv.code)
    first = (await a.core.on_message(report(1, "报事 南关村口垃圾没人清"))).outcome
    second = (await a.core.on_message(report(2, "报事 社岭村口路灯坏了"))).outcome
    assert first and second and first.number and second.number

    def merge(i: int, frm: str, to: str) -> Inbound:
        return Inbound(channel="telegram", external_id=f"900:{i}", chat_id="900",
                       chat_kind=ChatKind.PRIVATE, sender_id="900", sender_name="周主任",
                       text=f"合并 {frm} 到 {to}", message_id=str(i))

    for _round in range(5):
        await asyncio.gather(
            a.core.on_message(merge(100 + _round * 2, first.number, second.number)),
            b.core.on_message(merge(101 + _round * 2, second.number, first.number)))
        async with a.deps.sm() as s:
            states = sorted((await s.scalars(select(Ticket.state).where(
                Ticket.number.in_([first.number, second.number])))).all())
        assert states == [S.ASSIGNED.value, S.MERGED.value]
        async with a.deps.sm() as s, s.begin():  # split again for the next round
            merged = await s.scalar(select(Ticket.number).where(
                Ticket.state == S.MERGED.value))
        await a.core.on_message(Inbound(
            channel="telegram", external_id=f"900:s{_round}", chat_id="900",
            chat_kind=ChatKind.PRIVATE, sender_id="900", sender_name="周主任",
            text=f"拆分 {merged}", message_id=f"s{_round}"))
