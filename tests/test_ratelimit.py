from __future__ import annotations

from typing import Any

import pytest

from bot.delivery.ratelimit import RateLimiter, Window
from config.settings import Settings


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def limiter(clock: Clock, **kw: Any) -> RateLimiter:
    return RateLimiter(clock=clock, **kw)


def test_private_chat_one_per_second() -> None:
    c = Clock()
    rl = limiter(c)
    assert rl.wait("tg", "p1", "private") == 0.0
    assert rl.try_acquire("tg", "p1", "private") == 0.0
    assert rl.wait("tg", "p1", "private") == pytest.approx(1.0)
    assert rl.try_acquire("tg", "p1", "private") == pytest.approx(1.0)
    c.t += 0.4
    assert rl.wait("tg", "p1", "private") == pytest.approx(0.6)
    assert rl.next_at("tg", "p1", "private") == pytest.approx(1001.0)
    # another chat is not held back by this one
    assert rl.wait("tg", "p2", "private") == 0.0
    c.t = 1001.0
    assert rl.try_acquire("tg", "p1", "private") == 0.0


def test_wait_does_not_consume() -> None:
    rl = limiter(Clock())
    for _ in range(5):
        assert rl.wait("tg", "p1", "private") == 0.0
        assert rl.capacity("tg", "p1", "private") == 1
    rl.acquire("tg", "p1", "private")
    assert rl.capacity("tg", "p1", "private") == 0


def test_group_twenty_per_minute_sliding() -> None:
    c = Clock()
    rl = limiter(c)
    for i in range(20):
        c.t = 1000.0 + i  # one a second: a group may burst, but only 20 in any minute
        assert rl.try_acquire("tg", "g1", "group") == 0.0
    assert rl.capacity("tg", "g1", "group") == 0
    # the oldest (t=1000) leaves the window at t=1060
    assert rl.wait("tg", "g1", "group") == pytest.approx(1060.0 - 1019.0)
    c.t = 1059.9
    assert rl.try_acquire("tg", "g1", "group") > 0
    c.t = 1060.0
    assert rl.capacity("tg", "g1", "group") == 1
    assert rl.try_acquire("tg", "g1", "group") == 0.0
    assert rl.wait("tg", "g1", "group") == pytest.approx(1.0)


def test_global_thirty_per_second_per_channel() -> None:
    c = Clock()
    rl = limiter(c)
    for i in range(30):
        assert rl.try_acquire("tg", f"p{i}", "private") == 0.0
    assert rl.channel_capacity("tg") == 0
    assert rl.wait("tg", "fresh", "private") == pytest.approx(1.0)
    # the chat itself is free; only the bot-wide limit holds it
    assert rl.chat_wait("tg", "fresh", "private") == 0.0
    assert rl.capacity("tg", "fresh", "private") == 1
    assert rl.wait("wecom", "fresh", "private") == 0.0
    c.t += 1.0
    assert rl.channel_capacity("tg") == 30


def test_a_channel_may_declare_its_own_rate_a_minute() -> None:
    c = Clock()
    rl = limiter(c, channel_per_minute={"bridge": 3})
    waits = [rl.try_acquire("bridge", f"g{i}", "group") for i in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == pytest.approx(60.0)
    # other channels keep the service's own per-second limit
    assert [rl.try_acquire("tg", f"g{i}", "group") for i in range(4)] == [0.0] * 4


def test_pause_holds_the_whole_channel() -> None:
    c = Clock()
    rl = limiter(c)
    rl.pause("tg", 7.0)
    assert rl.channel_capacity("tg") == 0
    assert rl.wait("tg", "p1", "private") == pytest.approx(7.0)
    assert rl.try_acquire("tg", "g1", "group") == pytest.approx(7.0)
    assert rl.wait("console", "p1", "private") == 0.0
    rl.pause("tg", 2.0)  # a shorter pause never shortens a longer one
    c.t += 6.9
    assert rl.wait("tg", "p1", "private") == pytest.approx(0.1)
    c.t += 0.1
    assert rl.try_acquire("tg", "p1", "private") == 0.0


def test_from_settings_and_fractional_rates() -> None:
    c = Clock()
    s = Settings(_env_file=None, private_per_second=0.5, group_per_minute=2, global_per_second=3)
    rl = RateLimiter.from_settings(s, clock=c)
    rl.acquire("tg", "p", "private")
    assert rl.wait("tg", "p", "private") == pytest.approx(2.0)
    rl.acquire("tg", "g", "group")
    assert rl.capacity("tg", "g", "group") == 1
    rl.acquire("tg", "x", "private")
    assert rl.channel_capacity("tg") == 0
    w = Window.per_second(2.5)
    assert (w.limit, w.period) == (2, pytest.approx(0.8))
    with pytest.raises(ValueError):
        Window(0, 1.0)


def test_idle_windows_are_forgotten() -> None:
    c = Clock()
    rl = limiter(c, global_per_second=100000)
    for i in range(1023):
        rl.acquire("tg", f"p{i}", "private")
    c.t += 5
    rl.acquire("tg", "last", "private")  # the 1024th acquire sweeps
    assert len(rl._chats) == 1
