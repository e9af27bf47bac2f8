"""The desk's county pages and county upload, over real HTTP on 127.0.0.1 (tests/test_desk.py's
harness): scope per role, no phones, the upload's guards, preview, and confirm."""

from __future__ import annotations

import html
import io
import re
import zipfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.county.files import CountyFileError, load_county_dir
from bot.county.store import county_version
from bot.messages import GeoPoint
from bot.routing.datum import wgs84_to_gcj02
from config.settings import SAMPLE_DIR, Settings
from models.county import Boundary, Grid, Place
from models.enums import StaffRole
from models.people import Person
from models.tickets import Ticket, TicketEvent
from tests.conftest import FakeClock
from tests.contract.channels import drain
from tests.test_desk import COORD_FN, COORD_XC, RESIDENT, DeskHarness, csrf_of, serving

# the harness fixture, shared with the HTTP tests
from tests.test_desk import desk as desk

PHONE = re.compile(r"1[3-9]\d{9}")
SAMPLE = Path(SAMPLE_DIR)


def sample_files(**changed: str) -> dict[str, str]:
    files = {p.name: p.read_text(encoding="utf-8") for p in SAMPLE.iterdir()
             if p.name != "README.md"}
    return {**files, **changed}


def zipped(files: Mapping[str, str | bytes], folder: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in files.items():
            zf.writestr(folder + name, body)
    return buf.getvalue()


async def page_of(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as r:
        return r.status, await r.text()


async def upload(h: DeskHarness, http: aiohttp.ClientSession, data: bytes,
                 csrf: str | None = None) -> tuple[int, str]:
    if csrf is None:
        csrf = csrf_of((await page_of(http, f"{h.base}/desk/queue/open"))[1])
    form = aiohttp.FormData()
    form.add_field("_csrf", csrf)
    form.add_field("file", data, filename="county.zip", content_type="application/zip")
    async with http.post(f"{h.base}/desk/county/upload", data=form) as r:
        return r.status, await r.text()


@pytest.fixture
async def boss(desk: DeskHarness) -> AsyncIterator[aiohttp.ClientSession]:
    await desk.join("boss", StaffRole.CENTRE)
    http = await desk.signed_in(await desk.link("boss"))
    async with http:
        yield http


async def test_each_role_sees_its_own_part_of_the_county(desk: DeskHarness) -> None:
    await desk.report("北环路10号路灯不亮了")  # XC-01
    await desk.join("leader", StaffRole.LEADER, grid="FN-02")
    xc = await desk.signed_in(await desk.link(COORD_XC))
    async with xc:
        status, grids = await page_of(xc, f"{desk.base}/desk/county/grids")
        assert status == 200 and "辖区" in grids
        assert 'id="grid-XC-01"' in grids and 'id="grid-FN-01"' not in grids
        row = grids.split('id="grid-XC-01"')[1].split("</tr>")[0]
        assert "王建军、李秀英" in row and "张志刚" in row  # workers, leader
        assert re.search(r'class="open"><a [^>]*>1</a>', row), row  # the open ticket
        _, comms = await page_of(xc, f"{desk.base}/desk/county/communities")
        assert "西城" in comms and "府南" not in comms
        _, people = await page_of(xc, f"{desk.base}/desk/county/staff")
        assert "王建军" in people and "罗琴" not in people and COORD_XC in people
        assert "社区工作人员（西城）" in people
        _, places = await page_of(xc, f"{desk.base}/desk/county/places")
        assert "西关小区" in places and "南关农贸市场" not in places
        # another community's grid, asked for by name, shows nothing of it
        _, other = await page_of(xc, f"{desk.base}/desk/county/places?grid=FN-02")
        assert "南关农贸市场" not in other and "这里没有内容" in other
    leader = await desk.signed_in(await desk.link("leader"))
    async with leader:
        _, grids = await page_of(leader, f"{desk.base}/desk/county/grids")
        assert re.findall(r'id="grid-([\w-]+)"', grids) == ["FN-02"]
        _, people = await page_of(leader, f"{desk.base}/desk/county/staff")
        assert "郑波" in people and "罗琴" not in people
        _, places = await page_of(leader, f"{desk.base}/desk/county/places")
        assert "南关农贸市场" in places and "西关小区" not in places
    async with desk.app.deps.sm() as s:
        grid_count = await s.scalar(select(func.count()).select_from(Grid).where(
            Grid.active.is_(True)))
    await desk.join("boss", StaffRole.CENTRE)
    boss = await desk.signed_in(await desk.link("boss"))
    async with boss:
        _, grids = await page_of(boss, f"{desk.base}/desk/county/grids")
        assert f"共 {grid_count} 条" in grids


async def test_no_page_of_the_county_shows_a_phone(desk: DeskHarness,
                                                   boss: aiohttp.ClientSession) -> None:
    for path in ("communities", "grids", "staff", "places", "staff?page=2"):
        status, body = await page_of(boss, f"{desk.base}/desk/county/{path}")
        assert status == 200
        assert not PHONE.findall(body), (path, PHONE.findall(body))
    _, people = await page_of(boss, f"{desk.base}/desk/county/staff")
    # a bound account shows its channel; someone known only from the county files has none
    row = people.split(f"<td>{COORD_FN}</td>")[1].split("</tr>")[0]
    assert "minimal" in row
    assert "未绑定" in people


async def test_long_lists_come_a_page_at_a_time(desk: DeskHarness,
                                                boss: aiohttp.ClientSession) -> None:
    async with desk.app.deps.sm() as s:
        total = await s.scalar(select(func.count()).select_from(Place).where(
            Place.active.is_(True)))
    assert total and total > 50
    _, first = await page_of(boss, f"{desk.base}/desk/county/places")
    pages = -(-total // 50)
    assert f"第 1 / {pages} 页，共 {total} 条" in first and 'rel="next"' in first
    _, last = await page_of(boss, f"{desk.base}/desk/county/places?page={pages}")
    assert len(re.findall(r"<tr><td>", last)) == total - 50 * (pages - 1)
    assert 'rel="next"' not in last and 'rel="prev"' in last
    _, beyond = await page_of(boss, f"{desk.base}/desk/county/places?page=99999999")
    assert f"第 {pages} / {pages} 页" in beyond
    _, found = await page_of(boss, f"{desk.base}/desk/county/places?q=农贸")
    assert "南关农贸市场" in found and "共 1 条" in found


async def test_only_the_centre_may_upload(desk: DeskHarness) -> None:
    http = await desk.signed_in(await desk.link(COORD_FN))
    async with http:
        status, _ = await page_of(http, f"{desk.base}/desk/county/upload")
        assert status == 403
        _, grids = await page_of(http, f"{desk.base}/desk/county/grids")
        assert "/desk/county/upload" not in grids
        status, _ = await upload(desk, http, zipped(sample_files()))
        assert status == 403
        async with http.post(f"{desk.base}/desk/county/upload/abcdefghijkl",
                             data={"_csrf": csrf_of(grids)}) as r:
            assert r.status == 403


async def test_refused_zips_change_nothing(desk: DeskHarness,
                                           boss: aiohttp.ClientSession) -> None:
    good = sample_files()
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in good.items():
            zf.writestr(name, body)
        zf.writestr("places.xlsx", b"\0" * (60 * 1024 * 1024))
    cases = {
        "不是有效的 zip": b"PK not really a zip",
        "路径不安全": zipped({**good, "../grids.yaml": good["grids.yaml"]}),
        "路径不安全，": zipped({"/etc/grids.yaml": good["grids.yaml"]}),
        "不认识的文件：run.sh": zipped({**good, "run.sh": "rm -rf /"}),
        "没有 grids.yaml": zipped({"places.csv": good["places.csv"]}),
        "解压后太大": bomb.getvalue(),
        "不能超过 5 MB": b"PK" + b"\0" * (5 * 1024 * 1024 + 10),
        "文件太多": zipped({f"f{i}/x": "" for i in range(25)}),
    }
    async with desk.app.deps.sm() as s:
        before = await county_version(s)
    for words, data in cases.items():
        status, body = await upload(desk, boss, data)
        assert status == 200 and words in html.unescape(body), (words, body[-800:])
        assert "确认导入" not in body
    status, _ = await upload(desk, boss, zipped(good), csrf="forged")
    assert status == 403
    async with desk.app.deps.sm() as s:
        assert await county_version(s) == before


async def test_bad_files_are_refused_with_the_imports_own_words(
        desk: DeskHarness, boss: aiohttp.ClientSession, tmp_path: Path) -> None:
    broken = sample_files(**{"places.csv": sample_files()["places.csv"]
                             + "NOPE-9,无名路,,街道,1-9\n"})
    for name, body in broken.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
    with pytest.raises(CountyFileError) as e:
        load_county_dir(tmp_path)
    status, body = await upload(desk, boss, zipped(broken, folder="county/"))
    assert status == 200 and "未做任何修改" in body
    shown = html.unescape(body)
    for problem in e.value.problems:
        assert problem.reason.replace(str(tmp_path), "").strip() in shown, problem
    assert "确认导入" not in body and str(tmp_path) not in shown


async def test_a_valid_zip_is_previewed_then_imported_only_on_confirm(
        desk: DeskHarness, boss: aiohttp.ClientSession) -> None:
    files = sample_files()
    files["grids.yaml"] = files["grids.yaml"].replace("name: 西关\n", "name: 西关门\n", 1) \
        .replace("{name: 刘芳,", "{name: 刘芳芳,", 1)  # the same phone: the same person
    files["places.csv"] += "XC-02,钟楼巷,,街道,1-20\n"
    async with desk.app.deps.sm() as s:
        before = await county_version(s)
    status, body = await upload(desk, boss, zipped(files, folder="浮山/"))
    assert status == 200, body
    diff = {kind: [int(x) for x in re.findall(
        r'class="(?:added|changed|deactivated)">(\d+)<',
        body.split(f'id="diff-{kind}"')[1].split("</tr>")[0])]
        for kind in ("communities", "grids", "staff", "places", "boundaries")}
    assert diff == {"communities": [0, 0, 0], "grids": [0, 1, 0], "staff": [0, 1, 0],
                    "places": [1, 0, 0], "boundaries": [0, 0, 0]}, diff
    key = re.search(r'action="/desk/county/upload/([\w-]+)"', body)
    assert key, body
    url = f"{desk.base}/desk/county/upload/{key.group(1)}"
    async with desk.app.deps.sm() as s:
        assert await county_version(s) == before  # a preview changes nothing
    async with boss.post(url, data={}) as r:
        assert r.status == 403  # no CSRF token
    async with boss.post(url, data={"_csrf": csrf_of(body)}) as r:
        done = await r.text()
        assert r.status == 200 and "已导入" in done, done
    async with desk.app.deps.sm() as s:
        assert await county_version(s) == before + 1
        assert await s.scalar(select(Grid.name).where(Grid.code == "XC-01")) == "西关门"
        assert await s.scalar(select(func.count()).select_from(Person).where(
            Person.name.in_(["刘芳", "刘芳芳"]))) == 1
        assert await s.scalar(select(func.count()).select_from(Place).where(
            Place.name == "钟楼巷", Place.active.is_(True))) == 1
    index = desk.app.deps.county.index
    assert index.version == before + 1 and index.grids["XC-01"].name == "西关门"
    async with boss.post(url, data={"_csrf": csrf_of(body)}) as r:
        assert r.status == 410 and "重新上传" in await r.text()  # used once


async def test_an_unconfirmed_upload_expires(desk: DeskHarness,
                                             boss: aiohttp.ClientSession) -> None:
    files = sample_files()
    files["places.csv"] += "XC-02,钟楼巷,,街道,1-20\n"
    _, body = await upload(desk, boss, zipped(files))
    key = re.search(r'action="/desk/county/upload/([\w-]+)"', body)
    assert key
    desk.clock.advance(minutes=16)
    async with desk.app.deps.sm() as s:
        before = await county_version(s)
    async with boss.post(f"{desk.base}/desk/county/upload/{key.group(1)}",
                         data={"_csrf": csrf_of(body)}) as r:
        assert r.status == 410
    async with desk.app.deps.sm() as s:
        assert await county_version(s) == before
        assert not await s.scalar(select(Place.id).where(Place.name == "钟楼巷"))


async def test_the_same_files_again_need_no_import(desk: DeskHarness,
                                                   boss: aiohttp.ClientSession) -> None:
    async with desk.app.deps.sm() as s:
        before = await county_version(s)
    status, body = await upload(desk, boss, zipped(sample_files()))
    assert status == 200 and "都与现有数据相同" in body and 'id="diff-' not in body
    # holidays and the call-back register are not compared: the import's report says
    assert "导入后列出" in body
    key = re.search(r'action="/desk/county/upload/([\w-]+)"', body)
    assert key
    async with boss.post(f"{desk.base}/desk/county/upload/{key.group(1)}",
                         data={"_csrf": csrf_of(body)}) as r:
        done = await r.text()
    assert r.status == 200 and "没有改动" in done and "第 " not in done, done
    async with desk.app.deps.sm() as s:
        assert await county_version(s) == before


async def test_priority_and_remark_go_through_the_core(desk: DeskHarness) -> None:
    number = await desk.report("南关农贸市场门口垃圾堆了三天没人清运")
    tid = await desk.ticket_id(number)
    http = await desk.signed_in(await desk.link(COORD_FN))
    async with http:
        _, page = await page_of(http, f"{desk.base}/desk/tickets/{tid}")
        assert 'value="priority"' in page and 'value="remark"' in page
        act = f"{desk.base}/desk/tickets/{tid}/act"
        for bad in ({"op": "priority", "arg": "紧急!"}, {"op": "remark", "arg": " "}):
            async with http.post(act, data={"_csrf": csrf_of(page), **bad}) as r:
                assert r.status == 400
        async with http.post(act, data={"_csrf": csrf_of(page), "op": "priority",
                                        "arg": "urgent", "where": "row"}) as r:
            answer = await r.text()
        assert 'class="done"' in answer and "紧急" in answer, answer
        async with http.post(act, data={"_csrf": csrf_of(page), "op": "remark",
                                        "arg": "已电话联系报事人"}) as r:
            assert "仅工作人员可见" in await r.text()
        _, urgent = await page_of(http, f"{desk.base}/desk/queue/open?priority=urgent")
        _, normal = await page_of(http, f"{desk.base}/desk/queue/open?priority=normal")
        assert number in urgent and number not in normal
        _, page = await page_of(http, f"{desk.base}/desk/tickets/{tid}")
        assert "一般 → 紧急" in page and "已电话联系报事人" in page
    await drain(desk.app, desk.clock)
    async with desk.app.deps.sm() as s:
        tk = await s.get(Ticket, tid)
        kinds = list(await s.scalars(select(TicketEvent.kind).where(
            TicketEvent.ticket_id == tid).order_by(TicketEvent.id)))
    assert tk is not None and tk.priority == "urgent"
    assert kinds[-2:] == ["priority", "remark"]
    assert not any("已电话联系" in x for x in desk.sender.texts(RESIDENT))  # staff only
    other = await desk.signed_in(await desk.link(COORD_XC))
    async with other:
        _, page = await page_of(other, f"{desk.base}/desk/queue/open")
        async with other.post(f"{desk.base}/desk/tickets/{tid}/act", data={
                "_csrf": csrf_of(page), "op": "priority", "arg": "normal"}) as r:
            assert r.status == 403


@pytest.mark.parametrize("datum", ["gcj02", "wgs84"])
async def test_the_map_draws_in_the_tiles_datum(loaded_settings: Settings, clock: FakeClock,
                                                datum: str) -> None:
    tiles = loaded_settings.model_copy(update={
        "map_tile_url": "https://t0.example.cn/{z}/{x}/{y}.png", "map_tile_datum": datum})
    async with serving(tiles, clock) as h:
        await h.join("boss", StaffRole.CENTRE)
        await h.report("南关农贸市场门口垃圾堆了三天没人清运",
                       location=GeoPoint(35.968, 111.842, "wgs84"))
        async with h.app.deps.sm() as s:
            geometry = await s.scalar(select(Boundary.geometry).join(
                Grid, Grid.id == Boundary.grid_id).where(Grid.code == "FN-02"))
        assert geometry
        http = await h.signed_in(await h.link("boss"))
        async with http, http.get(f"{h.base}/desk/map/data") as r:
            data = await r.json()
    point = data["tickets"][0]
    shown = next(f for f in data["features"] if f["properties"]["grid"] == "FN-02")
    corner = geometry["coordinates"][0][0]  # type: ignore[index]
    if datum == "wgs84":  # 天地图: as stored, no shift
        assert (point["lat"], point["lon"]) == (35.968, 111.842)
        assert shown["geometry"]["coordinates"][0][0] == [round(corner[0], 7),
                                                          round(corner[1], 7)]
    else:
        lat, lon = wgs84_to_gcj02(35.968, 111.842)
        assert (point["lat"], point["lon"]) == (round(lat, 7), round(lon, 7))
        glat, glon = wgs84_to_gcj02(corner[1], corner[0])
        assert shown["geometry"]["coordinates"][0][0] == [round(glon, 7), round(glat, 7)]

