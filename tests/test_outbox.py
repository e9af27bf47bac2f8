from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.outbox import OutboxWorker, backoff, enqueue, outbox_values
from bot.messages import (
    Action,
    Button,
    Outbound,
    PermanentSendError,
    RetryLater,
    TransientSendError,
)
from bot.notify.texts import t
from config.settings import Settings
from models.county import Community, Grid
from models.db import make_engine, make_sessionmaker, upgrade
from models.enums import ChatKind
from models.people import Identity, Person, StaffAssignment
from models.tickets import Outbox, SentMessage, Ticket
from tests.pg import fresh_database

Maker = async_sessionmaker[AsyncSession]
TG = "telegram"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeSender:
    """Records what would have reached the platform; raises scripted errors by message text."""

    def __init__(self, channel: str = TG, log: list[tuple[str, Outbound]] | None = None) -> None:
        self.channel = channel
        self.log = log if log is not None else []
        self.script: dict[str, list[Exception]] = {}
        self.calls = 0
        self.delivered = asyncio.Event()

    def fail(self, text: str, *errors: Exception) -> None:
        self.script.setdefault(text, []).extend(errors)

    async def send(self, msg: Outbound) -> str | None:
        self.calls += 1
        await asyncio.sleep(0)  # let concurrent work interleave, as real I/O would
        errors = self.script.get(msg.text)
        if errors:
            raise errors.pop(0)
        self.log.append((self.channel, msg))
        self.delivered.set()
        return f"m{len(self.log)}"

    def texts(self, chat_id: str | None = None) -> list[str]:
        return [m.text for _, m in self.log if chat_id is None or m.chat_id == chat_id]


def settings(**kw: Any) -> Settings:
    return Settings(_env_file=None, **kw)


def private(chat: str, text: str, **kw: Any) -> Outbound:
    return Outbound(channel=TG, chat_id=chat, chat_kind=ChatKind.PRIVATE, text=text, **kw)


def group(chat: str, text: str, **kw: Any) -> Outbound:
    return Outbound(channel=TG, chat_id=chat, chat_kind=ChatKind.GROUP, text=text, **kw)


BUTTONS = [[Button("接单", Action("ack", 1))]]


@pytest.fixture
async def sm(tmp_path: Any) -> AsyncIterator[Maker]:
    url = f"sqlite+aiosqlite:///{tmp_path / 't.db'}"
    await upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


def worker(sm: Maker, sender: FakeSender, clock: FakeClock, **kw: Any) -> OutboxWorker:
    extra = {k: kw.pop(k) for k in ("batch_size", "lease_seconds") if k in kw}
    return OutboxWorker(
        sm, {sender.channel: sender}, settings(**kw), clock, rng=random.Random(7), **extra
    )


async def put(sm: Maker, clock: FakeClock, *msgs: Outbound) -> None:
    async with sm() as s, s.begin():
        for m in msgs:
            enqueue(s, m, clock())


async def rows(sm: Maker) -> list[Outbox]:
    async with sm() as s:
        return list(await s.scalars(select(Outbox).order_by(Outbox.id)))


async def seed_ticket(sm: Maker, *, coordinator_channel: str = TG) -> int:
    """A ticket in a community with one coordinator, plus a county centre person.

    Core inserts name only the columns these tests need, so unrelated model columns
    don't matter here.
    """
    async with sm() as s, s.begin():

        async def add(model: Any, **values: Any) -> int:
            return int(await s.scalar(insert(model).values(**values).returning(model.id)))

        c = await add(Community, code="C1", name="东风社区")
        g = await add(Grid, code="G1", name="一网格", community_id=c)
        coord = await add(Person, name="王协调")
        centre = await add(Person, name="中心值班")
        await add(StaffAssignment, person_id=coord, role="coordinator", community_id=c)
        await add(StaffAssignment, person_id=centre, role="centre")
        await add(
            Identity,
            channel=coordinator_channel,
            user_id="u900",
            person_id=coord,
            private_chat_id="900",
        )
        await add(Identity, channel=TG, user_id="u999", person_id=centre, private_chat_id="999")
        await add(Identity, channel=TG, user_id="r1", display_name="李居民", private_chat_id="r1")
        return await add(
            Ticket,
            number="FS-20260302-0001",
            state="assigned",
            category="市政设施",
            text="路灯坏了",
            route_status="routed",
            grid_id=g,
            community_id=c,
            channel=TG,
            chat_id="r1",
            chat_kind="private",
            reporter_user_id="r1",
        )


# -- transactional outbox ------------------------------------------------------


async def test_rolled_back_rows_are_never_sent(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    w = worker(sm, sender, clock)
    async with sm() as s:
        enqueue(s, private("p1", "never"), clock())
        await s.flush()
        await s.rollback()
    assert await w.run_once() == 0
    assert sender.calls == 0 and await rows(sm) == []

    await put(sm, clock, private("p1", "hello"))
    assert await w.run_once() == 1
    [row] = await rows(sm)
    assert sender.texts() == ["hello"]
    assert (row.status, row.attempts, row.external_message_id) == ("sent", 1, "m1")
    assert row.sent_at == clock() and row.lease_until is None


async def test_bulk_insert_values_roundtrip(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    msgs = [
        private("p1", "card", buttons=BUTTONS, photos=["ph1"], ticket_id=None),
        group("g1", "reply", reply_to="55", mention_user_id="u1", mention_name="张三"),
    ]
    async with sm() as s, s.begin():
        await s.execute(insert(Outbox), [outbox_values(m, clock()) for m in msgs])
    assert await worker(sm, sender, clock).run_once() == 2
    assert [m for _, m in sender.log] == msgs


async def test_not_due_and_unknown_channel_rows_wait(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    async with sm() as s, s.begin():
        s.add(Outbox(**outbox_values(private("p1", "later"), clock() + timedelta(seconds=30))))
        s.add(
            Outbox(
                **outbox_values(
                    Outbound("wechat", "w1", ChatKind.PRIVATE, "no sender here"), clock()
                )
            )
        )
    w = worker(sm, sender, clock)
    assert await w.run_once() == 0
    clock.advance(30)
    assert await w.run_once() == 1
    assert sender.texts() == ["later"]
    assert [r.status for r in await rows(sm)] == ["sent", "pending"]


async def test_unreadable_payload_is_dead_at_once(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    async with sm() as s, s.begin():
        values = outbox_values(private("p1", "x"), clock())
        s.add(Outbox(**{**values, "payload": {"no_text": True}}))
    assert await worker(sm, sender, clock).run_once() == 0
    [row] = await rows(sm)
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error == "PermanentSendError: bad payload: 'text'"
    assert sender.calls == 0


# -- order and rate limits -----------------------------------------------------


async def test_private_chat_one_per_second_in_order(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    await put(
        sm, clock, private("A", "a1"), private("A", "a2"), private("B", "b1"), private("A", "a3")
    )
    w = worker(sm, sender, clock)
    assert await w.run_once() == 2
    assert sender.texts() == ["a1", "b1"]
    assert await w.run_once() == 0
    clock.advance(0.5)
    assert await w.run_once() == 0
    # waiting for the limit is not an attempt
    assert [r.attempts for r in await rows(sm)] == [1, 0, 1, 0]
    clock.advance(0.5)
    assert await w.run_once() == 1
    clock.advance(1)
    assert await w.run_once() == 1
    assert sender.texts("A") == ["a1", "a2", "a3"]


async def test_group_twenty_per_minute(sm: Maker, sender: FakeSender, clock: FakeClock) -> None:
    # buttons make each one unmergeable, so the limit itself must hold them back
    await put(sm, clock, *(group("G", f"card {i}", buttons=BUTTONS) for i in range(25)))
    w = worker(sm, sender, clock)
    assert await w.run_once() == 20
    clock.advance(30)
    assert await w.run_once() == 0
    assert Counter(r.status for r in await rows(sm)) == {"sent": 20, "pending": 5}
    clock.advance(30)
    assert await w.run_once() == 5
    assert sender.texts() == [f"card {i}" for i in range(25)]


async def test_global_thirty_per_second(sm: Maker, sender: FakeSender, clock: FakeClock) -> None:
    await put(sm, clock, *(private(f"p{i}", f"t{i}") for i in range(40)))
    w = worker(sm, sender, clock)
    assert await w.run_once() == 30
    assert await w.run_once() == 0
    clock.advance(1)
    assert await w.run_once() == 10
    assert sorted(sender.texts()) == sorted(f"t{i}" for i in range(40))
    assert sender.texts()[:30] == [f"t{i}" for i in range(30)]  # oldest first


async def test_group_backlog_is_coalesced(sm: Maker, sender: FakeSender, clock: FakeClock) -> None:
    await put(
        sm,
        clock,
        group("G", "r1", reply_to="11", mention_user_id="u1", mention_name="张三"),
        group("G", "r2", reply_to="12", mention_user_id="u2", mention_name="李四"),
        group("G", "card", buttons=BUTTONS),
        group("G", "r3"),
        group("G", "photo", photos=["f1"]),
        group("G", "r4"),
        group("G", "r5"),
        private("P", "private one"),
    )
    w = worker(sm, sender, clock, group_per_minute=5)
    assert await w.run_once() == 6
    assert sender.texts("G") == ["r1\n\n@李四 r2", "card", "r3", "photo", "r4\n\nr5"]
    first = sender.log[0][1]
    assert (first.reply_to, first.mention_user_id) == ("11", "u1")
    rs = await rows(sm)
    assert [(r.status, r.coalesced_into) for r in rs] == [
        ("sent", None),
        ("coalesced", rs[0].id),
        ("sent", None),
        ("sent", None),
        ("sent", None),
        ("sent", None),
        ("coalesced", rs[5].id),
        ("sent", None),
    ]
    assert rs[0].payload["coalesced"] == [rs[1].id]


async def test_group_within_limit_is_not_coalesced(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    await put(sm, clock, *(group("G", f"r{i}") for i in range(3)))
    assert await worker(sm, sender, clock).run_once() == 3
    assert sender.texts() == ["r0", "r1", "r2"]


async def test_big_group_burst_becomes_one_message(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    await put(sm, clock, *(group("G", f"已受理 {i}") for i in range(30)))
    assert await worker(sm, sender, clock).run_once() == 1
    assert sender.texts() == ["\n\n".join(f"已受理 {i}" for i in range(30))]
    assert Counter(r.status for r in await rows(sm)) == {"sent": 1, "coalesced": 29}


# -- failures ------------------------------------------------------------------


async def test_retry_later_pauses_the_channel(sm: Maker, clock: FakeClock) -> None:
    tg, console = FakeSender(TG), FakeSender("console")
    tg.fail("flood", RetryLater(7))
    w = OutboxWorker(sm, {TG: tg, "console": console}, settings(), clock)
    await put(sm, clock, private("A", "flood"))
    assert await w.run_once() == 0
    [row] = await rows(sm)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == clock() + timedelta(seconds=7)
    assert row.last_error is not None and row.last_error.startswith("RetryLater")

    await put(
        sm,
        clock,
        private("B", "other chat"),
        Outbound("console", "c1", ChatKind.PRIVATE, "other channel"),
    )
    clock.advance(3)
    assert await w.run_once() == 1
    assert (tg.texts(), console.texts()) == ([], ["other channel"])
    clock.advance(4)
    assert await w.run_once() == 2
    assert tg.texts() == ["flood", "other chat"]


async def test_transient_backoff_keeps_chat_order(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    sender.fail("x", TransientSendError("502 Bad Gateway"), TransientSendError("timeout"))
    await put(sm, clock, private("A", "x"), private("A", "y"))
    w = worker(sm, sender, clock)
    start = clock()
    assert await w.run_once() == 0
    x, y = await rows(sm)
    assert (x.status, x.attempts, x.last_error) == (
        "pending",
        1,
        "TransientSendError: 502 Bad Gateway",
    )
    assert timedelta(seconds=1.6) <= x.next_attempt_at - start <= timedelta(seconds=2.4)
    assert (y.status, y.attempts) == ("pending", 0)

    clock.advance(1.5)  # the private limit is over, but y must not overtake x
    assert await w.run_once() == 0
    clock.now = x.next_attempt_at
    assert await w.run_once() == 0
    x, _ = await rows(sm)
    assert x.attempts == 2
    assert timedelta(seconds=3.2) <= x.next_attempt_at - clock() <= timedelta(seconds=4.8)
    clock.now = x.next_attempt_at
    assert await w.run_once() == 1
    clock.advance(1)
    assert await w.run_once() == 1
    assert sender.texts() == ["x", "y"]
    assert [(r.status, r.attempts) for r in await rows(sm)] == [("sent", 3), ("sent", 1)]


def test_backoff_doubles_with_jitter_and_cap() -> None:
    assert [backoff(n, 0.5) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff(1, 0.0) == pytest.approx(1.6) and backoff(1, 1.0) == pytest.approx(2.4)
    assert backoff(9, 1.0) == 300.0 and backoff(500, 0.3) == pytest.approx(276.0)


async def test_unexpected_error_is_retried_without_leaking_secrets(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
    sender.fail(
        "x",
        RuntimeError(
            f"POST https://api.telegram.org/bot{token}/sendMessage "
            "?access_token=s3cr3t failed" + "!" * 500
        ),
    )
    await put(sm, clock, private("A", "x"))
    assert await worker(sm, sender, clock).run_once() == 0
    [row] = await rows(sm)
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("RuntimeError: POST")
    assert token not in row.last_error and "s3cr3t" not in row.last_error
    assert len(row.last_error) <= 300


async def test_dead_letter_after_max_attempts_alerts_coordinator(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    ticket_id = await seed_ticket(sm)
    text = "您的工单 FS-20260302-0001 已由网格员接单。" * 5
    sender.fail(text, *(TransientSendError("503") for _ in range(3)))
    await put(sm, clock, private("r1", text, ticket_id=ticket_id))
    w = worker(sm, sender, clock, outbox_max_attempts=3)
    for _ in range(3):
        assert await w.run_once() == 0
        clock.advance(301)
    dead, alert = await rows(sm)
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 3, "TransientSendError: 503")
    assert (alert.chat_id, alert.chat_kind, alert.status, alert.ticket_id) == (
        "900",
        "private",
        "pending",
        ticket_id,
    )
    assert alert.payload["alert"] is True
    assert alert.payload["text"] == t("outbox.dead_letter", chat="李居民 (r1)", text=text[:60])
    assert await w.run_once() == 1
    assert sender.log[0][1].chat_id == "900"


async def test_permanent_error_dead_at_once_and_alerts_do_not_loop(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    ticket_id = await seed_ticket(sm)
    sender.fail("blocked", PermanentSendError("Forbidden: bot was blocked by the user"))
    await put(sm, clock, private("r1", "blocked", ticket_id=ticket_id))
    w = worker(sm, sender, clock)
    assert await w.run_once() == 0
    dead, alert = await rows(sm)
    assert (dead.status, dead.attempts) == ("dead", 1)
    assert alert.chat_id == "900"
    sender.fail(alert.payload["text"], PermanentSendError("coordinator blocked us too"))
    assert await w.run_once() == 0
    assert [r.status for r in await rows(sm)] == ["dead", "dead"]  # no alert about the alert


async def test_alert_falls_back_to_centre(sm: Maker, sender: FakeSender, clock: FakeClock) -> None:
    # the coordinator is only reachable on another channel
    ticket_id = await seed_ticket(sm, coordinator_channel="wecom")
    sender.fail("lost", PermanentSendError("chat not found"))
    await put(sm, clock, group("g-gone", "lost", ticket_id=ticket_id))
    await worker(sm, sender, clock).run_once()
    _, alert = await rows(sm)
    assert alert.chat_id == "999"
    assert alert.payload["text"] == t("outbox.dead_letter", chat="g-gone", text="lost")


async def test_expired_lease_is_claimed_again(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    await put(sm, clock, private("A", "a1"), private("A", "a2"))
    async with sm() as s, s.begin():  # an instance claimed a1 and died mid-send
        await s.execute(
            update(Outbox)
            .where(Outbox.chat_id == "A", Outbox.id == 1)
            .values(status="sending", lease_until=clock() + timedelta(seconds=60))
        )
    w = worker(sm, sender, clock)
    assert await w.run_once() == 0  # a1 is in flight; a2 waits behind it
    clock.advance(60)
    assert await w.run_once() == 1
    clock.advance(1)
    assert await w.run_once() == 1
    assert sender.texts() == ["a1", "a2"]


async def test_rows_are_given_back_before_the_lease_runs_out(sm: Maker, clock: FakeClock) -> None:
    slow = FakeSender()
    original = slow.send

    async def send(msg: Outbound) -> str | None:
        clock.advance(30)  # each send takes half a minute
        return await original(msg)

    slow.send = send  # type: ignore[method-assign]
    await put(sm, clock, *(group("G", f"c{i}", buttons=BUTTONS) for i in range(3)))
    # renewal runs on real time, so within this pass the claim's 60 s lease is all there is
    w = OutboxWorker(sm, {TG: slow}, settings(outbox_lease_seconds=60), clock)
    assert await w.run_once() == 2
    assert [r.status for r in await rows(sm)] == ["sent", "sent", "pending"]
    assert await w.run_once() == 1


async def test_remember_records_sent_message(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    ticket_id = await seed_ticket(sm)
    await put(
        sm,
        clock,
        private("w1", "card", buttons=BUTTONS, ticket_id=ticket_id, remember=True),
        private("w2", "plain", ticket_id=ticket_id),
    )
    assert await worker(sm, sender, clock).run_once() == 2
    async with sm() as s:
        [sm_row] = list(await s.scalars(select(SentMessage)))
    assert (sm_row.channel, sm_row.chat_id, sm_row.message_id, sm_row.ticket_id) == (
        TG,
        "w1",
        "m1",
        ticket_id,
    )


async def test_run_loop_sleeps_when_idle_and_wakes_on_demand(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    slept: list[float] = []
    idle = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        idle.set()
        await asyncio.Event().wait()  # only wake() or stop ends this idle spell

    w = OutboxWorker(sm, {TG: sender}, settings(outbox_poll_seconds=0.25), clock, sleep)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    await asyncio.wait_for(idle.wait(), 2)
    await put(sm, clock, private("p1", "right away"))
    w.wake()
    await asyncio.wait_for(sender.delivered.wait(), 2)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert sender.texts() == ["right away"] and slept[0] == 0.25


# -- several processes on PostgreSQL ---------------------------------------------


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_database("outbox_test") as url:
        yield url


async def test_two_workers_on_postgres_send_each_row_once(pg_url: str, clock: FakeClock) -> None:
    await upgrade(pg_url)
    engines = [make_engine(pg_url), make_engine(pg_url)]
    try:
        makers = [make_sessionmaker(e) for e in engines]
        chats = [private(f"p{i}", "") for i in range(30)] + [group(f"g{i}", "") for i in range(5)]
        expected = {c.chat_id: [f"{c.chat_id}-{n}" for n in range(4)] for c in chats}
        async with makers[0]() as s, s.begin():
            for n in range(4):
                for c in chats:
                    enqueue(
                        s,
                        Outbound(TG, c.chat_id, c.chat_kind, f"{c.chat_id}-{n}", buttons=BUTTONS),
                        clock(),
                    )
        log: list[tuple[str, Outbound]] = []
        workers = [
            OutboxWorker(
                m, {TG: FakeSender(TG, log)}, settings(global_per_second=1000), clock, batch_size=10
            )
            for m in makers
        ]
        sent_by = [0, 0]
        for _ in range(30):
            counts = await asyncio.gather(*(w.run_once() for w in workers))
            sent_by = [a + b for a, b in zip(sent_by, counts, strict=True)]
            if len(log) >= 140:
                break
            clock.advance(1)
        texts = [m.text for _, m in log]
        assert Counter(texts) == Counter(x for v in expected.values() for x in v)
        for chat, want in expected.items():
            assert [m.text for _, m in log if m.chat_id == chat] == want
        assert all(n > 0 for n in sent_by), sent_by
        async with makers[0]() as s:
            statuses = Counter(await s.scalars(select(Outbox.status)))
        assert statuses == {"sent": 140}
    finally:
        for e in engines:
            await e.dispose()


async def test_postgres_row_locked_by_another_claim_holds_back_its_chat(
    pg_url: str, clock: FakeClock
) -> None:
    await upgrade(pg_url)
    engine = make_engine(pg_url)
    try:
        maker = make_sessionmaker(engine)
        await put(maker, clock, private("X", "x1"), private("X", "x2"), private("Y", "y1"))
        sender = FakeSender()
        w = OutboxWorker(maker, {TG: sender}, settings(), clock)
        async with maker() as other, other.begin():
            # another instance is mid-claim on x1: SKIP LOCKED passes over it
            await other.execute(select(Outbox).where(Outbox.id == 1).with_for_update())
            assert await w.run_once() == 1
            assert sender.texts() == ["y1"]
        clock.advance(1)
        assert await w.run_once() == 1
        clock.advance(1)
        assert await w.run_once() == 1
        assert sender.texts("X") == ["x1", "x2"]
    finally:
        await engine.dispose()


async def test_a_reused_message_id_points_at_the_newest_ticket(
    sm: Maker, sender: FakeSender, clock: FakeClock
) -> None:
    first = await seed_ticket(sm)
    async with sm() as s, s.begin():
        row = (await s.execute(select(Ticket).where(Ticket.id == first))).scalar_one()
        values = {c.key: getattr(row, c.key) for c in Ticket.__table__.columns if c.key != "id"}
        second = int(await s.scalar(insert(Ticket).values(
            **{**values, "number": "FS-20260303-0002"}).returning(Ticket.id)))

    async def same_id(msg: Outbound) -> str | None:  # a channel whose ids start again
        await FakeSender.send(sender, msg)
        return "m1"

    sender.send = same_id  # type: ignore[method-assign]
    await put(sm, clock, private("w1", "card 1", ticket_id=first, remember=True))
    assert await worker(sm, sender, clock).run_once() == 1
    await put(sm, clock, private("w1", "card 2", ticket_id=second, remember=True))
    assert await worker(sm, sender, clock).run_once() == 1
    async with sm() as s:
        rows_ = list(await s.scalars(select(SentMessage)))
    assert [(r.message_id, r.ticket_id) for r in rows_] == [("m1", second)]
