"""The whole story, report to closed, on a channel with no buttons, no quoting and 600-character
texts: words and numbered choices only. Then the 48-hour window and its templates."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy import select

from bot.app import App, build_app
from bot.deps import Ctx
from bot.people.onboarding import create_invite
from config.settings import Settings
from models.enums import ChatKind, OutboxStatus, StaffRole
from models.enums import TicketState as S
from models.tickets import Outbox, Ticket
from tests.conftest import FakeClock
from tests.contract.channels import drain
from tests.fakes.minimal import CHANNEL, MINIMAL, MinimalChat, MinimalSender

RESIDENT, WORKER, COORD = "r700", "w501", "c503"
NUMBER = re.compile(r"FS-\d{8}-\d{4}")


@pytest.fixture
async def minimal(loaded_settings: Settings, clock: FakeClock
                  ) -> AsyncIterator[tuple[App, MinimalSender, MinimalChat]]:
    sender = MinimalSender()
    app = await build_app(loaded_settings, {CHANNEL: sender}, clock=clock)
    try:
        yield app, sender, MinimalChat()
    finally:
        await app.close()


_deliver = drain  # the contract harness's: the outbox until empty, past rate limits


async def _join(app: App, user: str, role: StaffRole, **scope: str) -> None:
    async with app.deps.sm() as s, s.begin():
        inv = await create_invite(s, role, grid=scope.get("grid"),
                                  community=scope.get("community"), now=app.deps.clock(),
                                  ttl_days=7)
    # the channel's own way in (a QR scan, a link) hands the code to the core
    await app.core.on_start(Ctx(CHANNEL, user, user, user, ChatKind.PRIVATE, f"join-{user}"),
                            inv.code)


async def test_report_to_closed_with_words_and_numbers_only(
        minimal: tuple[App, MinimalSender, MinimalChat], clock: FakeClock) -> None:
    app, sender, chat = minimal
    await _join(app, WORKER, StaffRole.WORKER, grid="FN-02")
    await app.core.on_message(chat.private(RESIDENT, "南关农贸市场门口垃圾堆了三天没人清运",
                                           name="张大妈"))
    await _deliver(app, clock)
    receipt = sender.texts(RESIDENT)[-1]
    m = NUMBER.search(receipt)
    assert m and "已派给南关网格员处理" in receipt
    number = m.group(0)
    card = next(x for x in sender.texts(WORKER) if number in x)
    # the card's buttons arrive as numbered choices
    assert "回复数字选择：\n1. 接单\n2. 办结\n3. 退回\n4. 转派\n5. 改类别" in card

    await app.core.on_message(chat.private(WORKER, "1"))  # 接单, by its number
    await _deliver(app, clock)
    assert sender.texts(WORKER)[-1].startswith(f"已接单：{number}")
    # nobody can quote here: the way to add a note is the words, not "reply to this message"
    assert "回复这条消息" not in sender.texts(WORKER)[-1]
    assert f"进展 {number} 内容" in sender.texts(WORKER)[-1]
    await app.core.on_message(chat.private(WORKER, f"进展 {number} 已联系环卫所"))
    await app.core.on_message(chat.private(WORKER, f"办结 {number} 已清运完毕"))
    await _deliver(app, clock)
    ask = sender.texts(RESIDENT)[-1]
    assert f"工单 {number} 已办结：已清运完毕" in ask
    assert ask.endswith("回复数字选择：\n1. 满意\n2. 基本满意\n3. 不满意")

    await app.core.on_message(chat.private(RESIDENT, "1"))
    await _deliver(app, clock)
    assert sender.texts(RESIDENT)[-1] == f"感谢评价！工单 {number} 已结案。"
    async with app.deps.sm() as s:
        ticket = await s.scalar(select(Ticket).where(Ticket.number == number))
    assert ticket is not None and ticket.state == S.CLOSED and ticket.satisfaction == "satisfied"
    # a number with nothing offered is just a message, not someone else's choice
    await app.core.on_message(chat.private(RESIDENT, "2"))
    await _deliver(app, clock)
    async with app.deps.sm() as s:
        assert (await s.get(Ticket, ticket.id)).satisfaction == "satisfied"  # type: ignore[union-attr]


async def test_long_texts_are_split_at_the_channels_limit(
        minimal: tuple[App, MinimalSender, MinimalChat], clock: FakeClock) -> None:
    app, sender, chat = minimal
    await _join(app, WORKER, StaffRole.WORKER, grid="FN-02")
    long = "南关农贸市场门口" + "垃圾堆了好几天没人清运，气味很大。" * 60
    await app.core.on_message(chat.private(RESIDENT, long))
    await _deliver(app, clock)
    parts = [m for m in sender.sent if m.chat_id == WORKER]
    assert len(parts) >= 2 and all(len(m.text) <= 600 for m in parts)
    assert parts[-1].text.endswith("5. 改类别")  # the choices come last, after the whole text


async def test_outside_the_window_a_template_goes_instead(
        minimal: tuple[App, MinimalSender, MinimalChat], clock: FakeClock) -> None:
    app, sender, chat = minimal
    await _join(app, WORKER, StaffRole.WORKER, grid="FN-02")
    await app.core.on_message(chat.private(RESIDENT, "南关农贸市场门口垃圾没人清",
                                           at=clock()))
    await _deliver(app, clock)
    number = NUMBER.search(sender.texts(RESIDENT)[-1]).group(0)  # type: ignore[union-attr]
    clock.advance(hours=49)  # the resident has said nothing since
    await app.core.on_message(chat.private(WORKER, f"接单 {number}"))
    await _deliver(app, clock)
    assert not any("已由网格员" in x for x in sender.texts(RESIDENT))
    notice = sender.templates[-1]
    assert notice.chat_id == RESIDENT and notice.number == number and notice.state == "已接单"
    assert notice.line.startswith("已由网格员") and "接单" in notice.line
    assert notice.number not in notice.line


async def test_with_no_template_the_message_is_undeliverable_and_the_coordinator_told(
        loaded_settings: Settings, clock: FakeClock) -> None:
    sender = MinimalSender(capabilities=replace(MINIMAL, templates=False))
    app = await build_app(loaded_settings, {CHANNEL: sender}, clock=clock)
    try:
        chat = MinimalChat()
        await _join(app, WORKER, StaffRole.WORKER, grid="FN-02")
        await app.core.on_message(chat.private(RESIDENT, "南关农贸市场门口垃圾没人清",
                                               at=clock()))
        await _deliver(app, clock)
        number = NUMBER.search(sender.texts(RESIDENT)[-1]).group(0)  # type: ignore[union-attr]
        clock.advance(hours=49)
        await _join(app, COORD, StaffRole.COORDINATOR, community="FN")
        await app.core.on_message(chat.private(WORKER, f"接单 {number}"))
        await _deliver(app, clock)
        assert not any("已由网格员" in x for x in sender.texts(RESIDENT))
        told = [x for x in sender.texts(COORD) if x.startswith("【无法送达】")]
        assert len(told) == 1 and number in told[0], sender.texts(COORD)
        async with app.deps.sm() as s:
            dead = (await s.scalars(select(Outbox.last_error).where(
                Outbox.status == OutboxStatus.DEAD))).all()
        assert dead and all("messaging window" in (e or "") for e in dead)
    finally:
        await app.close()


async def test_numbers_go_on_from_card_to_card_so_one_means_the_first_card(
        minimal: tuple[App, MinimalSender, MinimalChat], clock: FakeClock) -> None:
    app, sender, chat = minimal
    await _join(app, WORKER, StaffRole.WORKER, grid="FN-02")
    for text in ("南关农贸市场门口垃圾堆了三天没人清运", "南关农贸市场的路灯坏了"):
        await app.core.on_message(chat.private(RESIDENT, text, name="张大妈"))
        await _deliver(app, clock)
    first, second = [t for t in sender.texts(WORKER) if "【新工单】" in t]
    one = re.search(r"^(\d+)\. 接单$", first, re.M)
    other = re.search(r"^(\d+)\. 接单$", second, re.M)
    assert one and other and one.group(1) == "1" and int(other.group(1)) > 1
    first_number = NUMBER.search(first).group(0)  # type: ignore[union-attr]
    await app.core.on_message(chat.private(WORKER, "1"))
    await _deliver(app, clock)
    async with app.deps.sm() as s:
        states = {t.number: t.state for t in await s.scalars(select(Ticket))}
    assert states[first_number] == S.ACKNOWLEDGED
    assert sorted(states.values()) == [S.ACKNOWLEDGED, S.ASSIGNED]
    await app.core.on_message(chat.private(WORKER, other.group(1)))  # the second card's 接单
    await _deliver(app, clock)
    async with app.deps.sm() as s:
        assert {t.state for t in await s.scalars(select(Ticket))} == {S.ACKNOWLEDGED}


async def test_the_unrouted_queue_in_words(
        minimal: tuple[App, MinimalSender, MinimalChat], clock: FakeClock) -> None:
    app, sender, chat = minimal
    await _join(app, COORD, StaffRole.COORDINATOR, community="FN")
    await app.core.on_message(chat.private(RESIDENT, "信家坡小区路灯不亮", name="张大妈"))
    await _deliver(app, clock)
    asked = next(x for x in sender.texts(RESIDENT) if "都不是" in x)
    none = re.search(r"^(\d+)\. 都不是$", asked, re.M)
    assert none, sender.texts(RESIDENT)
    await app.core.on_message(chat.private(RESIDENT, none.group(1)))
    await _deliver(app, clock)
    number = NUMBER.search(asked).group(0)  # type: ignore[union-attr]
    before = len(sender.texts(COORD))
    await app.core.on_message(chat.private(COORD, "待分派"))
    await _deliver(app, clock)
    listed = sender.texts(COORD)[before:]
    assert any(f"【待分派】工单 {number}" in x for x in listed), listed
    await app.core.on_message(chat.private(RESIDENT, "待分派"))
    await _deliver(app, clock)
    assert sender.texts(RESIDENT)[-1] == "待分派队列由社区工作人员、网格长和县指挥中心处理。"


async def test_an_invite_code_typed_in_a_private_chat_is_redeemed_by_the_core(
        minimal: tuple[App, MinimalSender, MinimalChat], clock: FakeClock) -> None:
    app, sender, chat = minimal
    async with app.deps.sm() as s, s.begin():
        inv = await create_invite(s, StaffRole.WORKER, grid="FN-02", community=None,
                                  now=app.deps.clock(), ttl_days=7)
    await app.core.on_message(chat.private(WORKER, f"绑定 {inv.code.lower()}"))
    await _deliver(app, clock)
    assert "网格员" in sender.texts(WORKER)[-1] and "绑定成功" in sender.texts(WORKER)[-1]
    async with app.deps.sm() as s:
        assert (await s.scalars(select(Ticket))).first() is None  # not a report


async def test_in_a_group_nobody_can_quote_the_reporters_next_words_answer_where(
        minimal: tuple[App, MinimalSender, MinimalChat], clock: FakeClock) -> None:
    app, sender, chat = minimal
    await _join(app, WORKER, StaffRole.WORKER, grid="FN-02")
    group = "g-nanguan"
    ib = chat.group(group, RESIDENT, "报事 路灯坏了好几天了", name="张大妈")
    await app.core.on_message(ib)
    await _deliver(app, clock)
    assert "请回复" in sender.texts(group)[-1] or "位置" in sender.texts(group)[-1]
    # a neighbour's chatter is not the answer, nor the reporter's words naming no place
    await app.core.on_message(chat.group(group, "r701", "南关农贸市场那边也有"))
    await app.core.on_message(chat.group(group, RESIDENT, "我去买菜了"))
    async with app.deps.sm() as s:
        assert (await s.scalars(select(Ticket))).one().state == S.REPORTED
    await app.core.on_message(chat.group(group, RESIDENT, "在南关农贸市场门口"))
    await _deliver(app, clock)
    async with app.deps.sm() as s:
        tk = (await s.scalars(select(Ticket))).one()
    assert tk.state == S.ASSIGNED
    assert any(f"工单 {tk.number} 已派给南关网格员" in x for x in sender.texts(group))


async def test_asking_for_the_desk_where_there_is_none_is_answered_not_filed(
        minimal: tuple[App, MinimalSender, MinimalChat], clock: FakeClock) -> None:
    app, sender, chat = minimal
    await app.core.on_message(chat.private(COORD, "网页"))
    await _deliver(app, clock)
    assert sender.texts(COORD)[-1] == "网页工作台还没有开通，请联系县指挥中心。"
    async with app.deps.sm() as s:
        assert (await s.scalars(select(Ticket))).first() is None
