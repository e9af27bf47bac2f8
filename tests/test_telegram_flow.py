"""End to end through aiogram: real Updates into the real Dispatcher, real SQLite, real outbox.

Assertions are on what the bot actually sent (the recording session) and on the tickets.
What is the same on every channel is told in tests/contract/ (Telegram is one of its channels);
what stays here is Telegram's own: groups and their rights, quoting, deep links, forged
callback data, toasts, HTML, albums and redelivered updates.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    GetChatMember,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
)
from aiogram.types import InlineKeyboardMarkup, Message, User
from shapely.geometry import shape
from sqlalchemy import func, select

from bot.county.files import CountyData
from bot.notify.compose import local
from bot.people.onboarding import create_invite
from bot.tickets import sweeper
from models.enums import StaffRole
from models.enums import TicketState as S
from models.people import ChatBinding
from models.tickets import Attachment, Ticket, TicketEvent
from tests.conftest import TgHarness
from tests.fakes import BOT_ID, BOT_USERNAME, make_callback_update, make_message_update

GROUP = -1001001
GROUP_TITLE = "南关居民群"
WORKER, LEADER, COORD, CENTRE, WORKER3 = 501, 502, 503, 504, 511
RESIDENT, NEIGHBOUR = 700, 701
NAMES = {WORKER: "郑波", LEADER: "谢娟", COORD: "周主任", CENTRE: "指挥中心值班员", WORKER3: "韩冬",
         RESIDENT: "张大妈", NEIGHBOUR: "李大爷"}
NUMBER = re.compile(r"FS-\d{8}-\d{4}")
PHONE = re.compile(r"1\d{10}|\d{3}\*{4}\d{4}")
NOT_ALLOWED = "抱歉，您无权处理这张工单。"
NOT_YOURS = "只能查询您自己报的工单。"
REPORT = "报事 南关农贸市场门口垃圾堆了三天没人清运，臭得很"


class Flow:
    """People talking to the bot; every call is one Update through the Dispatcher."""

    def __init__(self, tg: TgHarness) -> None:
        self.tg = tg
        self.bot = tg.bot
        self._update = 0

    def _next(self) -> int:
        self._update += 1
        return self._update

    async def say(self, user: int, text: str | None = None, *, chat: int | None = None,
                  **kw: Any) -> int:
        """A message from `user` (in private unless `chat` is given); returns its message id."""
        chat = user if chat is None else chat
        uid = self._next()
        kw.setdefault("chat_title", GROUP_TITLE if chat < 0 else None)
        await self.tg.feed(make_message_update(
            uid, chat, "private" if chat > 0 else "supergroup", user, NAMES.get(user, "居民"),
            text=text, bot=self.bot, **kw))
        return uid

    async def tap(self, user: int, data: str, chat: int, message_id: int) -> AnswerCallbackQuery:
        """Press a button (any data: Telegram passes on whatever the client sends)."""
        await self.tg.feed(make_callback_update(
            self._next(), user, data, chat, message_id, user_name=NAMES.get(user, "居民"),
            chat_type="private" if chat > 0 else "supergroup", bot=self.bot))
        answers = self.bot.requests_of(AnswerCallbackQuery)
        assert answers, "the button press was not answered"
        return answers[-1]

    async def press(self, user: int, chat: int, label: str,
                    contains: str = "") -> AnswerCallbackQuery:
        """Press the button labelled `label` on the latest message to `chat` that has it."""
        msg, data = self.button(chat, label, contains)
        return await self.tap(user, data, chat, msg.message_id)

    def sent(self, chat: int) -> list[tuple[Any, Message]]:
        """(request, resulting Message) for every message delivered to `chat`, in order."""
        out = []
        for req, res in zip(self.bot.requests, self.bot.session.results, strict=True):
            if isinstance(req, SendMessage | SendPhoto) and str(req.chat_id) == str(chat):
                out.append((req, res))
            elif isinstance(req, SendMediaGroup) and str(req.chat_id) == str(chat):
                out += [(req, m) for m in res]
        return out

    def texts(self, chat: int) -> list[str]:
        return [_text(req) for req, _ in self.sent(chat) if _text(req)]

    def last(self, chat: int, contains: str = "") -> tuple[Any, Message]:
        hits = [(r, m) for r, m in self.sent(chat) if contains in _text(r)]
        assert hits, f"nothing sent to {chat} containing {contains!r}: {self.texts(chat)}"
        return hits[-1]

    def button(self, chat: int, label: str, contains: str = "") -> tuple[Message, str]:
        for req, msg in reversed(self.sent(chat)):
            if contains not in _text(req):
                continue
            for text, data in buttons(req).items():
                if text == label:
                    return msg, data
        raise AssertionError(f"no button {label!r} sent to {chat}: {self.texts(chat)}")

    async def deliver(self) -> int:
        return await self.tg.deliver()

    def clear(self) -> None:
        self.bot.session.clear()


def _text(req: Any) -> str:
    return getattr(req, "text", None) or getattr(req, "caption", None) or ""


def buttons(req: Any) -> dict[str, str]:
    kb = getattr(req, "reply_markup", None)
    if not isinstance(kb, InlineKeyboardMarkup):
        return {}
    return {b.text: b.callback_data or b.url or "" for row in kb.inline_keyboard for b in row}


def plain(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


async def invite(tg: TgHarness, role: StaffRole, *, grid: str | None = None,
                 community: str | None = None) -> str:
    """What `run_bot.py invite` does, on the test's database and clock."""
    async with tg.app.deps.sm() as s, s.begin():
        inv = await create_invite(s, role, grid=grid, community=community, now=tg.clock(),
                                  ttl_days=tg.app.settings.invite_ttl_days)
    return inv.code


async def tickets(tg: TgHarness) -> list[Ticket]:
    async with tg.app.deps.sm() as s:
        return list((await s.scalars(select(Ticket).order_by(Ticket.id))).all())


async def ticket(tg: TgHarness, number: str | None = None) -> Ticket:
    rows = await tickets(tg)
    if number is None:
        assert len(rows) == 1, [t.number for t in rows]
        return rows[0]
    return next(t for t in rows if t.number == number)


async def events(tg: TgHarness, ticket_id: int) -> list[TicketEvent]:
    async with tg.app.deps.sm() as s:
        return list((await s.scalars(select(TicketEvent).where(
            TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id))).all())


async def count(tg: TgHarness, model: Any) -> int:
    async with tg.app.deps.sm() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def flow(tg: TgHarness) -> Flow:
    return Flow(tg)


STAFF = {
    WORKER: (StaffRole.WORKER, "FN-02", None),
    LEADER: (StaffRole.LEADER, "FN-02", None),
    COORD: (StaffRole.COORDINATOR, None, "FN"),
    CENTRE: (StaffRole.CENTRE, None, None),
    WORKER3: (StaffRole.WORKER, "FN-03", None),
}


async def onboard(flow: Flow, *people: int) -> Flow:
    """Each of `people` redeems an invite for their role in private."""
    for user in people:
        role, grid, community = STAFF[user]
        code = await invite(flow.tg, role, grid=grid, community=community)
        await flow.say(user, f"/start {code}")
    await flow.deliver()
    assert all(any("绑定成功" in x for x in flow.texts(u)) for u in people)
    flow.clear()
    return flow


@pytest.fixture
async def staffed(flow: Flow) -> Flow:
    """FN-02's worker and leader, FN's coordinator and FN-03's worker have redeemed invites."""
    return await onboard(flow, WORKER, LEADER, COORD, WORKER3)


async def report(flow: Flow, text: str = REPORT, user: int = RESIDENT, **kw: Any) -> Ticket:
    """A resident reports in the group; returns the new ticket (delivered already)."""
    before = {t.id for t in await tickets(flow.tg)}
    await flow.say(user, text, chat=GROUP, **kw)
    await flow.deliver()
    new = [t for t in await tickets(flow.tg) if t.id not in before]
    assert len(new) == 1, f"expected one new ticket, got {len(new)}"
    return new[0]


async def resolve(flow: Flow, tk: Ticket, note: str) -> None:
    """The worker taps 办结 on the card and sends the resolution note."""
    await flow.press(WORKER, WORKER, "办结", tk.number)
    await flow.deliver()
    await flow.say(WORKER, note)
    await flow.deliver()


# --------------------------------------------------------------------------- 1. onboarding

async def test_reused_or_expired_invite_is_refused(flow: Flow) -> None:
    tg = flow.tg
    code = await invite(tg, StaffRole.WORKER, grid="FN-02")
    await flow.say(WORKER, f"/start {code}")
    await flow.say(NEIGHBOUR, f"/start {code}")  # the same code again, by someone else
    old = await invite(tg, StaffRole.COORDINATOR, community="FN")
    tg.clock.advance(days=tg.app.settings.invite_ttl_days, seconds=1)
    await flow.say(COORD, f"/start {old}")
    await flow.say(RESIDENT, "/start NOSUCHCODE")
    await flow.deliver()
    bad = "邀请码无效或已过期，请联系社区重新获取。"
    assert flow.texts(WORKER) == ["绑定成功：您现在是 南关网格 的网格员。"]
    assert flow.texts(NEIGHBOUR) == [bad]
    assert flow.texts(COORD) == [bad]
    assert flow.texts(RESIDENT) == [bad]
    # the refused coordinator has no standing: binding a group is refused
    flow.clear()
    await flow.say(COORD, "/bind FN-02", chat=GROUP)
    await flow.deliver()
    assert flow.texts(GROUP) == ["只有社区工作人员或指挥中心可以绑定群。"]


# --------------------------------------------------------------------------- 2. /bind

async def test_bind_group_by_coordinator_and_refused_for_resident(staffed: Flow) -> None:
    flow = staffed
    await flow.say(NEIGHBOUR, "/bind FN-02", chat=GROUP)
    await flow.deliver()
    assert flow.texts(GROUP) == ["只有社区工作人员或指挥中心可以绑定群。"]
    assert await count(flow.tg, ChatBinding) == 0

    flow.clear()
    mid = await flow.say(COORD, "/bind FN-02", chat=GROUP)
    await flow.deliver()
    req, _ = flow.last(GROUP)
    assert flow.texts(GROUP) == [
        "本群已绑定到 南关网格。群里@我、回复我，或以“报事”开头的消息会生成工单。"]
    assert req.reply_parameters.message_id == mid
    async with flow.tg.app.deps.sm() as s:
        binding = await s.scalar(select(ChatBinding))
    assert binding is not None and binding.chat_id == str(GROUP)
    assert binding.title == GROUP_TITLE

    # now a report naming no place goes to the group's grid
    flow.clear()
    tk = await report(flow, "报事 楼道里路灯坏了好几天")
    assert flow.tg.app.deps.county.index.grid_name(tk.grid_id) == "南关"
    assert "南关网格" in plain(flow.texts(GROUP)[0])


async def test_bind_warns_when_bot_cannot_read_group(flow: Flow) -> None:
    session = flow.bot.session  # privacy mode on, and the bot is a plain member of the group
    session.bot_user = User(id=BOT_ID, is_bot=True, first_name="网格报事助手",
                            username=BOT_USERNAME, can_read_all_group_messages=False)
    session.admin_ids.clear()
    await onboard(flow, COORD)
    await flow.say(COORD, "/bind FN-02", chat=GROUP)
    await flow.deliver()
    asked = flow.bot.requests_of(GetChatMember)
    assert [(str(m.chat_id), m.user_id) for m in asked] == [(str(GROUP), BOT_ID)]
    texts = flow.texts(GROUP)
    assert texts[0].startswith("本群已绑定到 南关网格")
    assert len(texts) == 2 and "隐私模式" in texts[1] and "/setprivacy" in texts[1]


async def test_bind_says_nothing_about_privacy_when_bot_is_admin(flow: Flow) -> None:
    session = flow.bot.session
    session.bot_user = User(id=BOT_ID, is_bot=True, first_name="网格报事助手",
                            username=BOT_USERNAME, can_read_all_group_messages=False)
    await onboard(flow, COORD)  # the session makes the bot an admin by default
    await flow.say(COORD, "/bind FN-02", chat=GROUP)
    await flow.deliver()
    assert flow.bot.requests_of(GetChatMember)
    assert flow.texts(GROUP) == [
        "本群已绑定到 南关网格。群里@我、回复我，或以“报事”开头的消息会生成工单。"]


# --------------------------------------------------------------------------- 3. group reports

async def test_group_report_gets_ticket_number_grid_and_follow_link(staffed: Flow) -> None:
    flow = staffed
    await flow.say(NEIGHBOUR, "今天天气不错，南关那边垃圾车来了吗", chat=GROUP)
    await flow.deliver()
    assert await tickets(flow.tg) == []
    assert flow.sent(GROUP) == []

    await flow.say(NEIGHBOUR, "/start@grid_intake_bot", chat=GROUP)  # commands aren't reports
    await flow.say(NEIGHBOUR, "/weather@other_bot 南关", chat=GROUP)
    await flow.deliver()
    assert await tickets(flow.tg) == []

    mid = await flow.say(RESIDENT, REPORT, chat=GROUP)
    await flow.deliver()
    tk = await ticket(flow.tg)
    assert NUMBER.fullmatch(tk.number)
    assert tk.number == "FS-20260303-0001"  # the day in Shanghai, counting from 1
    assert tk.state == S.ASSIGNED
    req, _ = flow.last(GROUP)
    assert req.reply_parameters.message_id == mid
    assert f'<a href="tg://user?id={RESIDENT}">张大妈</a>' in req.text
    body = plain(req.text)
    assert f"工单号 {tk.number}" in body and "南关网格" in body
    assert f"https://t.me/{BOT_USERNAME}?start=t_{tk.number}" in body


async def test_mention_and_reply_to_bot_also_report(staffed: Flow) -> None:
    flow = staffed
    first = await report(flow, f"@{BOT_USERNAME} 南关村口的下水道堵了")
    assert first.text == "南关村口的下水道堵了"
    _, reply = flow.last(GROUP, first.number)
    second = await report(flow, "汽车站门口井盖丢了，很危险", user=NEIGHBOUR,
                          reply_to_message=reply)
    assert second.number != first.number
    assert second.reporter_user_id == str(NEIGHBOUR)
    assert flow.tg.app.deps.county.index.grid_name(second.grid_id) == "南关"
    assert second.number in flow.texts(GROUP)[-1]


async def test_no_phone_number_in_any_group_text(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    await flow.press(WORKER, WORKER, "接单", tk.number)
    await flow.deliver()
    await flow.say(RESIDENT, tk.number, chat=GROUP)
    await flow.say(RESIDENT, "/my", chat=GROUP)
    await flow.deliver()
    texts = flow.texts(GROUP)
    assert len(texts) >= 4
    assert any("郑波" in x for x in texts)  # the worker is named ...
    for text in texts:  # ... but no phone of anyone, full or masked
        assert not PHONE.search(text), text
        assert "13903572201" not in text


# --------------------------------------------------------------------------- 4. the worker's card

async def test_worker_card_shows_the_ticket_and_buttons(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    req, _ = flow.last(WORKER, "【新工单】")
    body = req.text
    tz = flow.tg.app.deps.sla.tz
    for part in (tk.number, "类别：环境卫生", "地点：南关农贸市场",
                 "内容：南关农贸市场门口垃圾堆了三天没人清运，臭得很", "报事人：张大妈",
                 # reported Tuesday 10:00: 2 working hours to acknowledge, 3 workdays to resolve
                 "接单时限：03-03 12:00", "办结时限：03-06 18:00"):
        assert part in body, part
    assert local(tk.ack_due_at, tz) == "03-03 12:00"
    assert list(buttons(req)) == ["接单", "办结", "退回", "转派", "改类别"]
    assert buttons(req)["接单"] == f"t1:ack:{tk.id}:"
    # only the worker got it; the leader and other grids' workers did not
    assert flow.sent(LEADER) == [] and flow.sent(WORKER3) == []


async def test_ack_progress_resolve_and_satisfied(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    answer = await flow.press(WORKER, WORKER, "接单", tk.number)
    assert answer.text == (f"已接单：{tk.number}。"
                           f"补充进展：回复这条消息，或发送“进展 {tk.number} 内容”。")
    assert not answer.show_alert
    await flow.deliver()
    assert (await ticket(flow.tg)).state == S.ACKNOWLEDGED
    assert f"您的工单 {tk.number} 已由网格员郑波接单。" in plain(flow.texts(GROUP)[-1])

    # the worker replies to the card with a progress note
    _, card = flow.last(WORKER, "【新工单】")
    await flow.say(WORKER, "已联系环卫所，下午来车", reply_to_message=card)
    await flow.deliver()
    assert flow.texts(WORKER)[-1] == f"进展已记录：{tk.number}。"
    assert f"工单 {tk.number} 有新进展：已联系环卫所，下午来车" in plain(flow.texts(GROUP)[-1])
    assert (await ticket(flow.tg)).state == S.IN_PROGRESS

    # 办结 asks for a note; a photo with a caption answers it
    answer = await flow.press(WORKER, WORKER, "办结", "已接单")
    assert "办结说明" in answer.text
    await flow.deliver()
    assert "请发送办结说明" in flow.texts(WORKER)[-1]
    await flow.say(WORKER, caption="垃圾已清运，地面已冲洗", photo_file_id="done-photo-1")
    await flow.deliver()
    assert flow.texts(WORKER)[-1] == f"已办结：{tk.number}，等待居民确认。"
    req, rated = flow.last(GROUP, "请确认并评价")
    assert isinstance(req, SendPhoto) and req.photo == "done-photo-1"
    assert f"工单 {tk.number} 已办结：垃圾已清运，地面已冲洗" in plain(req.caption)
    assert list(buttons(req)) == ["满意", "基本满意", "不满意"]
    tk = await ticket(flow.tg)
    assert tk.state == S.RESOLVED and tk.resolution_note == "垃圾已清运，地面已冲洗"
    async with flow.tg.app.deps.sm() as s:
        kinds = (await s.execute(select(Attachment.role, Attachment.file_id))).all()
    assert ("resolution", "done-photo-1") in [tuple(k) for k in kinds]

    answer = await flow.tap(RESIDENT, buttons(req)["满意"], GROUP, rated.message_id)
    assert answer.text == f"感谢评价！工单 {tk.number} 已结案。"
    tk = await ticket(flow.tg)
    assert tk.state == S.CLOSED and tk.satisfaction == "satisfied"
    assert tk.closed_at is not None
    edit = flow.bot.requests_of(EditMessageReplyMarkup)[-1]  # the choice is made: no buttons
    assert edit.message_id == rated.message_id and edit.reply_markup is None
    again = await flow.tap(RESIDENT, buttons(req)["不满意"], GROUP, rated.message_id)
    assert again.show_alert and (await ticket(flow.tg)).state == S.CLOSED


async def test_reply_to_another_card_while_resolving_is_progress_for_that_ticket(
        staffed: Flow) -> None:
    flow = staffed
    first = await report(flow)
    second = await report(flow, "报事 汽车站门口路灯坏了", user=NEIGHBOUR)
    await flow.press(WORKER, WORKER, "办结", first.number)  # asks for the note of the first
    await flow.deliver()
    _, card = flow.last(WORKER, second.number)
    await flow.say(WORKER, "已报修，明天来换灯", reply_to_message=card)
    await flow.deliver()
    assert flow.texts(WORKER)[-1] == f"进展已记录：{second.number}。"
    assert (await ticket(flow.tg, first.number)).state == S.ASSIGNED
    await flow.say(WORKER, "垃圾已清运")  # the pending question still belongs to the first
    await flow.deliver()
    first = await ticket(flow.tg, first.number)
    assert first.state == S.RESOLVED and first.resolution_note == "垃圾已清运"
    assert (await ticket(flow.tg, second.number)).resolution_note is None


async def test_private_report_from_a_resident_who_started_the_bot(staffed: Flow) -> None:
    flow = staffed
    await flow.say(RESIDENT, "/start")
    await flow.say(RESIDENT, "南关农贸市场门口垃圾没人管")
    await flow.say(RESIDENT, "还有路灯也坏了")  # no place: asked, and the next message answers
    await flow.say(RESIDENT, "南关村口")
    await flow.deliver()
    texts = flow.texts(RESIDENT)
    assert texts[0].startswith("您好，我是网格报事助手")
    first, second = await tickets(flow.tg)
    assert texts[1] == (f"已受理，工单号 {first.number}。"
                        "已派给南关网格员处理，办理进度会及时告诉您。")
    assert "t.me" not in "\n".join(texts)  # already following in private
    asked = next(i for i, x in enumerate(texts) if "没能确定具体位置" in x)
    assert second.number in texts[asked]
    assert texts[-1] == f"好的，工单 {second.number} 已派给南关网格员。"
    assert first.state == second.state == S.ASSIGNED
    assert flow.sent(GROUP) == []
    await flow.press(WORKER, WORKER, "接单", second.number)
    await flow.deliver()
    assert flow.texts(RESIDENT)[-1] == f"您的工单 {second.number} 已由网格员郑波接单。"


async def test_stray_private_message_from_staff_is_not_a_ticket(staffed: Flow) -> None:
    """Workers talk to the bot about their cards; a message that is not a reply gets a hint."""
    flow = staffed
    tk = await report(flow)
    await flow.say(WORKER, "已经到现场了，正在清运")  # meant for the card, but not a reply
    await flow.say(WORKER, photo_file_id="AgADworkerphoto")
    await flow.deliver()
    hint = ("您是网格工作人员：要给工单发进展，请回复（引用）那张工单卡片，"
            "或发送“进展 工单号 内容”。"
            "发送“我的工单”查看您负责的工单；要以居民身份报事，请以“报事”开头。")
    assert flow.texts(WORKER)[-2:] == [hint, hint]
    assert [x.number for x in await tickets(flow.tg)] == [tk.number]
    # what staff can still do in private: get the card back by its number, report as a resident
    await flow.say(WORKER, tk.number)
    await flow.deliver()
    card, _ = flow.last(WORKER)
    assert card.text.startswith(f"【新工单】{tk.number}") and "接单" in buttons(card)
    await flow.say(WORKER, "报事 南关村口井盖松动了")
    await flow.deliver()
    all_tickets = await tickets(flow.tg)
    assert len(all_tickets) == 2 and all_tickets[1].reporter_user_id == str(WORKER)
    assert all_tickets[1].text == "南关村口井盖松动了"
    assert flow.texts(WORKER)[-2].startswith(f"已受理，工单号 {all_tickets[1].number}")


# --------------------------------------------------------------------------- 5. return, transfer

async def test_coordinator_cannot_assign_outside_their_community(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    await flow.press(WORKER, WORKER, "退回", tk.number)
    await flow.say(WORKER, "不归我管")
    await flow.deliver()
    n_events = len(await events(flow.tg, tk.id))
    answer = await flow.tap(COORD, f"t1:assign:{tk.id}:QF-02", COORD, 1_000_000)  # 栖凤's grid
    assert answer.show_alert and answer.text == NOT_ALLOWED
    tk = await ticket(flow.tg)
    assert tk.state == S.RETURNED and len(await events(flow.tg, tk.id)) == n_events


async def test_transfer_offers_neighbours_and_moves_ticket(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    answer = await flow.press(WORKER, WORKER, "转派", tk.number)
    assert answer.text == "转派到哪个网格？"
    await flow.deliver()
    req, _ = flow.last(WORKER, "转派到哪个网格")
    offered = list(buttons(req))
    assert {"府南·机械厂", "府南·社岭", "府南·文坛"} <= set(offered)
    assert "府南·南关" not in offered and offered[-1] == "取消"

    answer = await flow.press(WORKER, WORKER, "府南·社岭", "转派到哪个网格")
    assert answer.text == f"已转派：{tk.number} → 社岭。"
    await flow.deliver()
    tk = await ticket(flow.tg)
    assert flow.tg.app.deps.county.index.grid_name(tk.grid_id) == "社岭"
    assert tk.state == S.ASSIGNED
    card, _ = flow.last(WORKER3, tk.number)
    assert card.text.startswith(f"【转派工单】{tk.number}")
    assert f"工单 {tk.number} 已转由社岭网格处理。" in plain(flow.texts(GROUP)[-1])
    # the old worker can no longer act on it
    answer = await flow.press(WORKER, WORKER, "接单", "【新工单】")
    assert answer.show_alert and (await ticket(flow.tg)).state == S.ASSIGNED


# --------------------------------------------------------------------------- 6. routing questions

@pytest.mark.parametrize(("text", "choices"), [
    ("报事 信家坡小区路灯不亮", {"信家坡小区（信家坡网格）", "信家坡小区（文坛网格）"}),  # split
    ("报事 南关农贸市场和社岭小区之间路灯坏了",
     {"南关农贸市场（南关网格）", "社岭小区（社岭网格）"}),
], ids=["split-place", "two-places"])
async def test_ambiguous_place_asks_and_reporter_chooses(staffed: Flow, text: str,
                                                         choices: set[str]) -> None:
    flow = staffed
    tk = await report(flow, text)
    assert tk.state == S.REPORTED and tk.grid_id is None
    req, _ = flow.last(GROUP, tk.number)
    assert "请问是在哪个位置" in req.text
    assert set(buttons(req)) == choices | {"都不是"}

    pick = "社岭小区（社岭网格）" if "社岭小区（社岭网格）" in choices else "信家坡小区（文坛网格）"
    answer = await flow.press(NEIGHBOUR, GROUP, pick, tk.number)  # not the reporter
    assert answer.show_alert and answer.text == "只有报事人可以选择地点。"
    assert (await ticket(flow.tg)).state == S.REPORTED

    answer = await flow.press(RESIDENT, GROUP, pick, tk.number)
    assert not answer.show_alert
    await flow.deliver()
    tk = await ticket(flow.tg)
    assert tk.state == S.ASSIGNED
    grid = flow.tg.app.deps.county.index.grid_name(tk.grid_id)
    assert f"（{grid}网格）" in pick
    assert f"工单 {tk.number} 已派给" in plain(flow.texts(GROUP)[-1])
    if grid == "社岭":
        assert flow.last(WORKER3, tk.number)


async def test_none_of_these_sends_it_to_the_coordinators(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow, "报事 信家坡小区路灯不亮")
    answer = await flow.press(RESIDENT, GROUP, "都不是", tk.number)
    assert answer.text == f"工单 {tk.number} 暂未确定网格，已转社区工作人员处理。"
    await flow.deliver()
    tk = await ticket(flow.tg)
    assert tk.unrouted and tk.state == S.REPORTED
    # both candidates are in 府南, so 府南's coordinator gets it, and can act on it
    req, _ = flow.last(COORD, "【待分派】")
    assert {"府南·信家坡", "府南·文坛"} <= set(buttons(req))
    flow.clear()
    await flow.say(COORD, "/queue")
    await flow.deliver()
    assert any(tk.number in x for x in flow.texts(COORD))
    answer = await flow.press(COORD, COORD, "府南·文坛", tk.number)
    assert answer.text == f"已派单：{tk.number} → 文坛。" and not answer.show_alert
    assert (await ticket(flow.tg)).state == S.ASSIGNED


async def test_unknown_place_is_asked_then_swept_to_coordinator(staffed: Flow) -> None:
    flow = staffed
    await flow.say(COORD, "/bind FN", chat=GROUP)  # a community-wide group: no grid to fall back on
    await flow.deliver()
    flow.clear()
    tk = await report(flow, "报事 楼下有人乱扔垃圾")
    assert tk.state == S.REPORTED and tk.route_status == "unknown"
    assert "没能确定具体位置" in flow.texts(GROUP)[-1]
    await sweeper.sweep_once(flow.tg.app.deps)
    assert not (await ticket(flow.tg)).unrouted  # not yet due

    flow.tg.clock.advance(minutes=flow.tg.app.settings.route_answer_minutes + 1)
    assert await sweeper.sweep_once(flow.tg.app.deps) == 1
    await flow.deliver()
    tk = await ticket(flow.tg)
    assert tk.unrouted and tk.state == S.REPORTED and tk.escalation_at is None
    req, _ = flow.last(COORD, "【待分派】")
    assert tk.number in req.text and "楼下有人乱扔垃圾" in req.text
    assert "府南·南关" in buttons(req)
    assert f"工单 {tk.number} 暂未确定网格" in plain(flow.texts(GROUP)[-1])
    # the coordinator's queue lists it, and assigning from there works
    flow.clear()
    await flow.say(COORD, "/queue")
    await flow.deliver()
    assert flow.texts(COORD)[0] == "待分派工单："
    await flow.press(COORD, COORD, "府南·南关", tk.number)
    await flow.deliver()
    assert (await ticket(flow.tg)).state == S.ASSIGNED
    assert flow.last(WORKER, tk.number)


async def test_unknown_place_answered_by_replying_in_group(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow, "报事 楼下有人乱扔垃圾")
    _, ask = flow.last(GROUP, "没能确定具体位置")
    await flow.say(RESIDENT, "就在我家楼下", chat=GROUP, reply_to_message=ask)  # still unknown
    await flow.deliver()
    assert len(await tickets(flow.tg)) == 1
    _, asked_again = flow.last(GROUP, "没能确定具体位置")
    assert asked_again.message_id != ask.message_id
    await flow.say(RESIDENT, "南关农贸市场旁边", chat=GROUP, reply_to_message=asked_again)
    await flow.deliver()
    rows = await tickets(flow.tg)
    assert len(rows) == 1, "the answer must not open a second ticket"
    tk = rows[0]
    assert tk.state == S.ASSIGNED
    assert flow.tg.app.deps.county.index.grid_name(tk.grid_id) == "南关"
    assert flow.last(WORKER, tk.number)


# --------------------------------------------------------------------------- 7. queries

async def test_follow_link_start_shows_status_privately(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    await flow.say(RESIDENT, f"/start t_{tk.number}")
    await flow.say(NEIGHBOUR, f"/start t_{tk.number}")  # not theirs: just a welcome
    await flow.deliver()
    mine = "\n".join(flow.texts(RESIDENT))
    assert f"已关注工单 {tk.number}" in mine and "状态：已派单" in mine
    assert tk.number not in "\n".join(flow.texts(NEIGHBOUR))
    # from now on the resident hears about it in private, not in the group
    group_before = len(flow.texts(GROUP))
    await flow.press(WORKER, WORKER, "接单", tk.number)
    await flow.deliver()
    assert f"您的工单 {tk.number} 已由网格员郑波接单。" in flow.texts(RESIDENT)[-1]
    assert len(flow.texts(GROUP)) == group_before


# --------------------------------------------------------------------------- 8. security

@pytest.mark.parametrize("forged", [
    "garbage",
    "t1:nuke:{mine}:",  # a valid-looking prefix, an op we never issue
    "t1:ack:{mine}",  # malformed
    "t1:ack:0:",
    "t1:ack:999999:",  # no such ticket
    "t1:ack:{other}:",  # someone else's ticket (FN-03's)
    "t1:resolve:{other}:",
    "t1:transfer_to:{other}:FN-02",
    "t1:setcat:{mine}:NOT_A_CATEGORY",
    "t1:assign:{mine}:FN-03",  # a worker may not assign
    "t1:rate:{mine}:satisfied",  # the worker is not the reporter
    "t1:place:{mine}:FN-03",
    "t1:transfer_to:{mine}:QF-02",  # not a neighbour of FN-02: never offered
    "t1:pickcomm:{mine}:FN",  # only the command centre picks a community
])
async def test_forged_callback_is_refused_and_changes_nothing(staffed: Flow, forged: str) -> None:
    flow = staffed
    mine = await report(flow)
    other = await report(flow, "报事 社岭小区门口垃圾没人清", user=NEIGHBOUR)
    assert flow.last(WORKER3, other.number)

    async def snapshot() -> list[tuple[Any, ...]]:
        return [(len(await events(flow.tg, t.id)), t.state, t.grid_id, t.category,
                 t.assignee_id) for t in await tickets(flow.tg)]

    before = await snapshot()
    flow.clear()
    answer = await flow.tap(WORKER, forged.format(mine=mine.id, other=other.id), WORKER,
                            1_000_000)
    assert answer.show_alert
    refusals = (NOT_ALLOWED, "只有报事人可以选择地点。", "只有报事人可以评价这张工单。")
    assert answer.text in refusals or "已处理，当前状态" in answer.text
    assert await snapshot() == before
    assert await flow.deliver() == 0


async def test_resident_or_other_worker_tapping_card_buttons_is_refused(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    _, data = flow.button(WORKER, "接单", tk.number)
    n_events = len(await events(flow.tg, tk.id))
    for intruder, chat in ((RESIDENT, RESIDENT), (WORKER3, WORKER3), (NEIGHBOUR, GROUP)):
        answer = await flow.tap(intruder, data, chat, 1_000_000)
        assert answer.show_alert and answer.text == NOT_ALLOWED
    for op in ("resolve", "return", "transfer", "cat"):
        answer = await flow.tap(RESIDENT, f"t1:{op}:{tk.id}:", RESIDENT, 1_000_000)
        assert answer.show_alert, op
    assert (await ticket(flow.tg)).state == S.ASSIGNED
    assert len(await events(flow.tg, tk.id)) == n_events
    assert await flow.deliver() == 0


async def test_second_tap_on_a_card_is_stale(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    first = await flow.press(WORKER, WORKER, "接单", tk.number)
    n_events = len(await events(flow.tg, tk.id))
    again = await flow.press(WORKER, WORKER, "接单", "【新工单】")
    assert not first.show_alert and again.show_alert
    assert again.text == "这张工单已处理，当前状态：已接单。本次操作未执行。"
    assert len(await events(flow.tg, tk.id)) == n_events


async def test_html_in_names_and_text_is_escaped(staffed: Flow) -> None:
    flow = staffed
    NAMES[888] = "<b>王</b>"
    try:
        await report(flow, "报事 南关村 <script>x</script> 垃圾", user=888)
    finally:
        del NAMES[888]
    group = flow.texts(GROUP)[-1]
    card, _ = flow.last(WORKER, "【新工单】")
    assert "&lt;b&gt;王&lt;/b&gt;" in group and "<b>" not in group
    assert "&lt;script&gt;" in card.text and "<script>" not in card.text


async def test_same_update_twice_makes_one_ticket_and_one_reply(staffed: Flow) -> None:
    flow = staffed
    update = make_message_update(9001, GROUP, "supergroup", RESIDENT, "张大妈", text=REPORT,
                                 chat_title=GROUP_TITLE, bot=flow.bot)
    await flow.tg.feed(update)
    await flow.tg.feed(update)
    await flow.deliver()
    await flow.tg.feed(update)  # redelivered after everything went out
    await flow.deliver()
    assert len(await tickets(flow.tg)) == 1
    assert len(flow.sent(GROUP)) == 1
    assert len(flow.sent(WORKER)) == 1


async def test_same_note_twice_reaches_the_resident_once(staffed: Flow) -> None:
    flow = staffed
    tk = await report(flow)
    _, card = flow.last(WORKER, tk.number)
    note = make_message_update(9002, WORKER, "private", WORKER, "郑波", text="已联系环卫所",
                               reply_to_message=card, bot=flow.bot)
    await flow.tg.feed(note)
    await flow.tg.feed(note)
    await flow.deliver()
    assert sum("有新进展" in x for x in flow.texts(GROUP)) == 1
    assert flow.texts(WORKER).count(f"进展已记录：{tk.number}。") == 1
    assert [e.kind for e in await events(flow.tg, tk.id)].count("note") == 1
    assert len(await tickets(flow.tg)) == 1


async def test_photos_sent_shortly_before_the_report_are_attached(staffed: Flow) -> None:
    flow = staffed
    now = int(flow.tg.clock().timestamp())
    await flow.say(RESIDENT, chat=GROUP, photo_file_id="too-old", date=now - 300)
    await flow.say(RESIDENT, chat=GROUP, photo_file_id="recent", date=now - 90)
    await flow.say(NEIGHBOUR, chat=GROUP, photo_file_id="someone-else", date=now - 30)
    await flow.deliver()
    assert await tickets(flow.tg) == [] and flow.sent(GROUP) == []
    tk = await report(flow, date=now)
    async with flow.tg.app.deps.sm() as s:
        files = (await s.scalars(select(Attachment.file_id).where(
            Attachment.ticket_id == tk.id))).all()
    assert list(files) == ["recent"]
    card, _ = flow.last(WORKER, tk.number)
    assert isinstance(card, SendPhoto) and card.photo == "recent"


def inside(county: CountyData, grid: str) -> tuple[float, float]:
    geometry = next(b.geometry for b in county.boundaries if b.grid == grid)
    point = shape(geometry).representative_point()
    return point.y, point.x  # (lat, lon)


async def test_location_shared_just_before_the_words_routes_the_report(
    staffed: Flow, county: CountyData,
) -> None:
    flow = staffed
    now = int(flow.tg.clock().timestamp())
    await flow.say(RESIDENT, chat=GROUP, location=inside(county, "FN-05"), date=now - 600)
    await flow.say(NEIGHBOUR, chat=GROUP, location=inside(county, "FN-04"), date=now - 20)
    await flow.say(RESIDENT, chat=GROUP, location=inside(county, "FN-03"), date=now - 60)
    await flow.deliver()
    assert await tickets(flow.tg) == [] and flow.sent(GROUP) == []
    tk = await report(flow, "报事 这里的路灯坏了好几天", date=now)
    lat, lon = inside(county, "FN-03")
    assert (tk.lat, tk.lon) == (lat, lon)
    assert flow.tg.app.deps.county.index.grids_by_id[tk.grid_id].code == "FN-03"
    assert flow.last(WORKER3, tk.number)  # 社岭's worker has the card
    # the neighbour's location was not theirs to claim, and stays claimable
    other = await report(flow, "报事 这里的井盖松了", user=NEIGHBOUR, date=now)
    assert flow.tg.app.deps.county.index.grids_by_id[other.grid_id].code == "FN-04"


async def test_album_attaches_every_photo(staffed: Flow) -> None:
    flow = staffed
    await flow.say(RESIDENT, caption=REPORT, chat=GROUP, photo_file_id="album-1",
                   media_group_id="alb-7")
    await flow.say(RESIDENT, chat=GROUP, photo_file_id="album-2", media_group_id="alb-7")
    await flow.say(RESIDENT, chat=GROUP, photo_file_id="album-3", media_group_id="alb-7")
    await flow.deliver()
    tk = await ticket(flow.tg)
    async with flow.tg.app.deps.sm() as s:
        files = (await s.scalars(select(Attachment.file_id).where(
            Attachment.ticket_id == tk.id).order_by(Attachment.id))).all()
    assert sorted(files) == ["album-1", "album-2", "album-3"]
    assert len(flow.sent(GROUP)) == 1  # one reply for the album, not one per photo


async def sweep(flow: Flow) -> int:
    done = await sweeper.sweep_once(flow.tg.app.deps)
    await flow.deliver()
    return done


