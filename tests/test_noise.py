"""Floods, repeats, thanks, empty reports and service senders: none of them buries a worker.

Through the real Dispatcher, SQLite file and outbox (see tests/test_telegram_flow.py).
"""

from __future__ import annotations

from sqlalchemy import select

from bot.messages import GeoPoint, Inbound
from models.enums import ChatKind
from models.enums import TicketState as S
from models.tickets import Attachment, InboundLog, TicketEvent
from tests.fakes import BOT_USERNAME, make_message_update
from tests.test_telegram_flow import (
    COORD,
    GROUP,
    NAMES,
    NEIGHBOUR,
    RESIDENT,
    WORKER,
    Flow,
    report,
    tickets,
)
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed

REPEAT = "报事 南关农贸市场门口垃圾堆了三天没人清运"


async def _events(flow: Flow, kind: str) -> list[TicketEvent]:
    async with flow.tg.app.deps.sm() as s:
        return list((await s.scalars(select(TicketEvent).where(TicketEvent.kind == kind))).all())


async def test_a_hundred_copies_of_one_report_are_one_ticket(staffed: Flow) -> None:
    flow = staffed
    for _ in range(100):
        await flow.say(RESIDENT, REPEAT, chat=GROUP)
    # and once more in other spacing, punctuation and script: still the same words
    await flow.say(RESIDENT, "報事：南关农贸市场门口 垃圾堆了三天没人清运！！", chat=GROUP)
    await flow.deliver()
    made = await tickets(flow.tg)
    assert len(made) == 1
    assert len(await _events(flow, "repeat")) == 100
    cards = [x for x in flow.texts(WORKER) if "【新工单】" in x]
    assert len(cards) == 1
    group = flow.texts(GROUP)
    assert sum("同样的内容已受理" in x for x in group) == 1, group
    assert sum(f"工单号 {made[0].number}" in x for x in group) == 1
    # a new problem from the same resident is a ticket of its own
    other = await report(flow, "报事 南关村口路灯不亮了")
    assert other.id != made[0].id


async def test_a_flood_of_different_reports_is_held_for_the_community(staffed: Flow) -> None:
    flow = staffed
    texts = [f"报事 南关农贸市场门口第{i}个问题：{thing}" for i, thing in enumerate(
        ("垃圾没人清", "路灯坏了", "井盖松动", "小广告很多", "下水道堵了", "树倒了", "有积水",
         "门禁坏了"))]
    for text in texts:
        await flow.say(RESIDENT, text, chat=GROUP)
    await flow.say(NEIGHBOUR, "报事 南关村口垃圾没人清", chat=GROUP)  # a neighbour, meanwhile
    await flow.deliver()
    made = await tickets(flow.tg)
    assert len(made) == 9  # nothing lost
    mine = [t for t in made if t.reporter_user_id == str(RESIDENT)]
    held = [t for t in mine if t.unrouted]
    assert len(held) == 3
    assert all(t.state == S.REPORTED and t.grid_id is None and t.escalation_at is None
               and t.assignee_id is None for t in held)
    assert len(await _events(flow, "held")) == 3
    neighbour = next(t for t in made if t.reporter_user_id == str(NEIGHBOUR))
    assert neighbour.state == S.ASSIGNED
    cards = [x for x in flow.texts(WORKER) if "【新工单】" in x]
    assert len(cards) == 6  # five of the resident's, one of the neighbour's
    group = flow.texts(GROUP)
    assert sum("报事较多" in x for x in group) == 1, group
    told = [x for x in flow.texts(COORD) if "报事过于频繁" in x]
    assert len(told) == 1 and NAMES[RESIDENT] in told[0] and held[0].number in told[0]


async def test_thanks_and_emoji_are_never_tickets(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    _, receipt = flow.last(GROUP, tk.number)
    flow.clear()
    for text in ("谢谢", "👍", "谢谢！辛苦了", "多謝"):
        await flow.say(RESIDENT, text, chat=GROUP, reply_to_message=receipt)
    await flow.say(RESIDENT, "👍👍")  # privately
    await flow.say(RESIDENT, "谢谢")
    await flow.deliver()
    assert len(await tickets(flow.tg)) == 1
    assert flow.texts(GROUP) == []  # a group is not answered: less noise
    assert flow.texts(RESIDENT) == ["不客气！有新问题随时发给我。"] * 2


async def test_an_empty_report_asks_for_details(staffed: Flow) -> None:
    flow = staffed
    await flow.say(RESIDENT, "报事", chat=GROUP)
    await flow.say(NEIGHBOUR, f"@{BOT_USERNAME} ", chat=GROUP)
    await flow.deliver()
    assert await tickets(flow.tg) == []
    asks = [x for x in flow.texts(GROUP) if "请说说遇到了什么问题" in x]
    assert len(asks) == 1
    # a photo sent just before a bare 报事 is a report with that photo
    await flow.say(RESIDENT, photo_file_id="AgADpothole")
    await flow.say(RESIDENT, "报事")
    await flow.deliver()
    made = await tickets(flow.tg)
    assert len(made) == 1 and made[0].text == "[图片]"
    async with flow.tg.app.deps.sm() as s:
        files = (await s.scalars(select(Attachment.file_id).where(
            Attachment.ticket_id == made[0].id))).all()
    assert list(files) == ["AgADpothole"]


async def test_service_senders_are_ignored(staffed: Flow) -> None:
    flow = staffed
    bot = flow.bot
    forward = make_message_update(8001, GROUP, "supergroup", 777000, "Telegram",
                                  text="报事 频道转发的公告：停水通知", bot=bot)
    await flow.tg.feed(forward)
    anonymous = make_message_update(8002, GROUP, "supergroup", 1087968824, "Group",
                                    text="报事 管理员匿名发言", bot=bot)
    anonymous = anonymous.model_copy(update={"message": anonymous.message.model_copy(  # type: ignore[union-attr]
        update={"sender_chat": anonymous.message.chat})})  # type: ignore[union-attr]
    await flow.tg.feed(anonymous)
    await flow.deliver()
    assert await tickets(flow.tg) == []
    assert flow.texts(GROUP) == []


async def test_invisible_characters_neither_hide_report_words_nor_turn_cards(
        staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow, "报\u200b事 南关农贸市场门口\u202e垃圾没人清\u202c运")
    assert tk.text == "南关农贸市场门口垃圾没人清运"
    card = next(x for x in flow.texts(WORKER) if "【新工单】" in x)
    assert "\u202e" not in card and "垃圾没人清运" in card


async def test_a_photo_sent_after_a_report_joins_it(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    await flow.say(RESIDENT, photo_file_id="AgADafter1", chat=GROUP)
    await flow.say(RESIDENT, photo_file_id="AgADafter2", chat=GROUP)
    await flow.deliver()
    async with flow.tg.app.deps.sm() as s:
        files = (await s.scalars(select(Attachment.file_id).where(
            Attachment.ticket_id == tk.id).order_by(Attachment.id))).all()
    assert list(files) == ["AgADafter1", "AgADafter2"]
    assert flow.texts(GROUP)[-1] == f"已把照片补充到工单 {tk.number}。"
    assert sum("已把照片补充到工单" in x for x in flow.texts(GROUP)) == 2  # one for each
    assert len(await tickets(flow.tg)) == 1


async def test_an_unusable_location_is_dropped_not_fatal(staffed: Flow) -> None:
    flow = staffed
    core = flow.tg.app.core
    bad = GeoPoint(35.96, 111.85, "bd09")  # a datum the router does not convert
    await core.on_message(Inbound("telegram", "700:9001", str(RESIDENT), ChatKind.PRIVATE,
                                  str(RESIDENT), "张大妈", location=bad, message_id="9001"))
    # one stored by an older version, before locations were checked, must not sink a report
    async with flow.tg.app.deps.sm() as s, s.begin():
        s.add(InboundLog(channel="telegram", external_id="700:9002", chat_id=str(RESIDENT),
                         sender_id=str(RESIDENT), has_media=True,
                         media=[{"kind": "location", "lat": 999, "lon": 0, "datum": "bd09"}],
                         received_at=flow.tg.clock()))
    done = await core.on_message(Inbound(
        "telegram", "700:9003", str(RESIDENT), ChatKind.PRIVATE, str(RESIDENT), "张大妈",
        text="南关农贸市场门口垃圾没人清", message_id="9003"))
    assert done.kind == "report" and done.outcome is not None
    made = await tickets(flow.tg)
    assert len(made) == 1 and made[0].lat is None and made[0].state == S.ASSIGNED
