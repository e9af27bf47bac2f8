"""Send-rate limits per chat and per channel, as sliding windows over an injectable clock.

Defaults follow Telegram: 1 msg/s to one private chat, 20 msg/min to one group,
30 msg/s for the whole bot. The limits are per process: several instances each
keep their own windows.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from models.enums import ChatKind

if TYPE_CHECKING:
    from config.settings import Settings

# float timestamps that went through datetime arithmetic may be off by an ulp or so
_EPS = 1e-6
_GC_EVERY = 1024


class Window:
    """At most `limit` events in any `period` seconds (an exact log, so no burst at edges)."""

    __slots__ = ("_hits", "limit", "period")

    def __init__(self, limit: int, period: float) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("limit must be >= 1 and period > 0")
        self.limit = limit
        self.period = period
        self._hits: deque[float] = deque()

    @classmethod
    def per_second(cls, rate: float) -> Window:
        """A window for a possibly fractional rate: 0.5/s -> 1 per 2 s, 2.5/s -> 2 per 0.8 s."""
        if rate <= 0:
            raise ValueError("rate must be > 0")
        limit = max(1, int(rate))
        return cls(limit, limit / rate)

    def _prune(self, now: float) -> None:
        edge = now - self.period + _EPS
        while self._hits and self._hits[0] <= edge:
            self._hits.popleft()

    def capacity(self, now: float) -> int:
        self._prune(now)
        return self.limit - len(self._hits)

    def wait(self, now: float) -> float:
        """Seconds until one more event fits (0.0: now)."""
        if self.capacity(now) > 0:
            return 0.0
        return max(0.0, self._hits[-self.limit] + self.period - now)

    def hit(self, now: float) -> None:
        self._prune(now)
        self._hits.append(now)

    def idle(self, now: float) -> bool:
        self._prune(now)
        return not self._hits


class RateLimiter:
    """Windows per (channel, chat) and per channel, plus a channel-wide pause (flood wait).

    `wait()` / `capacity()` only look; `acquire()` / `try_acquire()` consume.
    """

    def __init__(
        self,
        *,
        private_per_second: float = 1.0,
        group_per_minute: int = 20,
        global_per_second: int = 30,
        channel_per_minute: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._private_rate = private_per_second
        self._channel_per_minute = dict(channel_per_minute or {})
        self._group_limit = group_per_minute
        self._global_rate = global_per_second
        self._clock = clock
        self._chats: dict[tuple[str, str], Window] = {}
        self._channels: dict[str, Window] = {}
        self._paused_until: dict[str, float] = {}
        self._acquired = 0

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], float] = time.monotonic,
        channel_per_minute: Mapping[str, int] | None = None,
    ) -> RateLimiter:
        return cls(
            private_per_second=settings.private_per_second,
            group_per_minute=settings.group_per_minute,
            global_per_second=settings.global_per_second,
            channel_per_minute=channel_per_minute,
            clock=clock,
        )

    def now(self) -> float:
        return self._clock()

    def _chat(self, channel: str, chat_id: str, kind: str) -> Window:
        key = (channel, chat_id)
        w = self._chats.get(key)
        if w is None:
            if kind == ChatKind.GROUP:
                w = Window(self._group_limit, 60.0)
            else:
                w = Window.per_second(self._private_rate)
            self._chats[key] = w
        return w

    def _channel(self, channel: str) -> Window:
        w = self._channels.get(channel)
        if w is None:
            per_minute = self._channel_per_minute.get(channel)
            w = self._channels[channel] = (Window(per_minute, 60.0) if per_minute
                                           else Window.per_second(self._global_rate))
        return w

    def pause(self, channel: str, seconds: float) -> None:
        """Send nothing on `channel` for `seconds` (the platform asked us to back off)."""
        until = self._clock() + seconds
        self._paused_until[channel] = max(until, self._paused_until.get(channel, until))

    def channel_wait(self, channel: str) -> float:
        now = self._clock()
        paused = self._paused_until.get(channel, 0.0) - now
        return max(0.0, paused, self._channel(channel).wait(now))

    def channel_capacity(self, channel: str) -> int:
        now = self._clock()
        if self._paused_until.get(channel, 0.0) > now:
            return 0
        return self._channel(channel).capacity(now)

    def chat_wait(self, channel: str, chat_id: str, kind: str) -> float:
        return self._chat(channel, chat_id, kind).wait(self._clock())

    def capacity(self, channel: str, chat_id: str, kind: str) -> int:
        """How many messages this chat may get right now by its own limit (global not counted)."""
        return self._chat(channel, chat_id, kind).capacity(self._clock())

    def wait(self, channel: str, chat_id: str, kind: str) -> float:
        """Seconds until one message may go to this chat, counting every limit; consumes nothing."""
        return max(self.chat_wait(channel, chat_id, kind), self.channel_wait(channel))

    def next_at(self, channel: str, chat_id: str, kind: str) -> float:
        """The clock time at which this chat may get its next message."""
        return self._clock() + self.wait(channel, chat_id, kind)

    def acquire(self, channel: str, chat_id: str, kind: str) -> None:
        """Record one message sent now, whether or not a limit allowed it."""
        now = self._clock()
        self._chat(channel, chat_id, kind).hit(now)
        self._channel(channel).hit(now)
        self._acquired += 1
        if self._acquired % _GC_EVERY == 0:
            self._gc(now)

    def try_acquire(self, channel: str, chat_id: str, kind: str) -> float:
        """Consume a slot if one is free and return 0.0; else return the wait, consuming nothing."""
        wait = self.wait(channel, chat_id, kind)
        if wait <= 0:
            self.acquire(channel, chat_id, kind)
        return wait

    def _gc(self, now: float) -> None:
        # one window per chat ever seen would grow without bound
        for key in [k for k, w in self._chats.items() if w.idle(now)]:
            del self._chats[key]
        for ch in [c for c, t in self._paused_until.items() if t <= now]:
            del self._paused_until[ch]


class Strikes:
    """Failures per key (a person, a chat) in a sliding window; a key at the limit waits.

    Per process, like the send limits: with several instances a guesser gets the limit on
    each, still a handful of guesses an hour against a 10-character code.
    """

    def __init__(self, limit: int = 5, period: float = 600.0) -> None:
        self._limit, self._period = limit, period
        self._windows: dict[str, Window] = {}

    def wait(self, keys: list[str], now: float) -> float:
        """Seconds until every key may try again (0.0: now)."""
        return max((w.wait(now) for k in keys if (w := self._windows.get(k))), default=0.0)

    def strike(self, keys: list[str], now: float) -> None:
        for k in keys:
            self._windows.setdefault(k, Window(self._limit, self._period)).hit(now)
