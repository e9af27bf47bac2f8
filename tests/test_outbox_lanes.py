"""Outbox lanes: one slow chat never holds up another; timeouts, lease renewal, crashes.

Each worker gets its own engine on one SQLite file, as separate instances would.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.delivery.outbox import OutboxWorker
from bot.messages import Outbound
from models.db import make_engine, make_sessionmaker, upgrade
from tests.test_outbox import (
    BUTTONS,
    TG,
    FakeClock,
    FakeSender,
    Maker,
    group,
    private,
    put,
    rows,
    settings,
)


class HoldingSender(FakeSender):
    """A FakeSender whose first send of each held text waits until the test releases it."""

    def __init__(self) -> None:
        super().__init__()
        self._gates: dict[str, asyncio.Event] = {}
        self._waited: set[str] = set()
        self._arrived: dict[str, asyncio.Event] = {}
        self._change = asyncio.Condition()
        self.entered: list[str] = []
        self.cancelled: list[str] = []
        self.in_flight = 0
        self.peak = 0

    def hold(self, *texts: str) -> None:
        for text in texts:
            self._gates[text] = asyncio.Event()

    def release(self, *texts: str) -> None:
        for text in texts:
            self._gates[text].set()

    def arrived(self, text: str) -> asyncio.Event:
        return self._arrived.setdefault(text, asyncio.Event())

    async def wait_entered(self, n: int) -> None:
        async with self._change:
            await asyncio.wait_for(self._change.wait_for(lambda: len(self.entered) >= n), 2)

    async def send(self, msg: Outbound) -> str | None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            gate = self._gates.get(msg.text)
            if gate is not None and msg.text not in self._waited:
                self._waited.add(msg.text)
                async with self._change:
                    self.entered.append(msg.text)
                    self._change.notify_all()
                try:
                    await gate.wait()
                except asyncio.CancelledError:
                    self.cancelled.append(msg.text)
                    raise
            ext = await super().send(msg)
        finally:
            self.in_flight -= 1
        self.arrived(msg.text).set()
        return ext


class ManualTimer:
    """A worker's sleep(): it returns once the test moves the fake clock past its end."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.asked: list[float] = []
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []
        self._slept = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (self.clock() + timedelta(seconds=seconds), wake)
        self.asked.append(seconds)
        self._sleepers.append(entry)
        self._slept.set()
        try:
            await wake
        finally:
            self._sleepers.remove(entry)

    async def advance(self, seconds: float) -> None:
        """Move the clock on; wake each sleeper at its time and wait until it sleeps again."""
        end = self.clock() + timedelta(seconds=seconds)
        while due := [e for e in self._sleepers if e[0] <= end and not e[1].done()]:
            at, fut = min(due, key=lambda e: e[0])
            self.clock.now = max(self.clock.now, at)
            self._slept.clear()
            fut.set_result(None)
            await asyncio.wait_for(self._slept.wait(), 2)
        self.clock.now = end


@pytest.fixture
async def connect(tmp_path: Path) -> AsyncIterator[Callable[[], Maker]]:
    """A new engine (one instance's connections) on the test's SQLite file per call."""
    url = f"sqlite+aiosqlite:///{tmp_path / 't.db'}"
    await upgrade(url)
    engines: list[AsyncEngine] = []

    def new() -> Maker:
        engines.append(make_engine(url))
        return make_sessionmaker(engines[-1])

    yield new
    for e in engines:
        await e.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_a_hanging_chat_does_not_delay_other_chats(
    connect: Callable[[], Maker], clock: FakeClock
) -> None:
    sm = connect()
    sender = HoldingSender()
    sender.hold("s1")
    w = OutboxWorker(sm, {TG: sender}, settings(), clock)
    stop = asyncio.Event()
    loop_task = asyncio.create_task(w.run(stop))
    loop = asyncio.get_running_loop()
    try:
        await put(sm, clock, group("S", "s1"))
        w.wake()
        await sender.wait_entered(1)
        await put(sm, clock, group("S", "s2"))  # behind the hanging s1, in its chat
        took: list[float] = []
        for i in range(20):
            start = loop.time()
            await put(sm, clock, private(f"p{i}", f"t{i}"))
            w.wake()
            await asyncio.wait_for(sender.arrived(f"t{i}").wait(), 2)
            took.append(loop.time() - start)
        assert len(took) == 20 and max(took) < 2.0, took
        assert sender.texts() == [f"t{i}" for i in range(20)]
        assert sender.entered == ["s1"] and sender.in_flight == 1  # s1 still hangs
        assert [r.status for r in await rows(sm)][:2] == ["sending", "pending"]

        sender.release("s1")
        await asyncio.wait_for(sender.arrived("s2").wait(), 2)
        assert sender.texts("S") == ["s1", "s2"]
    finally:
        stop.set()
        await asyncio.wait_for(loop_task, 5)
    assert [r.status for r in await rows(sm)] == ["sent"] * 22


async def test_requests_in_flight_are_bounded_by_concurrency(
    connect: Callable[[], Maker], clock: FakeClock
) -> None:
    sm = connect()
    sender = HoldingSender()
    texts = [f"t{i}" for i in range(10)]
    sender.hold(*texts)
    w = OutboxWorker(sm, {TG: sender}, settings(), clock, concurrency=3)
    await put(sm, clock, *(private(f"p{i}", t) for i, t in enumerate(texts)))
    pass_ = asyncio.create_task(w.run_once())
    await sender.wait_entered(3)
    assert (sender.in_flight, sender.entered) == (3, texts[:3])
    sender.release(*texts)
    assert await asyncio.wait_for(pass_, 2) == 10
    assert sender.peak == 3 and sorted(sender.texts()) == sorted(texts)


async def test_a_send_past_the_timeout_is_retried_and_its_row_is_not_stuck(
    connect: Callable[[], Maker], clock: FakeClock
) -> None:
    sm = connect()
    sender = HoldingSender()
    sender.hold("slow")  # never released: only the timeout ends this send
    w = OutboxWorker(
        sm, {TG: sender}, settings(outbox_send_timeout_seconds=0.05), clock, rng=random.Random(7)
    )
    await put(sm, clock, private("A", "slow"), private("B", "quick"))
    start = clock()
    assert await asyncio.wait_for(w.run_once(), 2) == 1
    assert sender.cancelled == ["slow"] and sender.texts() == ["quick"]
    slow, quick = await rows(sm)
    assert (slow.status, slow.attempts, slow.lease_until) == ("pending", 1, None)
    assert slow.last_error == "SendTimedOut: no answer within 0.05 s; it may have been delivered"
    assert timedelta(seconds=1.6) <= slow.next_attempt_at - start <= timedelta(seconds=2.4)
    assert (quick.status, quick.attempts) == ("sent", 1)

    clock.now = slow.next_attempt_at
    assert await w.run_once() == 1
    assert sender.texts() == ["quick", "slow"]
    assert [(r.status, r.attempts) for r in await rows(sm)] == [("sent", 2), ("sent", 1)]


def test_the_send_timeout_must_be_below_the_lease(clock: FakeClock) -> None:
    s = settings(outbox_send_timeout_seconds=30, outbox_lease_seconds=30)
    with pytest.raises(ValueError, match="below the lease"):
        OutboxWorker(None, {}, s, clock)  # type: ignore[arg-type]
    assert (settings().outbox_send_timeout_seconds, settings().outbox_lease_seconds) == (20, 30)


async def test_renewed_leases_keep_slow_sends_from_a_second_worker(
    connect: Callable[[], Maker], clock: FakeClock
) -> None:
    sm = connect()
    timer = ManualTimer(clock)
    a_sender, b_sender = HoldingSender(), FakeSender()
    texts = ["g1", "g2", "g3"]
    a_sender.hold(*texts)
    a = OutboxWorker(connect(), {TG: a_sender}, settings(), clock, timer.sleep)
    b = OutboxWorker(connect(), {TG: b_sender}, settings(), clock)
    await put(sm, clock, *(group("G", t, buttons=BUTTONS) for t in texts))
    start = clock()
    pass_a = asyncio.create_task(a.run_once())
    # three sends of 15 s each (under the 20 s timeout): 45 s in all, past the 30 s lease
    for n, text in enumerate(texts, 1):
        await a_sender.wait_entered(n)
        await timer.advance(15)
        assert await b.run_once() == 0 and b_sender.calls == 0
        renewed = start + timedelta(seconds=(15 * n) // 10 * 10 + 30)
        assert [(r.status, r.lease_until) for r in await rows(sm)][n - 1 :] == [
            ("sending", renewed)
        ] * (4 - n)
        a_sender.release(text)
    assert await asyncio.wait_for(pass_a, 2) == 3
    assert a_sender.texts() == texts and b_sender.texts() == []
    assert [r.status for r in await rows(sm)] == ["sent"] * 3
    assert timer.asked == [10.0] * 5  # renewals at 10, 20, 30 and 40 s; the fifth was cut short


async def test_a_chat_with_a_running_lane_is_not_claimed_again_here(
    connect: Callable[[], Maker], clock: FakeClock
) -> None:
    sm = connect()
    sender = HoldingSender()
    sender.hold("s1")
    w = OutboxWorker(sm, {TG: sender}, settings(), clock)
    await put(sm, clock, private("S", "s1"), private("T", "t1"))
    first = asyncio.create_task(w.run_once())
    await sender.wait_entered(1)
    await asyncio.wait_for(sender.arrived("t1").wait(), 2)
    # s1's lease has run out by the clock (its renewal runs on real time, so never here)
    clock.advance(61)
    await put(sm, clock, private("U", "u1"))
    assert await w.run_once() == 1
    assert sender.texts() == ["t1", "u1"]
    sender.release("s1")
    assert await asyncio.wait_for(first, 2) == 2
    assert sender.texts() == ["t1", "u1", "s1"] and sender.calls == 3


async def test_rows_of_a_crashed_worker_are_claimed_after_one_short_lease(
    connect: Callable[[], Maker], clock: FakeClock
) -> None:
    sm = connect()
    a_sender, b_sender = HoldingSender(), FakeSender()
    a_sender.hold("x1")
    a = OutboxWorker(connect(), {TG: a_sender}, settings(), clock)  # the default lease
    await put(sm, clock, group("X", "x1", buttons=BUTTONS), group("X", "x2", buttons=BUTTONS))
    start = clock()
    pass_a = asyncio.create_task(a.run_once())
    await a_sender.wait_entered(1)
    # kill -9 mid-send: nothing more is written, the rows stay leased
    pass_a.cancel()
    await asyncio.gather(pass_a, return_exceptions=True)
    lease_end = start + timedelta(seconds=30)
    assert [(r.status, r.lease_until) for r in await rows(sm)] == [("sending", lease_end)] * 2

    b = OutboxWorker(connect(), {TG: b_sender}, settings(), clock)
    clock.advance(29.9)
    assert await b.run_once() == 0
    clock.now = lease_end
    assert await b.run_once() == 2
    assert b_sender.texts() == ["x1", "x2"]
    assert [(r.status, r.attempts) for r in await rows(sm)] == [("sent", 1)] * 2


async def test_stopping_gives_back_what_a_lane_has_not_started(
    connect: Callable[[], Maker], clock: FakeClock
) -> None:
    sm = connect()
    sender = HoldingSender()
    sender.hold("g1")
    w = OutboxWorker(sm, {TG: sender}, settings(), clock)
    await put(sm, clock, *(group("G", f"g{i}", buttons=BUTTONS) for i in (1, 2, 3)))
    stop = asyncio.Event()
    loop_task = asyncio.create_task(w.run(stop))
    w.wake()
    await sender.wait_entered(1)
    stop.set()
    sender.release("g1")  # the send under way finishes; the rest is not sent
    await asyncio.wait_for(loop_task, 2)
    assert sender.texts() == ["g1"]
    assert [(r.status, r.attempts, r.lease_until, r.next_attempt_at) for r in await rows(sm)] == [
        ("sent", 1, None, clock()),
        ("pending", 0, None, clock()),
        ("pending", 0, None, clock()),
    ]


class LateSender(FakeSender):
    """The platform takes the message at once but answers after our timeout: the
    duplicate-on-timeout window, as it happens when Telegram is slow to reply."""

    async def send(self, msg: Outbound) -> str | None:
        self.log.append((self.channel, msg))  # delivered, whatever happens to the answer
        if sum(m.text == msg.text for _c, m in self.log) == 1:
            await asyncio.sleep(1)  # the answer comes after the 0.05 s timeout
        return f"m{len(self.log)}"


async def test_the_duplicate_on_timeout_window_is_one_extra_copy(
    connect: Callable[[], Maker], clock: FakeClock
) -> None:
    sm = connect()
    sender = LateSender()
    w = OutboxWorker(
        sm, {TG: sender}, settings(outbox_send_timeout_seconds=0.05), clock, rng=random.Random(3)
    )
    await put(sm, clock, private("A", "card"))
    assert await asyncio.wait_for(w.run_once(), 2) == 0  # timed out: retried later
    [row] = await rows(sm)
    clock.now = row.next_attempt_at
    assert await w.run_once() == 1
    # the person got it twice (documented); the row was sent once and is done
    assert [m.text for _c, m in sender.log] == ["card", "card"]
    [row] = await rows(sm)
    assert (row.status, row.attempts) == ("sent", 2)


async def test_lanes_that_finish_together_are_marked_sent_in_shared_commits(
    connect: Callable[[], Maker], clock: FakeClock
) -> None:
    sm = connect()
    sender = HoldingSender()
    texts = [f"t{i}" for i in range(10)]
    sender.hold(*texts)
    w = OutboxWorker(sm, {TG: sender}, settings(), clock, concurrency=10)
    await put(sm, clock, *(private(f"p{i}", t) for i, t in enumerate(texts)))
    pass_ = asyncio.create_task(w.run_once())
    await sender.wait_entered(10)  # all claimed (one commit), all sends in flight
    writer = w._db().writes._sync
    assert writer is not None
    commits: list[int] = []
    event.listen(writer, "commit", lambda _c: commits.append(1))
    sender.release(*texts)
    assert await asyncio.wait_for(pass_, 5) == 10
    got = await rows(sm)
    assert [(r.status, r.attempts) for r in got] == [("sent", 1)] * 10
    assert sorted(r.external_message_id or "" for r in got) == sorted(f"m{i}" for i in
                                                                       range(1, 11))
    assert 1 <= len(commits) < 10, commits  # ten sends, fewer write transactions
    await w.close()


async def test_claim_passes_are_spaced_however_often_the_worker_is_woken(
    connect: Callable[[], Maker], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.delivery.outbox.CLAIM_SPACING", 0.1)
    sm = connect()
    sender = HoldingSender()
    w = OutboxWorker(sm, {TG: sender}, settings(), clock)
    passes: list[float] = []
    loop = asyncio.get_running_loop()
    start_lanes = w._start_lanes

    async def counted() -> list[asyncio.Task[int]]:
        passes.append(loop.time())
        return await start_lanes()

    monkeypatch.setattr(w, "_start_lanes", counted)
    stop = asyncio.Event()
    task = asyncio.create_task(w.run(stop))
    try:
        for i in range(25):  # a commit every 10 ms, each waking the worker
            await put(sm, clock, private(f"p{i}", f"t{i}"))
            w.wake()
            await asyncio.sleep(0.01)
        await asyncio.wait_for(sender.arrived("t24").wait(), 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    gaps = [b - a for a, b in itertools.pairwise(passes)]
    assert gaps and min(gaps) >= 0.099, gaps
    assert sorted(sender.texts()) == sorted(f"t{i}" for i in range(25))
