"""One interface over each channel adapter, so the core's stories run on every channel.

People are named by role ("resident", "neighbour", "worker", "worker3", "leader", "coord",
"centre", and "partner": the contact of a partner unit, who joins by that unit's invite);
each adapter maps them to its own ids and chats. `choose` is whatever the channel offers for a
button: a callback on Telegram, `#N` in the console, a numbered reply on the minimal channel.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiogram.methods import AnswerCallbackQuery
from sqlalchemy import func, select

from bot.app import App
from bot.deps import Ctx
from bot.messages import Outbound
from bot.people.onboarding import create_invite
from bot.people.partners import create_partner_invite
from handlers.console import GROUP as CONSOLE_GROUP
from handlers.console import Console, ConsoleSender, ConsoleState
from handlers.http import make_web_app, start_site
from models.enums import ChatKind, OutboxStatus, StaffRole
from models.tickets import Outbox, Ticket
from tests.conftest import FakeClock
from tests.fakes.minimal import CHANNEL as MINIMAL
from tests.fakes.minimal import MinimalChat, MinimalSender
from tests.test_telegram_flow import (
    CENTRE,
    COORD,
    GROUP,
    LEADER,
    NEIGHBOUR,
    RESIDENT,
    WORKER,
    WORKER3,
    Flow,
    invite,
)

RESIDENTS = {"resident": "张大妈", "neighbour": "李大爷"}
STAFF = {
    "worker": (StaffRole.WORKER, "FN-02"), "worker3": (StaffRole.WORKER, "FN-03"),
    "leader": (StaffRole.LEADER, "FN-02"), "coord": (StaffRole.COORDINATOR, "FN"),
    "centre": (StaffRole.CENTRE, ""),
}
# a partner unit's contact: (the unit's code in partners.csv, the contact it lists)
PARTNERS = {"partner": ("WY-HD", "张经理")}


class Channel(Protocol):
    name: str
    app: App

    async def join(self, who: str) -> None: ...
    async def say(self, who: str, text: str) -> None: ...
    async def choose(self, who: str, label: str, about: str) -> None: ...
    def heard(self, who: str) -> list[str]:
        """Messages to the person's chat, and the short answers to their presses (where a
        channel shows those apart from the chat, as Telegram's toasts)."""
        ...

    async def deliver(self) -> None: ...


async def invite_code(app: App, who: str) -> str:
    """A real invite for `who`'s role and scope, as `run_bot.py invite` makes one (for a
    partner's contact: as `run_bot.py invite --partner CODE`)."""
    if who in PARTNERS:
        async with app.deps.sm() as s, s.begin():
            made = await create_partner_invite(s, PARTNERS[who][0], None,
                                               now=app.deps.clock(), ttl_days=7)
        return made.code
    role, scope = STAFF[who]
    async with app.deps.sm() as s, s.begin():
        inv = await create_invite(s, role, grid=scope if "-" in scope else None,
                                  community=None if "-" in scope else scope,
                                  now=app.deps.clock(), ttl_days=7)
    return inv.code


@asynccontextmanager
async def served(app: App, *edges: Any) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    """The app's HTTP port on 127.0.0.1 with the edges' routes mounted, as `serve` mounts
    them, and a client: (base URL, client). On leaving: the client and the server stop, the
    edges finish what they hold, the app closes, then the edges."""
    web_app = make_web_app(app)
    for edge in edges:
        edge.mount(web_app, app)
    runner = await start_site(web_app, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    try:
        yield f"http://{host}:{port}", http
    finally:
        await http.close()
        await runner.cleanup()
        for edge in edges:
            if hasattr(edge, "finish"):
                await edge.finish()
        await app.close()
        for edge in edges:
            await edge.close()


async def drain(app: App, clock: FakeClock) -> None:
    """Send everything queued, moving the fake clock past rate limits and backoffs."""
    for _ in range(100):
        sent = await app.outbox.run_once()
        clock.advance(1.1)
        if sent:
            continue
        async with app.deps.sm() as s:
            due = await s.scalar(select(func.min(Outbox.next_attempt_at)).where(
                Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))
        if due is None:
            return
        clock.now = max(clock.now, due)
    raise AssertionError("the outbox did not drain")


TELEGRAM_IDS = {"resident": RESIDENT, "neighbour": NEIGHBOUR, "worker": WORKER,
                "worker3": WORKER3, "leader": LEADER, "coord": COORD, "centre": CENTRE,
                "partner": 601}


class TelegramChannel:
    """The real Dispatcher over a recording Bot API session."""

    name = "telegram"

    def __init__(self, flow: Flow) -> None:
        self.flow, self.app = flow, flow.tg.app

    def _chat(self, who: str) -> int:
        return GROUP if who in RESIDENTS else TELEGRAM_IDS[who]

    async def join(self, who: str) -> None:
        if who in PARTNERS:
            code = await invite_code(self.app, who)
        else:
            role, scope = STAFF[who]
            code = await invite(self.flow.tg, role, grid=scope if "-" in scope else None,
                                community=None if "-" in scope else scope)
        await self.flow.say(TELEGRAM_IDS[who], f"/start {code}")
        await self.deliver()

    async def say(self, who: str, text: str) -> None:
        await self.flow.say(TELEGRAM_IDS[who], text, chat=self._chat(who))

    async def choose(self, who: str, label: str, about: str) -> None:
        await self.flow.press(TELEGRAM_IDS[who], self._chat(who), label, about)

    def heard(self, who: str) -> list[str]:
        mine = f"-{TELEGRAM_IDS[who]}"
        toasts = [a.text or "" for a in self.flow.bot.requests_of(AnswerCallbackQuery)
                  if a.callback_query_id.endswith(mine)]
        return self.flow.texts(self._chat(who)) + toasts

    async def deliver(self) -> None:
        await self.flow.deliver()


class RecordingConsoleSender(ConsoleSender):
    """The console's own sender, keeping what it printed and which #N each button got."""

    def __init__(self, state: ConsoleState) -> None:
        super().__init__(state, io.StringIO())
        self.sent: list[tuple[Outbound, dict[str, int]]] = []

    async def send(self, msg: Outbound) -> str | None:
        first = self.state.next_button
        mid = await super().send(msg)
        numbers = range(first, self.state.next_button)
        labels = [b.text for row in msg.buttons for b in row if b.action and not b.request_location]
        self.sent.append((msg, dict(zip(labels, numbers, strict=True))))
        return mid


class ConsoleChannel:
    """The console's own classes in process: the lines a person types, the buttons it prints."""

    name = "console"

    def __init__(self, app: App, state: ConsoleState, sender: RecordingConsoleSender,
                 clock: FakeClock) -> None:
        self.app, self.sender, self.clock = app, sender, clock
        self.out = io.StringIO()
        self.console = Console(app, state, self.out)
        self.answers: dict[str, list[str]] = {}

    async def _as(self, who: str) -> None:
        if who in PARTNERS:  # the console has no /as for a unit's contact: a person in private
            if (self.console.st.who.user_id, self.console.st.where) != (
                    self._chat(who), ChatKind.PRIVATE):
                await self.console.handle(f"/as resident {PARTNERS[who][1]}")
                await self.console.handle("/private")
        elif who in RESIDENTS:
            await self.console.handle(f"/as resident {RESIDENTS[who]}")
        else:
            role, scope = STAFF[who]
            await self.console.handle(f"/as {role.value} {scope}")

    def _chat(self, who: str) -> str:
        if who in PARTNERS:
            return f"resident-{PARTNERS[who][1]}"
        if who in RESIDENTS:
            return CONSOLE_GROUP
        role, scope = STAFF[who]
        return f"{role.value}-{scope or 'centre'}"

    async def join(self, who: str) -> None:
        await self._as(who)
        if who in PARTNERS:  # typed in private, as on channels without deep links
            await self.console.handle(await invite_code(self.app, who))
        await self.deliver()

    async def say(self, who: str, text: str) -> None:
        await self._as(who)
        await self.console.handle(text)

    async def choose(self, who: str, label: str, about: str) -> None:
        chat = self._chat(who)
        for msg, buttons in reversed(self.sender.sent):
            if msg.chat_id == chat and about in msg.text and label in buttons:
                await self._as(who)
                mark = len(self.out.getvalue())
                await self.console.handle(f"#{buttons[label]}")
                printed = self.out.getvalue()[mark:].strip()
                self.answers.setdefault(who, []).append(printed.strip("（）"))
                return
        raise AssertionError(f"no button {label!r} shown to {who}: {self.heard(who)}")

    def heard(self, who: str) -> list[str]:
        chat = [m.text for m, _b in self.sender.sent if m.chat_id == self._chat(who)]
        return chat + self.answers.get(who, [])

    async def deliver(self) -> None:
        await drain(self.app, self.clock)


@dataclass
class MinimalChannel:
    """No buttons, no quoting: choices arrive as numbered lines and are answered by number."""

    app: App
    sender: MinimalSender
    clock: FakeClock
    chat: MinimalChat = field(default_factory=MinimalChat)
    name: str = "minimal"
    GROUP_ID = "g-minimal"

    def _chat(self, who: str) -> str:
        return self.GROUP_ID if who in RESIDENTS else who

    async def join(self, who: str) -> None:
        code = await invite_code(self.app, who)
        await self.app.core.on_start(
            Ctx(MINIMAL, who, who, who, ChatKind.PRIVATE, f"join-{who}"), code)
        await self.deliver()

    async def say(self, who: str, text: str) -> None:
        if who in RESIDENTS:
            ib = self.chat.group(self.GROUP_ID, who, text, name=RESIDENTS[who])
        else:
            ib = self.chat.private(who, text, name=who, at=self.clock())
        ib.received_at = self.clock()
        await self.app.core.on_message(ib)

    async def choose(self, who: str, label: str, about: str) -> None:
        chat = self._chat(who)
        for m in reversed(self.sender.sent):
            if m.chat_id != chat:
                continue
            found = re.search(rf"^(\d+)\. {re.escape(label)}$", m.text, re.M)
            if found and about in m.text:
                await self.say(who, found.group(1))
                return
        raise AssertionError(f"no choice {label!r} shown to {who}: {self.heard(who)}")

    def heard(self, who: str) -> list[str]:
        return self.sender.texts(self._chat(who))

    async def deliver(self) -> None:
        await drain(self.app, self.clock)


# ------------------------------------------------------------------ what stories ask of a run

async def tickets(ch: Channel) -> list[Ticket]:
    async with ch.app.deps.sm() as s:
        return list((await s.scalars(select(Ticket).order_by(Ticket.id))).all())


async def told_after(ch: Channel, who: str, step: Awaitable[None]) -> list[str]:
    """What `who` heard because of `step` (and the deliveries it caused)."""
    before = Counter(ch.heard(who))
    await step
    await ch.deliver()
    return list((Counter(ch.heard(who)) - before).elements())


def has(told: list[str], *needles: str) -> bool:
    """Did one of the messages say all of `needles`?"""
    return any(all(n in x for n in needles) for x in told)
