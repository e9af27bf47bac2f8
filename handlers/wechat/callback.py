"""What WeChat's and WeCom's server callbacks share: the replay window, the body cap, and
messages in hand while their request waits (the platform gives up after 5 seconds and sends
the same message again, up to three times)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from handlers.wechat.signing import BadSignature, Cipher

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
ANSWER_WITHIN = 4.0  # the platforms give up (and retry) after 5 s
KEEP_S = 60.0  # their retries come within about 15 s
FINISH_WITHIN = 10.0  # at shutdown, how long messages in hand may take

Work = Callable[[], Coroutine[Any, Any, None]]


class Refused(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


def check_time(timestamp: str, now: float, window: int) -> None:
    """Refuse a request signed further than `window` seconds from now (0: no check)."""
    if window <= 0:
        return
    try:
        at = int(timestamp)
    except ValueError:
        raise Refused(403, "timestamp is not a number") from None
    if abs(now - at) > window:
        raise Refused(403, "timestamp outside the replay window")


async def read_body(request: web.Request, limit: int = MAX_BODY) -> bytes:
    """The body, refused past `limit` bytes whatever Content-Length claims."""
    if (request.content_length or 0) > limit:
        raise Refused(413, f"body over {limit // 1024} KiB")
    body = bytearray()
    while True:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            raise Refused(413, f"body over {limit // 1024} KiB")


Handler = Callable[[web.Request], Coroutine[Any, Any, web.Response]]


def url_check(cipher: Cipher, window: int, now: Callable[[], float], ok: Callable[[], None],
              label: str) -> Handler:
    """WeCom's URL check (the app's and the smart robot's): msg_signature over the token,
    timestamp, nonce and echostr; the decrypted echostr back."""
    async def verify(request: web.Request) -> web.Response:
        q = request.query
        try:
            check_time(q.get("timestamp", ""), now(), window)
            echo = cipher.decrypt(q.get("echostr", ""), q.get("msg_signature", ""),
                                  q.get("timestamp", ""), q.get("nonce", ""))
        except (Refused, BadSignature) as e:
            log.warning("%s: URL check refused (%s)", label, e)
            return web.Response(status=403, text="forbidden")
        ok()
        return web.Response(text=echo)
    return verify


class InHand:
    """Each message runs once as a task, known by the key the platform's retries share; a
    retry while it runs waits on the same task, and one soon after it finished is answered
    at once. A task that failed is forgotten, so the next retry runs it again."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def run(self, key: str, work: Work, within: float = ANSWER_WITHIN) -> bool:
        """True once the work is done (raises what it raised); False if still running."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.create_task(work(), name=f"{self._name} {key}")
            self._tasks[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        done, _ = await asyncio.wait({task}, timeout=within)
        if not done:
            return False
        task.result()
        return True

    def _finished(self, key: str, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is not None:
            if not task.cancelled():
                log.error("%s: a message could not be handled", self._name,
                          exc_info=task.exception())
            if self._tasks.get(key) is task:
                del self._tasks[key]
            return

        def forget() -> None:
            if self._tasks.get(key) is task:
                del self._tasks[key]
        asyncio.get_running_loop().call_later(KEEP_S, forget)

    async def finish(self, within: float = FINISH_WITHIN) -> None:
        """Let the messages in hand reach the core (at shutdown)."""
        running = [t for t in self._tasks.values() if not t.done()]
        if running:
            await asyncio.wait(running, timeout=within)
