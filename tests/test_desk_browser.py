"""The desk in a real browser: Playwright (PyPI) driving the distribution's Chromium.

Screenshots go to test-output/desk/ (one per step, named by test). Chromium and a CJK font
come from the system's packages (.ci/run installs them): `playwright install` cannot
download here.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, FilePayload, Page, async_playwright
from sqlalchemy import func, select

from bot.county.store import county_version
from bot.messages import GeoPoint, Media
from bot.reports.period import Period
from bot.reports.table import build_report, rate_columns
from models.callbacks import CallbackCall
from models.county import Boundary
from models.enums import OPEN_STATES, StaffRole
from models.tickets import Ticket, TicketEvent
from tests.contract.channels import drain
from tests.test_desk import COORD_FN, COORD_XC, RESIDENT, DeskHarness, plan_this_week, png

# the harness fixture, shared with the HTTP tests
from tests.test_desk import desk as desk
from tests.test_desk_coreports import co_reported
from tests.test_desk_county import PHONE, sample_files, zipped

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "test-output" / "desk"


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium. Outside CI a machine without it skips; in CI (CI=true, where .ci/run
    installs it) that is a failure, as for PostgreSQL (tests/pg.py)."""
    if not CHROMIUM.exists():
        why = "Chromium is missing: apt-get install -y chromium fonts-noto-cjk"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(chromium))
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A 1366×768 office screen; fails the test on any CSP violation or script error."""
    context = await browser.new_context(viewport={"width": 1366, "height": 768},
                                        locale="zh-CN")
    p = await context.new_page()
    problems: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error" and "401" not in msg.text and "403" not in msg.text:
            problems.append(msg.text)

    p.on("console", on_console)
    p.on("pageerror", lambda e: problems.append(str(e)))
    p.shots = ShotTaker(p, request.node.name)  # type: ignore[attr-defined]
    yield p
    await context.close()
    assert not problems, problems


class ShotTaker:
    def __init__(self, page: Page, test: str) -> None:
        self.page, self.test = page, re.sub(r"\W+", "_", test)
        SHOTS.mkdir(parents=True, exist_ok=True)

    async def __call__(self, step: str) -> None:
        await self.page.screenshot(path=str(SHOTS / f"{self.test}-{step}.png"), full_page=True)


async def shot(page: Page, step: str) -> None:
    await page.shots(step)  # type: ignore[attr-defined]


async def sign_in(page: Page, link: str) -> None:
    await page.goto(link)
    await page.click("#signin")
    await page.wait_for_url(re.compile(r"/desk/queue/"))


async def test_sign_in_with_a_link(desk: DeskHarness, page: Page) -> None:
    link = await desk.link(COORD_FN)
    await page.goto(link)
    await shot(page, "1-link")
    await page.click("#signin")
    await page.wait_for_url(re.compile(r"/desk/queue/unrouted"))
    assert await page.inner_text("header .who span") == COORD_FN
    await shot(page, "2-queue")


async def test_a_used_or_expired_link_is_refused(desk: DeskHarness, page: Page,
                                                 browser: Browser) -> None:
    link = await desk.link(COORD_FN)
    await sign_in(page, link)
    other = await (await browser.new_context()).new_page()
    await other.goto(link)
    await other.click("#signin")
    assert "已失效" in await other.inner_text("main")
    await other.screenshot(path=str(SHOTS / "used_link.png"))
    late = await desk.link(COORD_XC)
    desk.clock.advance(minutes=11)
    await other.goto(late)
    await other.click("#signin")
    assert "已失效" in await other.inner_text("main")
    await other.goto(f"{desk.base}/desk/queue/open")
    assert other.url.endswith("/desk/login")
    await other.context.close()


async def test_a_coordinators_queue_shows_only_their_community(desk: DeskHarness,
                                                               page: Page) -> None:
    fn = await desk.report("南关农贸市场门口垃圾堆了三天没人清运")
    xc = await desk.report("北环路10号路灯不亮了")
    await sign_in(page, await desk.link(COORD_XC))
    await page.goto(f"{desk.base}/desk/queue/open")
    numbers = await page.locator("#rows tr td:first-child a").all_inner_texts()
    assert numbers == [xc], numbers
    assert fn not in await page.content()
    await shot(page, "xc-open")


async def test_assign_from_the_queue_and_the_resident_is_told(desk: DeskHarness,
                                                             page: Page) -> None:
    number = await desk.unrouted()
    await sign_in(page, await desk.link(COORD_FN))
    await page.evaluate("window.stillHere = true")  # gone if the page reloads
    row = page.locator("#rows tr", has_text=number)
    await row.locator("select[name=arg]").first.select_option("FN-02")
    await shot(page, "1-before")
    await row.locator("button.assign").click()
    await page.locator("#rows tr.done", has_text=number).wait_for()
    assert "已办理" in await page.locator("#rows tr.done").inner_text()
    assert await page.evaluate("window.stillHere") is True
    await shot(page, "2-assigned")
    await drain(desk.app, desk.clock)
    assert any(f"工单 {number} 已派给南关网格员" in x for x in desk.sender.texts(RESIDENT)), \
        desk.sender.texts(RESIDENT)


async def test_the_ticket_page_shows_photos_and_the_timeline(desk: DeskHarness,
                                                             page: Page) -> None:
    assert desk.app.deps.media is not None
    stored = desk.app.deps.media.put(png(64, 48))
    number = await desk.report("南关农贸市场门口垃圾堆了三天没人清运",
                               media=[Media("photo", "p1", stored.sha256)])
    tid = await desk.ticket_id(number)
    await sign_in(page, await desk.link(COORD_FN))
    await page.goto(f"{desk.base}/desk/queue/open")
    await page.click(f"text={number}")
    await page.wait_for_url(f"**/desk/tickets/{tid}")
    img = page.locator(".photos img")
    await img.wait_for()
    assert await img.evaluate("i => i.complete && i.naturalWidth") == 64
    assert await page.inner_text(".reporter") == "张大妈"
    steps = await page.locator(".timeline li").all_inner_texts()
    assert any("已派单" in s for s in steps), steps
    async with desk.app.deps.sm() as s:
        events = await s.scalar(select(func.count()).select_from(TicketEvent).where(
            TicketEvent.ticket_id == tid))
    assert len(steps) == events
    # its place: the boundary of the grid it went to (南关), no point (none was shared)
    await page.locator("#map.ready").wait_for()
    assert await page.locator("#map path.leaflet-interactive").count() == 1
    assert await page.locator("#map path.ticket").count() == 0
    await shot(page, "ticket")


async def test_the_map_draws_boundaries_and_points(desk: DeskHarness, page: Page) -> None:
    await desk.report("南关农贸市场门口垃圾堆了三天没人清运",
                      location=GeoPoint(35.968, 111.842, "wgs84"))
    await desk.report("北环路10号路灯不亮了", user="r2",
                      location=GeoPoint(35.985, 111.836, "wgs84"))
    async with desk.app.deps.sm() as s:
        boundaries = await s.scalar(select(func.count()).select_from(Boundary).where(
            Boundary.active.is_(True)))
        points = await s.scalar(select(func.count()).select_from(Ticket).where(
            Ticket.state.in_(list(OPEN_STATES)), Ticket.lat.is_not(None)))
    assert boundaries and points == 2
    await desk.join("boss", StaffRole.CENTRE)
    await sign_in(page, await desk.link("boss"))
    await page.goto(f"{desk.base}/desk/map")
    await page.locator("#map.ready").wait_for()
    drawn_points = await page.locator("#map path.ticket").count()
    drawn_grids = await page.locator("#map path.leaflet-interactive:not(.ticket)").count()
    assert drawn_points == points
    assert drawn_grids == boundaries
    await shot(page, "map")


async def test_the_rates_page_draws_the_reports_figures(desk: DeskHarness,
                                                        page: Page) -> None:
    number = await desk.report("南关农贸市场门口垃圾堆了三天没人清运")
    desk.clock.advance(hours=30)  # past the deadline to acknowledge: counted as late
    await sign_in(page, await desk.link(COORD_FN))
    await page.goto(f"{desk.base}/desk/rates?from=2026-03-01&to=2026-03-31&by=community")
    await page.locator("body.weeks-ready").wait_for()
    shown = await page.evaluate("""() => {
        const o = echarts.getInstanceByDom(document.getElementById('bars')).getOption();
        return {names: o.xAxis[0].data, series: o.series.map(s => [s.name, s.data])};
    }""")
    period = Period(date(2026, 3, 1), date(2026, 3, 31), desk.app.deps.sla.tz)
    async with desk.app.engine.connect() as conn:
        report = await conn.run_sync(
            lambda c: build_report(c, period, desk.app.deps.clock(), "community"))
    table = report.tables["community"]
    assert shown["names"] == table.names
    for name, data in shown["series"]:
        col = table.headers.index(name)
        expected = [None if r[col] is None else round(float(r[col]) * 1000) / 10  # type: ignore[arg-type]
                    for r in table.rows[:-1]]
        assert data == expected, (name, data, expected)
    assert [n for n, _ in shown["series"]] == [c.header for c in rate_columns()]
    assert any(d is not None for _, data in shown["series"] for d in data), number
    assert await page.locator("#bars canvas").count() >= 1
    await shot(page, "rates")


async def test_a_script_bearing_report_renders_as_text(desk: DeskHarness, page: Page) -> None:
    evil = ('南关农贸市场门口垃圾<script>window.pwned=1</script>'
            '<img src=x onerror="window.pwned=2">没人清运')
    number = await desk.report(evil)
    await sign_in(page, await desk.link(COORD_FN))
    await page.goto(f"{desk.base}/desk/tickets/{await desk.ticket_id(number)}")
    shown = await page.inner_text(".report")
    assert "<script>window.pwned=1</script>" in shown and "onerror" in shown
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("main img").count() == 0
    await shot(page, "escaped")


async def test_the_call_back_form_records_a_result(desk: DeskHarness, page: Page) -> None:
    calls = await plan_this_week(desk)
    await desk.join("boss", StaffRole.CENTRE)
    await sign_in(page, await desk.link("boss"))
    await page.click("text=电话回访")
    first, second = calls[0].number, calls[1].number
    row = page.locator(f"#cb-{first}")
    assert (await row.locator("a.tel").get_attribute("href") or "").startswith("tel:")
    await row.locator("select[name=community]").select_option("satisfied")
    await row.locator("select[name=worker]").select_option("fairly")
    await row.locator("input[name=note]").fill("路灯已修好")
    await shot(page, "1-form")
    await row.locator("button.record").click()
    await row.locator(".done").wait_for()
    await page.locator(f"#cb-{second} button.unreached").click()
    await page.locator(f"#cb-{second} .done").wait_for()
    await shot(page, "2-recorded")
    async with desk.app.deps.sm() as s:
        got = {c.number: c for c in await s.scalars(select(CallbackCall).where(
            CallbackCall.number.in_([first, second])))}
    assert (got[first].outcome, got[first].community_rating, got[first].worker_rating,
            got[first].committee_rating, got[first].note) == (
        "reached", "satisfied", "fairly", "", "路灯已修好")
    assert got[first].recorded_by == "boss"
    assert got[second].outcome == "unreached"
    await page.reload()
    assert "已登记" in await page.locator(f"#cb-{first}").inner_text()


async def test_a_leader_on_a_phone_sees_their_grid(desk: DeskHarness, browser: Browser) -> None:
    mine = await desk.report("南关农贸市场门口垃圾堆了三天没人清运")
    other = await desk.report("北环路10号路灯不亮了", user="r2")
    await desk.join("leader", StaffRole.LEADER, grid="FN-02")
    context = await browser.new_context(viewport={"width": 390, "height": 844},
                                        is_mobile=True, has_touch=True, locale="zh-CN")
    phone = await context.new_page()
    try:
        await sign_in(phone, await desk.link("leader"))
        await phone.goto(f"{desk.base}/desk/queue/open")
        numbers = await phone.locator("#rows tr td:first-child a").all_inner_texts()
        assert numbers == [mine] and other not in await phone.content()
        overflow = await phone.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, overflow
        await phone.screenshot(path=str(SHOTS / "leader_phone.png"), full_page=True)
    finally:
        await context.close()


async def test_a_coordinator_looks_through_their_community(desk: DeskHarness,
                                                           page: Page) -> None:
    await desk.report("南关农贸市场门口垃圾堆了三天没人清运")
    await sign_in(page, await desk.link(COORD_FN))
    await page.click("header nav >> text=辖区")
    await page.wait_for_url("**/desk/county/grids")
    ids = await page.locator("table.grids tbody tr").evaluate_all("rs => rs.map(r => r.id)")
    assert ids == [f"grid-FN-0{i}" for i in range(1, 7)], ids
    assert await page.inner_text("#grid-FN-02 td.open") == "1"
    assert await page.inner_text("#grid-FN-02 td.leader") == "谢娟"
    assert await page.locator(".tabs a[href='/desk/county/upload']").count() == 0
    await shot(page, "1-grids")
    await page.click(".tabs >> text=人员")
    await page.wait_for_url("**/desk/county/staff")
    assert "罗琴" in await page.inner_text("table.staff")
    assert not PHONE.findall(await page.content())
    await shot(page, "2-staff")
    await page.click(".tabs >> text=地名")
    await page.fill("input[name=q]", "南关")
    await page.click("form.filters button")
    await page.wait_for_url(re.compile(r"q=%E5%8D%97%E5%85%B3"))
    names = await page.locator("table.places tbody td:first-child").all_inner_texts()
    assert "南关农贸市场" in names and all("南关" in n for n in names), names
    await shot(page, "3-places")


async def test_the_centre_imports_a_county_zip_after_checking_it(desk: DeskHarness,
                                                                page: Page) -> None:
    await desk.join("boss", StaffRole.CENTRE)
    await sign_in(page, await desk.link("boss"))
    await page.goto(f"{desk.base}/desk/county/grids")
    await page.click(".tabs >> text=导入辖区数据")
    broken = sample_files(**{"places.csv": "grid,place\nNOPE-1,无名路\n"})
    await page.set_input_files("input[name=file]", files=[FilePayload(
        name="county.zip", mimeType="application/zip", buffer=zipped(broken))])
    await page.click("#check-upload")
    await page.locator("table.problems").wait_for()
    assert await page.locator("#confirm-import").count() == 0
    await shot(page, "1-refused")
    files = sample_files()
    files["grids.yaml"] = files["grids.yaml"].replace("name: 南关\n", "name: 南关新区\n", 1)
    await page.set_input_files("input[name=file]", files=[FilePayload(
        name="county.zip", mimeType="application/zip", buffer=zipped(files))])
    await page.click("#check-upload")
    await page.locator("#confirm-import").wait_for()
    assert await page.inner_text("#diff-grids td.changed") == "1"
    assert await page.inner_text("#diff-places td.added") == "0"
    await shot(page, "2-preview")
    async with desk.app.deps.sm() as s:
        before = await county_version(s)
    await page.click("#confirm-import")
    await page.locator(".up-done").wait_for()
    assert f"第 {before + 1} 版" in await page.inner_text(".up-done")
    await shot(page, "3-imported")
    assert desk.app.deps.county.index.grids["FN-02"].name == "南关新区"
    await page.click(".tabs >> text=网格")
    assert "南关新区" in await page.inner_text("#grid-FN-02")


async def test_a_co_report_is_split_off_from_the_tickets_page(desk: DeskHarness,
                                                             page: Page) -> None:
    lead, child = await co_reported(desk)
    await sign_in(page, await desk.link(COORD_FN))
    await page.click(".tabs >> text=附议")
    await page.wait_for_url("**/desk/queue/coreports")
    assert await page.inner_text(f"#row-{lead.id} .followers") == "1 人附议"
    await shot(page, "0-queue")
    await page.click(f"text={lead.number}")
    await page.wait_for_url(f"**/desk/tickets/{lead.id}")
    await page.evaluate("window.stillHere = true")  # gone if the page reloads
    row = page.locator(f"#co-{child.id}")
    assert await row.locator(".reporter").inner_text() == "李大爷"
    assert not PHONE.findall(await page.content())
    await shot(page, "1-co-report")
    await row.locator("button.split").click()
    await page.locator("#coreports.done").wait_for()
    assert await page.locator(f"#co-{child.id}").count() == 0
    assert f"已拆分：工单 {child.number} 单独办理" in await page.inner_text("#coreports .answer")
    assert await page.evaluate("window.stillHere") is True
    await shot(page, "2-split")
    async with desk.app.deps.sm() as s:
        split = await s.get(Ticket, child.id)
    assert split is not None and split.merged_into_id is None and split.state in OPEN_STATES
    await page.goto(f"{desk.base}/desk/queue/coreports")
    assert await page.locator(f"#row-{lead.id}").count() == 0
