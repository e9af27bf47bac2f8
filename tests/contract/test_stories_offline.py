"""代报 on every channel (tests/contract/conftest.py): staff file a report for a resident met
face to face, in private; a resident, a group and a filing without a problem are refused.

The resident's phone is kept for the command centre's call-back only (models.wecom
ResidentContact): these stories look for it in everything anyone was sent, on the wire too.
"""

from __future__ import annotations

import json
from collections import Counter

from sqlalchemy import select, text

from models.enums import TicketState as S
from models.wecom import ResidentContact
from tests.contract.bridge import GROUP as BRIDGE_GROUP
from tests.contract.bridge import BridgeChannel
from tests.contract.channels import (
    PARTNERS,
    RESIDENTS,
    STAFF,
    TELEGRAM_IDS,
    Channel,
    ConsoleChannel,
    MinimalChannel,
    TelegramChannel,
    has,
    tickets,
    told_after,
)
from tests.contract.wechat import WeChatChannel
from tests.contract.wecom import WeComChannel
from tests.test_telegram_flow import GROUP as TELEGRAM_GROUP

PHONE = "13912345678"
FILED = f"代报 张大妈 {PHONE} 南关农贸市场门口垃圾堆了三天没人清运"
STAFF_ONLY = ("“代报”是工作人员替居民登记问题用的。您要反映问题，请直接发送“报事”加问题，"
              "例如：报事 南关村口路灯坏了。")
NOT_IN_GROUP = ("代报会带上居民的姓名和电话，不能发在群里：请撤回这条消息，改为私聊我发送。"
                "这条没有登记。")
USAGE = ("请这样发送：代报 姓名 电话 问题，例如：代报 张大妈 13800000000 南关村口路灯坏了。"
         "姓名和电话可以不写，可以附照片。")
EVERYONE = (*RESIDENTS, *STAFF, *PARTNERS)





async def _say_in_group(ch: Channel, who: str, words: str) -> bool:
    """A staff member speaking in the residents' group; False on a channel whose harness has
    no group (the WeChat Official Account and the WeCom app: each person in their own chat)."""
    if isinstance(ch, TelegramChannel):
        await ch.flow.say(TELEGRAM_IDS[who], words, chat=TELEGRAM_GROUP)
    elif isinstance(ch, ConsoleChannel):
        await ch.say(who, "/group")  # as `who`, then into the group
        await ch.console.handle(words)
    elif isinstance(ch, MinimalChannel):
        ib = ch.chat.group(ch.GROUP_ID, who, words, name=who)
        ib.received_at = ch.clock()
        await ch.app.core.on_message(ib)
    elif isinstance(ch, BridgeChannel):
        posted = await ch.connector.say(BRIDGE_GROUP, who, words, kind="group", name=who)
        assert posted.status == 200, posted
    else:
        return False
    return True


def on_the_wire(ch: Channel) -> list[str]:
    """Everything the service sent out on this channel, as sent (cards' fields included)."""
    if isinstance(ch, TelegramChannel):
        return [str(r) for r in ch.flow.bot.requests]
    if isinstance(ch, ConsoleChannel):
        return [m.text for m, _b in ch.sender.sent] + [ch.out.getvalue()]
    if isinstance(ch, MinimalChannel):
        return [m.text for m in ch.sender.sent]
    if isinstance(ch, WeChatChannel):
        return [json.dumps(c.body, ensure_ascii=False) for c in ch.stack.api.calls] \
            + [x for _who, x in ch.stack.api.log]
    if isinstance(ch, WeComChannel):
        return [json.dumps(b, ensure_ascii=False)
                for b in ch.stack.api.sent + ch.stack.api.updates]
    assert isinstance(ch, BridgeChannel)
    return [json.dumps(m, ensure_ascii=False) for m in ch.stack.connector.received]


async def _rows(ch: Channel, table: str) -> list[str]:
    async with ch.app.deps.sm() as s:
        return [repr(tuple(r)) for r in (await s.execute(text(f"SELECT * FROM {table}"))).all()]


async def _phone_kept_for_call_back_only(ch: Channel) -> None:
    for who in EVERYONE:
        assert not [x for x in ch.heard(who) if PHONE in x], (ch.name, who)
    wire = on_the_wire(ch)
    assert wire and not [x for x in wire if PHONE in x], ch.name
    assert any(PHONE in r for r in await _rows(ch, "resident_contacts"))
    for table in ("tickets", "ticket_events", "outbox"):
        assert not [r for r in await _rows(ch, table) if PHONE in r], (ch.name, table)


async def test_a_worker_files_for_a_resident_met_face_to_face(channel: Channel) -> None:
    ch = channel
    for who in ("worker", "worker3", "coord"):
        await ch.join(who)

    # 韩冬 of 社岭 meets 张大妈 at the 南关 market: the place named sends it to 南关's worker
    told = await told_after(ch, "worker3", ch.say("worker3", FILED))
    [tk] = await tickets(ch)
    n = tk.number
    assert has(told, f"已代报，工单号 {n}，已派给南关网格员"), told
    assert (tk.channel, tk.reporter_name, tk.state) == ("offline", "张大妈", S.ASSIGNED)
    assert tk.text == "南关农贸市场门口垃圾堆了三天没人清运"
    assert ch.app.deps.county.index.grid_name(tk.grid_id) == "南关"
    assert has(ch.heard("worker"), f"【代报工单】{n}"), ch.heard("worker")
    async with ch.app.deps.sm() as s:
        kept = (await s.execute(select(ResidentContact.ticket_id, ResidentContact.name,
                                       ResidentContact.mobile))).all()
    assert [tuple(r) for r in kept] == [(tk.id, "张大妈", PHONE)]

    # the worker works it as any ticket; nobody can confirm it in chat
    await ch.choose("worker", "接单", n)
    await ch.deliver()
    told = await told_after(ch, "worker", ch.say("worker", f"办结 {n} 已清运"))
    assert has(told, f"已办结：{n}。报事人无法在线确认，3 天后自动结案。"), told
    [tk] = await tickets(ch)
    assert tk.state == S.RESOLVED
    # the group the residents read heard nothing of it
    assert not has(ch.heard("resident"), n), ch.heard("resident")
    assert has(on_the_wire(ch), f"【代报工单】{n}", "张大妈")  # the wire is the card's too
    await _phone_kept_for_call_back_only(ch)


async def test_a_resident_a_group_and_no_problem_are_refused(channel: Channel) -> None:
    ch = channel
    for who in ("worker", "coord"):
        await ch.join(who)

    told = await told_after(ch, "resident", ch.say("resident", FILED))
    assert has(told, STAFF_ONLY), told

    before = Counter(ch.heard("resident"))
    if await _say_in_group(ch, "worker", FILED):
        await ch.deliver()
        # the residents' group hears why, and not the phone
        told = list((Counter(ch.heard("resident")) - before).elements())
        assert told == [NOT_IN_GROUP], told

    told = await told_after(ch, "worker", ch.say("worker", f"代报 张大妈 {PHONE}"))
    assert has(told, USAGE), told
    told = await told_after(ch, "coord", ch.say("coord", "代报"))
    assert has(told, USAGE), told

    assert await tickets(ch) == []
    async with ch.app.deps.sm() as s:
        assert (await s.scalars(select(ResidentContact))).all() == []
    for who in EVERYONE:
        assert not [x for x in ch.heard(who) if PHONE in x], (ch.name, who)
    assert not [x for x in on_the_wire(ch) if PHONE in x], ch.name
