"""居民上报 reports pulled from a fake WeCom on 127.0.0.1 into tickets: exactly once, through
faults, redelivery and a kill -9; WeCom's grid against our router; the mobile kept private."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from bot.app import build_app, prepare_database, sla_config
from bot.delivery.media import MediaStore
from bot.tickets.lifecycle import SYSTEM, TransitionRefused, transition
from config.settings import Settings
from handlers.wecom.residents.cli import DATABASE, OK, sync_command
from handlers.wecom.residents.retry import Backoff
from handlers.wecom.residents.sync import ResidentSync
from models.base import utcnow
from models.county import Community
from models.db import make_engine, make_sessionmaker
from models.enums import StaffRole
from models.enums import TicketState as S
from models.people import Identity, Person, StaffAssignment
from models.tickets import Ticket
from tests.fakes.wecom_resident import ORDER_LIST, FakeResidentWeCom, order, step
from tests.pg import fresh_database
from tests.procs import REPO, clean_env
from tests.test_wecom_grids import CORP, SECRET, bind_staff, push

FAST = Backoff(attempts=5, first=0.01, most=0.05)
MOBILE = "13912345678"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 200


@pytest.fixture
async def wecom() -> AsyncIterator[FakeResidentWeCom]:
    async with FakeResidentWeCom(CORP, SECRET) as fake:
        yield fake


@pytest.fixture
async def wc_settings(loaded_settings: Settings, wecom: FakeResidentWeCom) -> Settings:
    """The sample county, its staff bound to WeCom userids, its grids pushed to the fake."""
    settings = loaded_settings.model_copy(update={
        "wecom_corp_id": CORP, "wecom_secret": SecretStr(SECRET),
        "wecom_api_base": wecom.base_url})
    await bind_staff(settings)
    assert (await push(settings))[0] == OK
    return settings


def db_path(settings: Settings) -> Path:
    return Path(str(make_url(settings.database_url).database))


def query(settings: Settings, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db_path(settings), timeout=30) as conn:
        return conn.execute(sql, params).fetchall()


def wecom_grid(settings: Settings, code: str) -> str:
    [(wecom_id,)] = query(settings, "SELECT w.wecom_id FROM wecom_grids w JOIN grids g "
                          "ON g.id = w.our_id WHERE w.kind = 'grid' AND g.code = ?", code)
    return str(wecom_id)


async def sync(settings: Settings) -> list[str]:
    lines: list[str] = []
    assert await sync_command(settings, lines.append, FAST) == OK, lines
    return lines


def ticket_of(settings: Settings, order_id: str) -> dict[str, Any]:
    cols = ("id", "state", "grid_id", "route_status", "candidates", "reporter_name",
            "reporter_user_id", "confirm_due_at", "escalation_at", "channel", "text")
    [row] = query(settings, f"SELECT {', '.join('t.' + c for c in cols)} FROM tickets t "
                  "JOIN wecom_orders o ON o.ticket_id = t.id WHERE o.order_id = ?", order_id)
    return dict(zip(cols, row, strict=True))


def grid_code(settings: Settings, grid_id: int | None) -> str | None:
    rows = query(settings, "SELECT code FROM grids WHERE id = ?", grid_id)
    return str(rows[0][0]) if rows else None


def events(settings: Settings, ticket_id: int, kind: str | None = None) -> list[tuple[Any, ...]]:
    sql = "SELECT kind, from_state, to_state, actor_name, note FROM ticket_events " \
          "WHERE ticket_id = ?" + (" AND kind = ?" if kind else "") + " ORDER BY id"
    return query(settings, sql, ticket_id, *([kind] if kind else []))


# -- 1,000 reports, faults, redelivery, kill -9 ---------------------------------------------------


def thousand(fake: FakeResidentWeCom, grids: list[str]) -> dict[str, int]:
    """1,000 reports over the pushed grids, 0 to 3 steps each; order id -> steps."""
    base = int(time.time()) - 5000
    steps: dict[str, int] = {}
    for i in range(1000):
        n = i % 4
        oid = f"ord{i:04d}"
        fake.put_order(order(oid, f"第{i}号楼道灯不亮", grids[i % len(grids)],
                             mobile=f"139{i:08d}",
                             steps=[step(k, desc=f"步骤{k}") for k in range(1, n + 1)]),
                       modified=base + i)
        steps[oid] = n
    return steps


async def test_a_thousand_reports_become_a_thousand_tickets_through_a_kill_9(
        wc_settings: Settings, wecom: FakeResidentWeCom, tmp_path: Path) -> None:
    grids = [str(w) for (w,) in query(wc_settings, "SELECT wecom_id FROM wecom_grids "
                                                  "WHERE kind = 'grid' ORDER BY id")]
    steps = thousand(wecom, grids)
    wecom.redeliver = True  # each page repeats the last report of the page before

    def before_page(page: int) -> None:
        if page == 3:  # a report of page 0 gains a step while we read: it comes round again
            wecom.add_step("ord0001", step(2, desc="又办理"))
            steps["ord0001"] += 1

    wecom.before_page = before_page
    wecom.fail_http(ORDER_LIST, 502, times=1)
    wecom.fail(ORDER_LIST, 42001, times=1)
    wecom.page_delay[6] = 60.0  # the process is killed while it waits on page 6

    env = clean_env()
    env.update({"DATABASE_URL": wc_settings.database_url, "WECOM_CORP_ID": CORP,
                "WECOM_SECRET": SECRET, "WECOM_API_BASE": wecom.base_url,
                "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO"})
    log_path = tmp_path / "sync.log"
    with log_path.open("wb") as log:
        # Popen returns at once; waiting is by polling, so the fake in this loop keeps serving
        proc = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "run_bot.py", "wecom", "residents", "sync"], cwd=REPO, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while await asyncio.to_thread(
                lambda: query(wc_settings, "SELECT count(*) FROM wecom_orders")[0][0]) < 300:
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.1)
        while wecom.pages_asked < 7:  # noqa: ASYNC110  (it asked for page 6 and waits)
            await asyncio.sleep(0.05)
        assert proc.poll() is None, log_path.read_text()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    [(done_before,)] = query(wc_settings, "SELECT count(*) FROM wecom_orders")
    [(cursor, run_started)] = query(wc_settings, "SELECT page_cursor, run_started "
                                                 "FROM wecom_sync_state")
    assert 300 <= done_before < 1000 and cursor and run_started is not None

    wecom.release()
    lines = await sync(wc_settings)  # resumes at the stored page
    assert lines[-1].startswith("已同步企业微信居民上报")
    await sync(wc_settings)  # and again from the stored time, less the overlap: no doubles

    assert query(wc_settings, "SELECT count(*), count(DISTINCT source_message_id) FROM tickets "
                              "WHERE channel = 'wecom_resident'") == [(1000, 1000)]
    assert query(wc_settings, "SELECT count(*) FROM wecom_orders") == [(1000,)]
    applied = dict(query(wc_settings, "SELECT order_id, count(*) FROM wecom_order_steps "
                                      "GROUP BY order_id"))
    assert applied == {oid: n for oid, n in steps.items() if n}
    assert query(wc_settings, "SELECT count(*) FROM ticket_events WHERE kind = 'wecom_step'") \
        == [(sum(steps.values()),)]
    states = dict(query(wc_settings, "SELECT o.order_id, t.state FROM tickets t "
                                     "JOIN wecom_orders o ON o.ticket_id = t.id"))
    expect = {0: "assigned", 1: "acknowledged", 2: "in_progress", 3: "resolved"}
    assert {oid: expect[n] for oid, n in steps.items()} == states
    assert query(wc_settings, "SELECT page_cursor, run_started FROM wecom_sync_state") \
        == [("", None)]


# -- routing ---------------------------------------------------------------------------------


async def test_wecom_s_grid_maps_to_ours_and_a_disagreeing_router_is_recorded(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    xc01, xc02 = wecom_grid(wc_settings, "XC-01"), wecom_grid(wc_settings, "XC-02")
    wecom.put_order(order("agree", "西关小区3号楼门口垃圾没人清", xc01))
    wecom.put_order(order("nowhere", "路灯坏了", xc02))  # WeCom's grid is all there is
    wecom.put_order(order("clash", "鼓楼小区路灯坏了", xc01,
                          place=("鼓楼小区", "鼓楼巷2号", 0, 0)))
    wecom.put_order(order("stranger", "路灯坏了", "G-NOT-OURS"))
    await sync(wc_settings)

    agree = ticket_of(wc_settings, "agree")
    assert grid_code(wc_settings, agree["grid_id"]) == "XC-01" and agree["state"] == "assigned"
    assert events(wc_settings, agree["id"], "route_conflict") == []
    nowhere = ticket_of(wc_settings, "nowhere")
    assert grid_code(wc_settings, nowhere["grid_id"]) == "XC-02"

    clash = ticket_of(wc_settings, "clash")
    # WeCom's staff have it in WeCom: it stays there, our answer beside it for the coordinator
    assert grid_code(wc_settings, clash["grid_id"]) == "XC-01"
    assert json.loads(clash["candidates"]) == ["XC-01", "XC-02"]
    [(_kind, _f, _t, _a, note)] = events(wc_settings, clash["id"], "route_conflict")
    assert note == "企业微信：西城·西关；按地点：西城·鼓楼"

    stranger = ticket_of(wc_settings, "stranger")
    assert stranger["grid_id"] is None and stranger["state"] == "reported"
    assert stranger["escalation_at"] is None  # in the queue: the coordinator decides
    assert [e[0] for e in events(wc_settings, stranger["id"])] == ["transition", "held"]


async def test_a_gcj02_location_is_routed_too(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    from shapely.geometry import shape

    from bot.county.files import load_county_dir
    from bot.routing.datum import wgs84_to_gcj02

    county = load_county_dir(wc_settings.county_dir)
    b = next(b for b in county.boundaries if b.grid == "XC-02")
    point = shape(b.geometry).representative_point()
    lat, lon = wgs84_to_gcj02(point.y, point.x)
    wecom.put_order(order("bymap", "这里路灯坏了", wecom_grid(wc_settings, "XC-01"),
                          place=("", "", lat, lon)))
    await sync(wc_settings)
    t = ticket_of(wc_settings, "bymap")
    assert grid_code(wc_settings, t["grid_id"]) == "XC-01"
    assert json.loads(t["candidates"]) == ["XC-01", "XC-02"]
    assert len(events(wc_settings, t["id"], "route_conflict")) == 1


# -- progress --------------------------------------------------------------------------------


async def test_wecom_s_steps_move_the_ticket_once_and_nothing_else_does(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    [(worker_id, worker_name)] = query(
        wc_settings, "SELECT p.id, p.name FROM people p JOIN staff_assignments a "
        "ON a.person_id = p.id JOIN grids g ON g.id = a.grid_id WHERE g.code = 'XC-02' "
        "AND a.role = 'worker' ORDER BY a.id LIMIT 1")
    wecom.put_order(order("p1", "鼓楼小区路灯坏了", wecom_grid(wc_settings, "XC-02")))
    await sync(wc_settings)
    t = ticket_of(wc_settings, "p1")
    assert t["state"] == "assigned" and t["escalation_at"] is not None  # deadlines run

    wecom.add_step("p1", step(1, f"wx{worker_id}", "收到，马上去"))
    await sync(wc_settings)
    t = ticket_of(wc_settings, "p1")
    assert t["state"] == "acknowledged"
    assert events(wc_settings, t["id"], "wecom_step") == [
        ("wecom_step", None, None, worker_name, "受理：收到，马上去")]

    wecom.add_step("p1", step(2, f"wx{worker_id}", "在修"))
    wecom.add_step("p1", step(3, f"wx{worker_id}", "换了灯泡"))
    await sync(wc_settings)
    await sync(wc_settings)
    t = ticket_of(wc_settings, "p1")
    assert t["state"] == "resolved"
    assert t["confirm_due_at"] is None and t["escalation_at"] is None  # WeCom closes it
    moves = [(f, to) for _k, f, to, _a, _n in events(wc_settings, t["id"], "transition")]
    assert moves == [(None, "reported"), ("reported", "assigned"), ("assigned", "acknowledged"),
                     ("acknowledged", "in_progress"), ("in_progress", "resolved")]
    assert len(events(wc_settings, t["id"], "wecom_step")) == 3

    # our side may not change it: a worker's press or the sweeper is refused by lifecycle
    engine = make_engine(wc_settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            ticket = await s.get(Ticket, t["id"])
            assert ticket is not None
            with pytest.raises(TransitionRefused):
                transition(s, ticket, S.CLOSED, SYSTEM, now=utcnow(),
                           cfg=sla_config(wc_settings))
    finally:
        await engine.dispose()


# -- privacy ---------------------------------------------------------------------------------


async def test_the_mobile_is_kept_for_call_backs_and_shown_nowhere_else(
        wc_settings: Settings, wecom: FakeResidentWeCom,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    engine = make_engine(wc_settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s, s.begin():
            xc = await s.scalar(select(Community.id).where(Community.code == "XC"))
            coord = Person(name="社区协调员")
            s.add(coord)
            await s.flush()
            s.add(StaffAssignment(person_id=coord.id, role=StaffRole.COORDINATOR.value,
                                  community_id=xc))
            s.add(Identity(channel="telegram", user_id="777", person_id=coord.id,
                           private_chat_id="777"))
    finally:
        await engine.dispose()
    xc01 = wecom_grid(wc_settings, "XC-01")
    photo = wecom.picture("a.jpg", JPEG)
    wecom.put_order(order("m1", "鼓楼小区路灯坏了", xc01, name="王阿姨", mobile=MOBILE,
                          images=[photo]))
    wecom.put_order(order("m2", "路灯坏了", "G-NOT-OURS", name="王阿姨", mobile=MOBILE))
    await sync(wc_settings)

    t = ticket_of(wc_settings, "m1")
    assert query(wc_settings, "SELECT name, mobile FROM resident_contacts WHERE ticket_id = ?",
                 t["id"]) == [("王阿姨", MOBILE)]
    payloads = [json.loads(p)["text"] for (p,) in query(wc_settings, "SELECT payload FROM outbox")]
    assert len(payloads) == 1  # the coordinator hears of the disagreement
    assert "按地点应在西城·鼓楼" in payloads[0]
    # every log line at the service's level (INFO), and ours at DEBUG too (the database
    # driver's own DEBUG echo prints statement parameters: see the report)
    logged = [r.getMessage() for r in caplog.records
              if r.levelno >= logging.INFO or r.name.startswith(("bot", "handlers"))]
    assert logged  # the sync did log
    everything = "\n".join([
        *payloads, *logged,
        *(str(r) for r in query(wc_settings, "SELECT * FROM tickets")),
        *(str(r) for r in query(wc_settings, "SELECT * FROM ticket_events")),
        *(str(r) for r in query(wc_settings, "SELECT * FROM attachments")),
    ])
    assert MOBILE not in everything and MOBILE[-4:] not in everything
    assert "王阿姨" not in everything  # the name too is for the call-back only
    assert query(wc_settings, "SELECT kind, file_id FROM attachments WHERE ticket_id = ?",
                 t["id"]) == [("photo", photo)]


async def test_photos_and_videos_are_fetched_into_the_media_store(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    photo, gone = wecom.picture("p.jpg", JPEG), f"{wecom.base_url}/pic/missing.jpg"
    video = wecom.put_media(MP4)
    order_data = order("v1", "鼓楼小区路灯坏了", wecom_grid(wc_settings, "XC-02"),
                       images=[photo, gone])
    order_data["video_media_ids"] = [video]
    wecom.put_order(order_data)
    await sync(wc_settings)
    t = ticket_of(wc_settings, "v1")
    rows = query(wc_settings, "SELECT kind, file_id, media_sha FROM attachments "
                              "WHERE ticket_id = ? ORDER BY id", t["id"])
    assert rows == [("photo", photo, hashlib.sha256(JPEG).hexdigest()),
                    ("photo", gone, None),  # kept as a reference: the report is not held
                    ("video", video, hashlib.sha256(MP4).hexdigest())]
    store = MediaStore(wc_settings.media_root())
    assert store.get(hashlib.sha256(JPEG).hexdigest()) == JPEG
    assert store.get(hashlib.sha256(MP4).hexdigest()) == MP4


async def test_a_database_failure_says_so_in_one_line_without_the_rows(
        wc_settings: Settings, wecom: FakeResidentWeCom,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    # a step row that is already there makes the page's insert fail on its unique key
    query(wc_settings, "INSERT INTO wecom_order_steps (order_id, seq, process_type, status, "
                       "solved_time) VALUES ('d1', 0, 1, 1, 0)")
    wecom.put_order(order("d1", "鼓楼小区路灯坏了", wecom_grid(wc_settings, "XC-02"),
                          mobile=MOBILE, steps=[step(1)]))
    lines: list[str] = []
    assert await sync_command(wc_settings, lines.append, FAST) == DATABASE
    assert lines == ["数据库出错（IntegrityError），本页没有写入，下次会重试。"]
    assert MOBILE not in caplog.text
    assert query(wc_settings, "SELECT count(*) FROM tickets WHERE channel = 'wecom_resident'") \
        == [(0,)]
    assert query(wc_settings, "SELECT count(*) FROM resident_contacts") == [(0,)]


# -- serve's loop --------------------------------------------------------------------------


async def test_the_serve_loop_pulls_until_the_app_stops(
        wc_settings: Settings, wecom: FakeResidentWeCom) -> None:
    assert ResidentSync.from_settings(wc_settings.model_copy(
        update={"wecom_corp_id": None})) is None
    assert ResidentSync.from_settings(wc_settings.model_copy(
        update={"wecom_resident_sync_seconds": 0})) is None
    loop = ResidentSync.from_settings(wc_settings.model_copy(
        update={"wecom_resident_sync_seconds": 0.05}))
    assert loop is not None
    loop.backoff = FAST
    app = await build_app(wc_settings, {})
    try:
        task = asyncio.create_task(loop.run(app))
        wecom.put_order(order("s1", "鼓楼小区路灯坏了", wecom_grid(wc_settings, "XC-02")))
        wecom.fail_http(ORDER_LIST, 503, times=2)
        for _ in range(200):
            if query(wc_settings, "SELECT count(*) FROM wecom_orders") == [(1,)]:
                break
            await asyncio.sleep(0.05)
        wecom.put_order(order("s2", "西关小区垃圾", wecom_grid(wc_settings, "XC-01")))
        for _ in range(200):
            if query(wc_settings, "SELECT count(*) FROM wecom_orders") == [(2,)]:
                break
            await asyncio.sleep(0.05)
        app.stop.set()
        await asyncio.wait_for(task, timeout=10)
    finally:
        await app.close()
    assert query(wc_settings, "SELECT order_id FROM wecom_orders ORDER BY id") \
        == [("s1",), ("s2",)]
    report = app.health.report()["wecom_resident"]
    assert report["ok"] and report["seconds_since_sync"] is not None


# -- PostgreSQL ------------------------------------------------------------------------------


async def test_the_pull_on_postgresql_is_exactly_once_too(wecom: FakeResidentWeCom) -> None:
    async with fresh_database("wecom_resident") as url:
        settings = Settings(database_url=url, _env_file=None, wecom_corp_id=CORP,
                            wecom_secret=SecretStr(SECRET), wecom_api_base=wecom.base_url)
        await prepare_database(settings)
        await bind_staff(settings)
        assert (await push(settings))[0] == OK
        grids = [n["grid_id"] for n in wecom.grids.values() if n["grid_member"]]
        steps = thousand(wecom, grids)
        for oid in list(wecom.orders)[120:]:
            del wecom.orders[oid], wecom.modified[oid], steps[oid]
        wecom.redeliver = True
        assert (await sync(settings))[-1] == \
            "已同步企业微信居民上报 122 条：新建工单 120 张，新进展 180 条。"
        wecom.add_step("ord0000", step(1))
        assert (await sync(settings))[-1] == \
            "已同步企业微信居民上报 1 条：新建工单 0 张，新进展 1 条。"
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as s:
                counted = (await s.execute(text(
                    "SELECT count(*), count(DISTINCT source_message_id) FROM tickets "
                    "WHERE channel = 'wecom_resident'"))).one()
                stepped = await s.scalar(text(
                    "SELECT count(*) FROM ticket_events WHERE kind = 'wecom_step'"))
        finally:
            await engine.dispose()
        assert tuple(counted) == (120, 120) and stepped == sum(steps.values()) + 1
