"""The web desk over real HTTP on 127.0.0.1: sign-in links, sessions, CSRF, headers, scope.

The browser tests (tests/test_desk_browser.py) use the same harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookies import SimpleCookie

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.app import App, build_app
from bot.callbacks.draw import Quota
from bot.callbacks.plan import Rules, plan_week
from bot.callbacks.week import Week
from bot.deps import Ctx
from bot.messages import GeoPoint, Media
from bot.notify.texts import use_language
from bot.people.onboarding import create_invite
from bot.tickets.actions import OPS
from bot.tickets.assign import transfer_targets
from config.settings import Settings
from handlers.http import make_web_app, start_site
from handlers.web.desk import Desk
from models.callbacks import CallbackCall, CallbackHousehold
from models.desk import DeskLink
from models.enums import ChatKind, StaffRole
from models.people import Identity, Person
from models.tickets import Ticket, TicketEvent
from tests.conftest import FakeClock
from tests.contract.channels import drain
from tests.fakes.minimal import CHANNEL, MinimalChat, MinimalSender
from tests.procs import free_port
from tests.test_cli_startup import imported, said
from tests.test_cli_startup import run as run_cli

LINK = re.compile(r"http://127\.0\.0\.1:\d+/desk/login\?t=[\w-]+")
NUMBER = re.compile(r"FS-\d{8}-\d{4}")
CSRF = re.compile(r'name="_csrf" value="([^"]+)"')
RESIDENT, COORD_FN, COORD_XC, WORKER = "r1", "c-fn", "c-xc", "w1"


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A real PNG, so the media store's type check takes it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\0" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                                 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@dataclass
class DeskHarness:
    app: App
    sender: MinimalSender
    chat: MinimalChat
    clock: FakeClock
    base: str

    async def join(self, user: str, role: StaffRole, **scope: str) -> None:
        async with self.app.deps.sm() as s, s.begin():
            inv = await create_invite(s, role, grid=scope.get("grid"),
                                      community=scope.get("community"),
                                      now=self.app.deps.clock(), ttl_days=7)
        await self.app.core.on_start(
            Ctx(CHANNEL, user, user, user, ChatKind.PRIVATE, f"join-{user}"), inv.code)
        await drain(self.app, self.clock)

    async def say(self, user: str, text: str, name: str = "", media: list[Media] | None = None,
                  location: GeoPoint | None = None) -> list[str]:
        before = len(self.sender.texts(user))
        ib = self.chat.private(user, text, name=name)
        ib.media = media or []
        ib.location = location
        await self.app.core.on_message(ib)
        await drain(self.app, self.clock)
        return self.sender.texts(user)[before:]

    async def link(self, user: str) -> str:
        said = await self.say(user, "网页")
        m = LINK.search(said[-1]) if said else None
        assert m, said
        return m.group(0)

    async def report(self, text: str, user: str = RESIDENT, media: list[Media] | None = None,
                     location: GeoPoint | None = None) -> str:
        said = await self.say(user, text, name="张大妈", media=media, location=location)
        m = NUMBER.search("\n".join(said))
        assert m, said
        return m.group(0)

    async def unrouted(self, text: str = "信家坡小区路灯不亮") -> str:
        """A report nobody could place: it waits in 府南's queue."""
        said = await self.say(RESIDENT, text, name="张大妈")
        asked = next(x for x in said if "都不是" in x)
        none = re.search(r"^(\d+)\. 都不是$", asked, re.M)
        assert none, said
        await self.say(RESIDENT, none.group(1))
        m = NUMBER.search(asked)
        assert m
        return m.group(0)

    async def ticket_id(self, number: str) -> int:
        async with self.app.deps.sm() as s:
            found = await s.scalar(select(Ticket.id).where(Ticket.number == number))
        assert found is not None
        return found

    async def signed_in(self, link: str) -> aiohttp.ClientSession:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with http.get(link) as r:
            page = await r.text()
        token = link.split("t=", 1)[1]
        async with http.post(f"{self.base}/desk/login",
                             data={"_csrf": csrf_of(page), "t": token}) as r:
            assert r.status == 200 and r.url.path.startswith("/desk/queue/"), await r.text()
        return http


def csrf_of(page: str) -> str:
    m = CSRF.search(page)
    assert m, page[:500]
    return m.group(1)


@contextlib.asynccontextmanager
async def serving(settings: Settings, clock: FakeClock) -> AsyncIterator[DeskHarness]:
    """The service with the desk on, on a free port of 127.0.0.1, over a recording sender."""
    port = free_port()
    settings = settings.model_copy(update={
        "desk_secret_key": SecretStr("a test key, long enough"), "http_host": "127.0.0.1",
        "http_port": port, "desk_base_url": f"http://127.0.0.1:{port}"})
    sender = MinimalSender()
    app = await build_app(settings, {CHANNEL: sender}, clock=clock)
    edge = Desk.from_settings(settings)
    assert edge is not None
    web_app = make_web_app(app)
    edge.mount(web_app, app)
    runner = await start_site(web_app, "127.0.0.1", port)
    try:
        yield DeskHarness(app, sender, MinimalChat(), clock, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
        await app.close()


@pytest.fixture
async def desk(loaded_settings: Settings, clock: FakeClock) -> AsyncIterator[DeskHarness]:
    async with serving(loaded_settings, clock) as h:
        await h.join(COORD_FN, StaffRole.COORDINATOR, community="FN")
        await h.join(COORD_XC, StaffRole.COORDINATOR, community="XC")
        yield h


def test_off_without_a_secret_key(settings: Settings) -> None:
    assert Desk.from_settings(settings) is None


async def test_a_link_signs_in_once_and_sets_a_safe_cookie(desk: DeskHarness) -> None:
    link = await desk.link(COORD_FN)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(link) as r:
            page = await r.text()
        # opening the link (a chat app's preview does) does not use it
        async with http.post(f"{desk.base}/desk/login", allow_redirects=False,
                             data={"_csrf": csrf_of(page), "t": link.split("t=")[1]}) as r:
            assert r.status == 303
            raw = r.headers.getall("Set-Cookie")
        cookie = SimpleCookie()
        cookie.load(raw[-1])
        morsel = cookie["grid_desk"]
        assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/desk"
        assert not morsel["secure"]  # http here; https in DESK_BASE_URL makes it Secure
        async with http.get(f"{desk.base}/desk/queue/unrouted") as r:
            page = await r.text()
            assert r.status == 200, page
            assert "退出" in page, page
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        async with other.get(link) as r:
            page = await r.text()
        async with other.post(f"{desk.base}/desk/login",
                              data={"_csrf": csrf_of(page), "t": link.split("t=")[1]}) as r:
            assert r.status == 403 and "已失效" in await r.text()
    async with desk.app.deps.sm() as s:
        stored = (await s.scalars(select(DeskLink.token_hash))).all()
    assert stored and link.split("t=")[1] not in stored  # only its hash is kept


async def test_an_expired_link_is_refused(desk: DeskHarness) -> None:
    link = await desk.link(COORD_FN)
    desk.clock.advance(minutes=11)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(link) as r:
            page = await r.text()
        async with http.post(f"{desk.base}/desk/login",
                             data={"_csrf": csrf_of(page), "t": link.split("t=")[1]}) as r:
            assert r.status == 403
        async with http.get(f"{desk.base}/desk/queue/open") as r:
            assert r.url.path == "/desk/login"


async def test_links_only_for_desk_staff_privately_and_not_too_many(desk: DeskHarness) -> None:
    assert not LINK.search("\n".join(await desk.say(RESIDENT, "网页")))
    assert "网页工作台供" in (await desk.say(RESIDENT, "网页"))[-1]
    group = desk.chat.group("g1", COORD_FN, "网页")
    await desk.app.core.on_message(group)
    await drain(desk.app, desk.clock)
    assert "私聊" in desk.sender.texts("g1")[-1] and not LINK.search(desk.sender.texts("g1")[-1])
    for _ in range(5):
        await desk.link(COORD_XC)
    assert "太频繁" in (await desk.say(COORD_XC, "/desk"))[-1]


async def test_forms_without_the_csrf_token_are_refused(desk: DeskHarness) -> None:
    number = await desk.unrouted()
    tid = await desk.ticket_id(number)
    http = await desk.signed_in(await desk.link(COORD_FN))
    async with http:
        form = {"op": "assign", "arg": "FN-02", "where": "row"}
        async with http.post(f"{desk.base}/desk/tickets/{tid}/act", data=form) as r:
            assert r.status == 403
        async with http.post(f"{desk.base}/desk/tickets/{tid}/act",
                             data={**form, "_csrf": "forged"}) as r:
            assert r.status == 403
        async with http.post(f"{desk.base}/desk/logout", data={}) as r:
            assert r.status == 403
    async with desk.app.deps.sm() as s:
        assert (await s.get(Ticket, tid)).state == "reported"  # type: ignore[union-attr]


async def test_headers_forbid_framing_and_inline_scripts(desk: DeskHarness) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/desk", "/desk/login", "/desk/queue/open", "/desk/nowhere"):
            async with http.get(f"{desk.base}{path}") as r:
                csp = r.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split(
                    "script-src")[1].split(";")[0]
                assert "frame-ancestors 'none'" in csp
                assert r.headers["X-Frame-Options"] == "DENY"
                assert "<script>" not in await r.text()


async def test_scope_is_decided_on_the_server(desk: DeskHarness) -> None:
    fn = await desk.report("南关农贸市场门口垃圾堆了三天没人清运")
    xc = await desk.report("北环路10号路灯不亮了")
    fn_id, xc_id = await desk.ticket_id(fn), await desk.ticket_id(xc)
    http = await desk.signed_in(await desk.link(COORD_XC))
    async with http:
        async with http.get(f"{desk.base}/desk/queue/open") as r:
            page = await r.text()
        assert xc in page and fn not in page
        # a filter naming another community shows nothing of it
        async with http.get(f"{desk.base}/desk/queue/open?community=FN") as r:
            assert fn not in await r.text()
        async with http.get(f"{desk.base}/desk/tickets/{fn_id}") as r:
            assert r.status == 403 and fn not in await r.text()
        async with http.get(f"{desk.base}/desk/tickets/{xc_id}") as r:
            assert r.status == 200
        async with http.get(f"{desk.base}/desk/map/data") as r:
            numbers = {p["number"] for p in (await r.json())["tickets"]}
        assert fn not in numbers
        page = await (await http.get(f"{desk.base}/desk/queue/open")).text()
        async with http.post(f"{desk.base}/desk/tickets/{fn_id}/act", data={
                "_csrf": csrf_of(page), "op": "transfer_to", "arg": "FN-01"}) as r:
            assert r.status == 403


async def test_signing_out_ends_the_session(desk: DeskHarness) -> None:
    http = await desk.signed_in(await desk.link(COORD_FN))
    async with http:
        page = await (await http.get(f"{desk.base}/desk/queue/open")).text()
        async with http.post(f"{desk.base}/desk/logout", data={"_csrf": csrf_of(page)}) as r:
            assert r.status == 200 and "已退出" in await r.text()
        async with http.get(f"{desk.base}/desk/queue/open") as r:
            assert r.url.path == "/desk/login"


async def test_photos_only_to_staff_who_see_the_ticket(desk: DeskHarness) -> None:
    assert desk.app.deps.media is not None
    stored = desk.app.deps.media.put(png())
    number = await desk.report("南关农贸市场门口垃圾堆了三天没人清运",
                               media=[Media("photo", "f1", stored.sha256)])
    tid = await desk.ticket_id(number)
    url = f"{desk.base}/desk/media/{tid}/{stored.sha256}"
    async with aiohttp.ClientSession() as anon, anon.get(url) as r:
        assert r.url.path == "/desk/login"
    for who, status in ((COORD_FN, 200), (COORD_XC, 403)):
        http = await desk.signed_in(await desk.link(who))
        async with http, http.get(url) as r:
            assert r.status == status
            if status == 200:
                assert await r.read() == png()


@pytest.mark.slow
def test_a_cli_usage_error_imports_nothing_heavy() -> None:
    done = run_cli("desk", "link", flags=("-X", "importtime"))
    assert done.returncode == 2 and "--person" in said(done.stderr)[-1]
    names = imported(done.stderr)
    assert "pydantic" in names and not names & {"aiohttp", "sqlalchemy", "bot", "handlers",
                                                 "jinja2", "aiohttp_session"}


@pytest.mark.slow
async def test_the_cli_prints_a_link_for_the_first_administrator(desk: DeskHarness) -> None:
    await desk.join("boss", StaffRole.CENTRE)
    async with desk.app.deps.sm() as s:
        person = await s.scalar(select(Identity.person_id).where(Identity.user_id == "boss"))
    env = {"DATABASE_URL": desk.app.settings.database_url, "DESK_BASE_URL": desk.base,
           "DESK_SECRET_KEY": "anything"}
    refused = await asyncio.to_thread(run_cli, "desk", "link", "--person", "nobody", **env)
    assert refused.returncode == 1 and "找不到" in refused.stderr and "Traceback" not in \
        refused.stderr
    done = await asyncio.to_thread(run_cli, "desk", "link", "--person", str(person), **env)
    assert done.returncode == 0, done.stderr
    link = LINK.search(done.stdout)
    assert link, done.stdout
    http = await desk.signed_in(link.group(0))
    async with http, http.get(f"{desk.base}/desk/queue/open") as r:
        assert r.status == 200 and "boss" in await r.text()


async def plan_this_week(h: DeskHarness) -> list[CallbackCall]:
    week = Week.of(h.clock().astimezone(h.app.deps.sla.tz).date())
    async with h.app.deps.sm() as s, s.begin():
        planned = await plan_week(s, week, Rules(Quota(3, 5), 12, h.app.deps.sla.tz), h.clock())
    assert planned.calls
    return list(planned.calls)


async def test_phones_only_on_the_centres_call_back_desk(desk: DeskHarness) -> None:
    calls = await plan_this_week(desk)
    async with desk.app.deps.sm() as s:
        phones = set(await s.scalars(select(CallbackHousehold.phone)))
        phones |= {p for p in await s.scalars(select(Person.phone)) if p}
    await desk.join("boss", StaffRole.CENTRE)
    http = await desk.signed_in(await desk.link(COORD_FN))
    async with http:
        async with http.get(f"{desk.base}/desk/callbacks") as r:
            assert r.status == 403
        page = await (await http.get(f"{desk.base}/desk/queue/open")).text()
        async with http.post(f"{desk.base}/desk/callbacks/{calls[0].number}",
                             data={"_csrf": csrf_of(page), "outcome": "unreached"}) as r:
            assert r.status in (403, 404)
        for path in ("/desk/queue/open", "/desk/map/data", "/desk/rates"):
            body = await (await http.get(f"{desk.base}{path}")).text()
            assert not [p for p in phones if p in body], path
    http = await desk.signed_in(await desk.link("boss"))
    async with http, http.get(f"{desk.base}/desk/callbacks") as r:
        body = await r.text()
        assert r.status == 200 and calls[0].number in body
        assert [p for p in phones if f'href="tel:{p}"' in body]


async def test_a_session_ends_after_the_configured_hours(desk: DeskHarness) -> None:
    http = await desk.signed_in(await desk.link(COORD_FN))
    async with http:
        desk.clock.advance(hours=desk.app.settings.desk_session_hours - 0.1)
        async with http.get(f"{desk.base}/desk/queue/open") as r:
            assert r.url.path == "/desk/queue/open"
        desk.clock.advance(hours=0.2)
        async with http.get(f"{desk.base}/desk/queue/open") as r:
            assert r.url.path == "/desk/login"
        async with http.get(f"{desk.base}/desk/queue/open", headers={"HX-Request": "true"},
                            allow_redirects=False) as r:
            assert r.status == 401 and "网页" in await r.text()


async def test_sign_in_attempts_are_limited_per_address(desk: DeskHarness) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        page = await (await http.get(f"{desk.base}/desk/login?t=guess")).text()
        statuses = []
        for i in range(12):
            async with http.post(f"{desk.base}/desk/login",
                                 data={"_csrf": csrf_of(page), "t": f"guess{i}"}) as r:
                statuses.append(r.status)
        assert statuses[:10] == [403] * 10 and statuses[10:] == [429, 429]
        # a good link from the same address waits its turn too
        link = await desk.link(COORD_FN)
        async with http.post(f"{desk.base}/desk/login",
                             data={"_csrf": csrf_of(page), "t": link.split("t=")[1]}) as r:
            assert r.status == 429


async def test_transfer_goes_through_the_core_and_is_a_ticket_event(desk: DeskHarness) -> None:
    number = await desk.report("南关农贸市场门口垃圾堆了三天没人清运")
    tid = await desk.ticket_id(number)
    async with desk.app.deps.sm() as s:
        tk = await s.get(Ticket, tid)
        assert tk is not None
        before, target = tk.grid_id, transfer_targets(desk.app.deps, tk)[0]
        events = await s.scalar(select(func.count()).select_from(TicketEvent).where(
            TicketEvent.ticket_id == tid))
    http = await desk.signed_in(await desk.link(COORD_FN))
    async with http:
        page = await (await http.get(f"{desk.base}/desk/tickets/{tid}")).text()
        assert f'value="{target}"' in page
        async with http.post(f"{desk.base}/desk/tickets/{tid}/act", data={
                "_csrf": csrf_of(page), "op": "transfer_to", "arg": target,
                "nonce": "n1"}) as r:
            answer = await r.text()
        assert r.status == 200 and 'class="done"' in answer, answer
        # the same form sent twice (a double click) acts once
        async with http.post(f"{desk.base}/desk/tickets/{tid}/act", data={
                "_csrf": csrf_of(page), "op": "transfer_to", "arg": target,
                "nonce": "n1"}) as r:
            assert r.status == 200
    async with desk.app.deps.sm() as s:
        tk = await s.get(Ticket, tid)
        assert tk is not None
        assert tk.grid_id != before
        added = (await s.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == tid).order_by(TicketEvent.id).offset(events))).all()
    assert len(added) == 1 and added[0].actor_name == COORD_FN and "→" in added[0].note


async def test_english_by_language(loaded_settings: Settings, clock: FakeClock) -> None:
    english = loaded_settings.model_copy(update={"language": "en"})
    try:
        async with serving(english, clock) as h:
            await h.join("boss", StaffRole.CENTRE)
            said = await h.say("boss", "/desk")
            assert said[-1].startswith("Your desk sign-in link")
            link = LINK.search(said[-1])
            assert link
            async with aiohttp.ClientSession() as http, http.get(link.group(0)) as r:
                page = await r.text()
            assert '<html lang="en">' in page and ">Sign in</button>" in page
    finally:
        use_language("zh")  # the service's language is process-wide


@pytest.mark.skipif("reject" not in OPS, reason="the core has no reject action yet")
async def test_reject_with_a_reason_from_the_queue(desk: DeskHarness) -> None:
    number = await desk.unrouted()
    tid = await desk.ticket_id(number)
    http = await desk.signed_in(await desk.link(COORD_FN))
    async with http:
        page = await (await http.get(f"{desk.base}/desk/queue/unrouted")).text()
        assert 'value="reject"' in page
        async with http.post(f"{desk.base}/desk/tickets/{tid}/act", data={
                "_csrf": csrf_of(page), "op": "reject", "arg": "", "where": "row"}) as r:
            assert r.status == 400  # a reason is required
        async with http.post(f"{desk.base}/desk/tickets/{tid}/act", data={
                "_csrf": csrf_of(page), "op": "reject", "arg": "属于私人纠纷，请走调解",
                "where": "row"}) as r:
            assert r.status == 200 and 'class="done"' in await r.text()
    await drain(desk.app, desk.clock)
    async with desk.app.deps.sm() as s:
        assert (await s.get(Ticket, tid)).state == "rejected"  # type: ignore[union-attr]
    assert any("属于私人纠纷" in x for x in desk.sender.texts(RESIDENT))
