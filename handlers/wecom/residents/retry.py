"""Calls to WeCom retried with backoff while it is unreachable or keeps refusing its token."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from handlers.wechat.api import TOKEN_ERRORS, Unreachable, WeChatError

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Backoff:
    attempts: int = 6
    first: float = 1.0
    most: float = 60.0


PATIENT = Backoff()
TOKEN_TRIES = 3


async def retrying(call: Callable[[], Awaitable[_T]], backoff: Backoff,
                   stop: asyncio.Event | None = None) -> _T:
    """`call` until it answers: WeCom unreachable (network, 5xx, busy) or a token it keeps
    refusing waits longer each time; any other refusal is final. A token still refused after
    TOKEN_TRIES rounds (each with the client's own refresh) is a wrong secret, not a hiccup."""
    token_refusals = 0
    for attempt in range(backoff.attempts):
        try:
            return await call()
        except (Unreachable, WeChatError) as e:
            if isinstance(e, WeChatError):
                token_refusals += 1
                if e.errcode not in TOKEN_ERRORS or token_refusals >= TOKEN_TRIES:
                    raise
            if attempt == backoff.attempts - 1:
                raise
            delay = min(backoff.most, backoff.first * 2 ** attempt) * (0.5 + random.random() / 2)
            log.warning("WeCom %s; retrying in %.1f s", type(e).__name__, delay)
            if stop is None:
                await asyncio.sleep(delay)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                if stop.is_set():
                    raise
    raise AssertionError("unreachable")
