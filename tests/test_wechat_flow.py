"""Residents on the Official Account: text, photo, voice and location reports, following,
subscribe and the menu, staff codes; through the real callback, core and outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.delivery.media import MediaStore
from bot.people.onboarding import create_invite
from bot.people.onboarding import typed_code as invite_code
from config.settings import Settings
from handlers.serve import Edge
from handlers.wechat.oa import invite_hint
from models.enums import StaffRole
from models.people import Identity, StaffAssignment
from models.tickets import Attachment, Ticket
from tests.conftest import FakeClock
from tests.contract.wechat import OAStack, WeChatUsers, oa_stack

RESIDENT = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
WORKER = "o6_bmjrPTlm6_2sgVt7hMWORKER0"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
AMR = b"#!AMR\n" + bytes(range(256)) * 2
# a point inside the 南关 grid (FN-02) of the sample county, as WeChat reports it (GCJ-02)
NANGUAN_GCJ = ("35.954308", "111.857223")


@pytest.fixture
async def stack(loaded_settings: Settings, clock: FakeClock) -> AsyncIterator[OAStack]:
    async with oa_stack(loaded_settings, clock) as s:
        yield s


@pytest.fixture
def users(stack: OAStack) -> WeChatUsers:
    return WeChatUsers(stack)


async def _tickets(stack: OAStack) -> list[Ticket]:
    async with stack.app.deps.sm() as s:
        return list((await s.scalars(select(Ticket).order_by(Ticket.id))).all())


async def test_a_photo_report_is_fetched_into_the_media_store(
        stack: OAStack, users: WeChatUsers) -> None:
    media_id = stack.api.put_media(JPEG)
    answer = await users.post(users.xml(RESIDENT, "image", {
        "PicUrl": "http://127.0.0.1:9/never-fetched.jpg", "MediaId": media_id}))
    [ticket] = await _tickets(stack)
    async with stack.app.deps.sm() as s:
        photo = (await s.scalars(select(Attachment).where(
            Attachment.ticket_id == ticket.id))).one()
    assert answer.text is not None and f"工单号 {ticket.number}" in answer.text
    assert (photo.kind, photo.file_id, photo.channel) == ("photo", media_id, "wechat")
    assert photo.media_sha is not None
    store: MediaStore = stack.app.core.media  # type: ignore[assignment]
    assert store.get(photo.media_sha) == JPEG


async def test_a_location_report_routes_by_its_gcj02_point(
        stack: OAStack, users: WeChatUsers) -> None:
    lat, lon = NANGUAN_GCJ
    answer = await users.post(users.xml(RESIDENT, "location", {
        "Location_X": lat, "Location_Y": lon, "Scale": "15", "Label": "路边的垃圾桶满了"}))
    [ticket] = await _tickets(stack)
    assert (ticket.lat, ticket.lon, ticket.datum) == (float(lat), float(lon), "gcj02")
    assert ticket.text == "路边的垃圾桶满了"
    assert answer.text is not None and "南关网格员" in answer.text


async def test_voice_with_recognition_is_a_report_and_without_it_waits_for_words(
        stack: OAStack, users: WeChatUsers) -> None:
    kept = await users.post(users.xml(RESIDENT, "voice", {
        "MediaId": stack.api.put_media(AMR), "Format": "amr"}))
    assert await _tickets(stack) == []
    assert kept.text == "已收到。请接着用文字说明是什么问题、在哪里，会和这条一起转给网格员。"
    stack.clock.advance(30)
    report = await users.post(users.xml(RESIDENT, "text", {"Content": "南关农贸市场下水道堵了"}))
    [first] = await _tickets(stack)
    assert report.text is not None and f"工单号 {first.number}" in report.text
    async with stack.app.deps.sm() as s:
        kept_audio = (await s.scalars(select(Attachment).where(
            Attachment.ticket_id == first.id))).one()
    assert kept_audio.kind == "voice" and kept_audio.media_sha is not None

    stack.clock.advance(900)
    said = await users.post(users.xml(RESIDENT, "voice", {
        "MediaId": stack.api.put_media(AMR), "Format": "amr",
        "Recognition": "南关村口的路灯不亮了"}))
    second = (await _tickets(stack))[-1]
    assert second.text == "南关村口的路灯不亮了"
    assert said.text is not None and f"工单号 {second.number}" in said.text


async def test_subscribe_is_welcomed_once(stack: OAStack, users: WeChatUsers) -> None:
    created = users.now()
    first = await users.event(RESIDENT, "subscribe", created=created)
    again = await users.event(RESIDENT, "subscribe", created=created)  # WeChat's retry
    assert first.text is not None and first.text.startswith("您好，我是网格报事助手。")
    assert "直接发送要反映的问题" in first.text
    assert again.text == first.text
    await stack.app.outbox.run_once()
    assert stack.api.texts(RESIDENT) == [first.text, again.text]  # no third copy sent
    assert await users.event(RESIDENT, "unsubscribe") is not None
    assert (await users.event(RESIDENT, "unsubscribe")).text is None


async def test_the_menu_clicks(stack: OAStack, users: WeChatUsers) -> None:
    ask = await users.event(RESIDENT, "CLICK", "REPORT")
    assert ask.text is not None and ask.text.startswith("请说说遇到了什么问题、在哪里")
    assert await _tickets(stack) == []
    stack.clock.advance(2)
    await users.post(users.xml(RESIDENT, "text", {"Content": "南关村口垃圾堆了好几天"}))
    [ticket] = await _tickets(stack)
    stack.clock.advance(2)
    mine = await users.event(RESIDENT, "CLICK", "MY_TICKETS")
    assert mine.text is not None and mine.text.startswith("您的工单：")
    assert ticket.number in mine.text
    stack.clock.advance(2)
    assert (await users.event(RESIDENT, "VIEW", "https://example.invalid/")).text is None


async def test_staff_redeem_codes_by_message_or_qr_scene(
        stack: OAStack, users: WeChatUsers) -> None:
    async with stack.app.deps.sm() as s, s.begin():
        by_text = await create_invite(s, StaffRole.WORKER, grid="FN-02", community=None,
                                      now=stack.clock(), ttl_days=7)
        by_scan = await create_invite(s, StaffRole.LEADER, grid="FN-02", community=None,
                                      now=stack.clock(), ttl_days=7)
    assert invite_code(f"绑定 {by_text.code.lower()}") == by_text.code
    assert invite_code("报事 南关村口路灯坏了") is None
    hint = invite_hint(by_text.code)
    assert by_text.code in hint and "\n" not in hint and "公众号" in hint

    bound = await users.post(users.xml(WORKER, "text", {"Content": by_text.code}))
    assert bound.text is not None and bound.text.startswith("绑定成功")
    scanned = await users.event("o6_leader_of_nanguan_000000", "subscribe",
                                f"qrscene_{by_scan.code}")
    assert scanned.text is not None and scanned.text.startswith("绑定成功")
    async with stack.app.deps.sm() as s:
        roles = sorted(r for (r,) in await s.execute(
            select(StaffAssignment.role).join(Identity, Identity.person_id ==
                                              StaffAssignment.person_id)
            .where(Identity.channel == "wechat")))
    assert roles == ["leader", "worker"]
    assert await _tickets(stack) == []


async def test_a_ticket_is_followed_by_scanning_its_code(
        stack: OAStack, users: WeChatUsers) -> None:
    await users.post(users.xml(RESIDENT, "text", {"Content": "南关村口的井盖丢了"}))
    [ticket] = await _tickets(stack)
    stack.clock.advance(2)
    follow = await users.event(RESIDENT, "SCAN", f"t_{ticket.number}")
    assert follow.text is not None and ticket.number in follow.text


async def test_it_runs_as_an_edge_of_serve(stack: OAStack) -> None:
    edge: Edge = stack.oa
    assert edge.name == "wechat" and edge.sender is stack.oa.sender
    assert edge.follow_link("FS-20260303-0001") is None
    await edge.prepare()
    running = asyncio.create_task(edge.run(stack.app))
    await asyncio.sleep(0)
    assert not running.done()
    stack.app.stop.set()
    await asyncio.wait_for(running, 5)
    health = stack.app.health.report()["wechat"]
    assert health["mode"] == "webhook" and health["ok"]
