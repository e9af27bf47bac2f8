"""How each channel's intake is doing, for /healthz. Platform-neutral: the edge reports to it.

A channel is registered by whatever receives its messages (the Telegram poller, a webhook
handler) and told of every success. One that expects to succeed regularly (long polling
returns at least every polling timeout) has `stale_after`; past that without a success it
is stuck and /healthz answers 503, so a supervisor notices intake that stopped silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]


@dataclass
class ChannelHealth:
    name: str
    mode: str
    # what one success is, for the report ("no successful poll for 40 seconds")
    success: str
    stale_after: float | None
    clock: Clock
    since: float
    last_ok: float | None = None
    last_error: str | None = None
    skipped: int = 0

    def ok(self) -> None:
        self.last_ok = self.clock()
        self.last_error = None

    def failed(self, what: str) -> None:
        self.last_error = what

    def skip(self) -> None:
        """One incoming update was given up on (unparseable, or its handler failed)."""
        self.skipped += 1

    def quiet_for(self) -> float:
        """Seconds since the last success (or since registration, before the first)."""
        return max(0.0, self.clock() - (self.since if self.last_ok is None else self.last_ok))

    def problem(self) -> str | None:
        quiet = self.quiet_for()
        if self.stale_after is None or quiet <= self.stale_after:
            return None
        return f"no successful {self.success} for {int(quiet)} seconds"

    def report(self) -> dict[str, Any]:
        problem = self.problem()
        quiet = round(self.quiet_for(), 1)
        out: dict[str, Any] = {
            "mode": self.mode,
            "ok": problem is None,
            f"seconds_since_{self.success}": None if self.last_ok is None else quiet,
            "skipped_updates": self.skipped,
        }
        if self.last_ok is None:
            out["seconds_since_start"] = quiet
        if self.stale_after is not None:
            out["stale_after_seconds"] = self.stale_after
        if self.last_error:
            out["last_error"] = self.last_error
        if problem:
            out["problem"] = problem
        return out


@dataclass
class Health:
    """The registry App holds: one entry per channel that receives messages in this process."""

    clock: Clock = time.monotonic
    channels: dict[str, ChannelHealth] = field(default_factory=dict)

    def channel(self, name: str, mode: str, *, success: str = "update",
                stale_after: float | None = None) -> ChannelHealth:
        ch = ChannelHealth(name, mode, success, stale_after, self.clock, self.clock())
        self.channels[name] = ch
        return ch

    def problems(self) -> list[str]:
        return [f"{name}: {p}" for name, ch in self.channels.items() if (p := ch.problem())]

    def report(self) -> dict[str, dict[str, Any]]:
        return {name: ch.report() for name, ch in self.channels.items()}
