"""The real service (`run_bot.py serve`, long polling) against the fake Bot API over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fakes.botapi import ApiCall, FakeBotAPI
from tests.fakes.recording import callback_update_json, message_update_json
from tests.procs import TOKEN, Service, WriteLock

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it

GROUP = -1001000777
WORKER, COORD, RESIDENT = 7001, 7002, 7003
NAMES = {WORKER: "郑波", COORD: "社区小李", RESIDENT: "王大妈"}
NUMBER = re.compile(r"FS-\d{8}-\d{4,}")
WAIT = 10.0

Sent = dict[str, Any]


@pytest.fixture
async def svc(api: FakeBotAPI, tmp_path: Path) -> AsyncIterator[Service]:
    service = Service(tmp_path, api)
    yield service
    await service.close()


class Chat:
    """Builds and pushes updates with fresh update ids (message id = update id)."""

    def __init__(self, api: FakeBotAPI) -> None:
        self.api = api
        self.ids = itertools.count(1)

    def say(self, user: int, text: str, *, group: bool = False,
            reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        uid = next(self.ids)
        update = message_update_json(
            uid, GROUP if group else user, "supergroup" if group else "private", user,
            NAMES[user], text, reply_to_message=reply_to,
            chat_title="南关村居民群" if group else None)
        self.api.push_update(update)
        return update

    def tap(self, user: int, sent: Sent, label: str) -> dict[str, Any]:
        chat = sent["chat_id"]
        update = callback_update_json(
            next(self.ids), user, button(sent, label), chat, sent["result"]["message_id"],
            user_name=NAMES[user], chat_type="private" if chat > 0 else "supergroup")
        self.api.push_update(update)
        return update


def button(sent: Sent, label: str) -> str:
    rows = (sent.get("reply_markup") or {}).get("inline_keyboard", [])
    for row in rows:
        for b in row:
            if b["text"] == label:
                return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {rows}")


def labels(sent: Sent) -> list[str]:
    rows = (sent.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["text"] for row in rows for b in row]


async def next_sent(svc: Service, chat_id: int, *needles: str, start: int = 0,
                    timeout: float = WAIT) -> Sent:  # noqa: ASYNC109
    """The first message sent to `chat_id` (from `start`) whose text contains every needle."""
    def match(m: Sent) -> bool:
        text = str(m.get("text") or m.get("caption") or "")
        return m.get("chat_id") == chat_id and all(n in text for n in needles)

    return await svc.within(svc.api.wait_for_sent(match, timeout, start=start))


async def answer_to(svc: Service, update: dict[str, Any]) -> str:
    qid = update["callback_query"]["id"]
    call = await svc.within(svc.api.wait_for_call(
        "answerCallbackQuery", lambda c: c.params.get("callback_query_id") == qid, WAIT))
    return str(call.params.get("text", ""))


async def settle(svc: Service, chat: Chat, user: int, *, group: bool) -> None:
    """A barrier: once /help's answer arrived, every earlier row to that chat went out.

    The outbox sends one chat's rows in id order, so nothing queued before can still follow.
    """
    mark = len(svc.api.sent())
    chat.say(user, "/help", group=group)
    await next_sent(svc, GROUP if group else user, "/my", start=mark)


def texts_to(api: FakeBotAPI, chat_id: int, needle: str) -> list[str]:
    return [t for t in api.sent_texts(chat_id) if needle in t]


async def delivered(svc: Service) -> None:
    """Wait until the outbox has recorded every send.

    Killed before that, a message goes out again once its lease runs out (delivery is
    at-least-once) and holds back its chat until then; these tests are about the inbound side.
    """
    await svc.until(lambda: svc.scalar(
        "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')") == 0,
        "every outbox row recorded as sent")


def has_update(call: ApiCall, update_id: int) -> bool:
    return any(u["update_id"] == update_id for u in call.result or [])


def served(api: FakeBotAPI, update_id: int, since: int = 0) -> int:
    """How many getUpdates answers (from call `since` on) carried this update."""
    return sum(1 for c in api.calls[since:] if c.method == "getUpdates" and c.ok
               and has_update(c, update_id))


async def healthz(svc: Service) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{svc.base_url}/healthz") as r:
        assert r.status == 200
        assert r.content_type == "application/json"
        return dict(await r.json())


# -- the whole story -----------------------------------------------------------------------


async def test_report_to_closed_ticket_over_http(svc: Service, api: FakeBotAPI) -> None:
    worker_code = await svc.invite("worker", grid="FN-02")
    coord_code = await svc.invite("coordinator", community="FN")
    await svc.start()
    health = await healthz(svc)
    assert health["ok"] is True and health["outbox_dead"] == 0
    telegram = health["channels"]["telegram"]
    assert telegram["mode"] == "polling" and telegram["ok"] is True
    assert telegram["stale_after_seconds"] == 33  # 3 × the 1 s polling timeout + 30
    chat = Chat(api)

    chat.say(WORKER, f"/start {worker_code}")
    await next_sent(svc, WORKER, "绑定成功", "南关网格", "网格员")
    chat.say(COORD, f"/start {coord_code}")
    await next_sent(svc, COORD, "绑定成功", "府南社区", "社区工作人员")

    bind = chat.say(COORD, "/bind FN-02", group=True)
    bound = await next_sent(svc, GROUP, "本群已绑定到 南关网格")
    assert bound["reply_parameters"]["message_id"] == bind["message"]["message_id"]

    report = chat.say(RESIDENT, "报事 南关村口的路灯坏了，晚上很黑", group=True)
    reply = await next_sent(svc, GROUP, "已受理，工单号")
    number = NUMBER.search(reply["text"])
    assert number, reply["text"]
    number = number.group(0)
    assert "南关网格员" in reply["text"]
    assert reply["reply_parameters"]["message_id"] == report["message"]["message_id"]
    assert f"tg://user?id={RESIDENT}" in reply["text"]  # the reporter is mentioned
    assert f"https://t.me/grid_intake_bot?start=t_{number}" in reply["text"]

    card = await next_sent(svc, WORKER, f"【新工单】{number}", "路灯坏了")
    assert labels(card) == ["接单", "办结", "退回", "转派", "改类别"]
    assert "139****2201" not in card["text"] and "13903572201" not in card["text"]

    mark = len(api.sent())
    ack = chat.tap(WORKER, card, "接单")
    assert number in await answer_to(svc, ack)
    await next_sent(svc, WORKER, f"已接单：{number}", start=mark)
    await next_sent(svc, GROUP, f"您的工单 {number} 已由网格员", "接单", start=mark)

    mark = len(api.sent())
    chat.say(WORKER, "已联系电工，明天上午来修", reply_to=card["result"])
    await next_sent(svc, WORKER, f"进展已记录：{number}", start=mark)
    await next_sent(svc, GROUP, f"工单 {number} 有新进展：已联系电工，明天上午来修", start=mark)

    mark = len(api.sent())
    resolve = chat.tap(WORKER, card, "办结")
    assert "办结说明" in await answer_to(svc, resolve)
    await next_sent(svc, WORKER, "请发送办结说明", start=mark)
    chat.say(WORKER, "路灯已更换，恢复照明")
    await next_sent(svc, WORKER, f"已办结：{number}", start=mark)
    rating = await next_sent(svc, GROUP, f"工单 {number} 已办结：路灯已更换，恢复照明", start=mark)
    assert labels(rating) == ["满意", "基本满意", "不满意"]

    # someone else's tap on the resident's buttons changes nothing
    stranger = chat.tap(COORD, rating, "不满意")
    assert "只有报事人可以评价这张工单" in await answer_to(svc, stranger)

    rate = chat.tap(RESIDENT, rating, "满意")
    assert await answer_to(svc, rate) == f"感谢评价！工单 {number} 已结案。"
    await svc.within(api.wait_for_call(
        "editMessageReplyMarkup",
        lambda c: c.params.get("message_id") == rating["result"]["message_id"], WAIT))

    mark = len(api.sent())
    chat.say(RESIDENT, number, group=True)
    await next_sent(svc, GROUP, f"工单 {number}", "状态：已结案", start=mark)

    state, satisfaction = svc.query(
        "SELECT state, satisfaction FROM tickets WHERE number = ?", number)[0]
    assert (state, satisfaction) == ("closed", "satisfied")
    trail = [r[0] for r in svc.query(
        "SELECT e.to_state FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id "
        "WHERE t.number = ? AND e.kind = 'transition' ORDER BY e.id", number)]
    assert trail[-4:] == ["acknowledged", "in_progress", "resolved", "closed"]
    assert svc.scalar("SELECT count(*) FROM tickets") == 1
    assert len(texts_to(api, GROUP, "已受理，工单号")) == 1

    # a clean stop confirms what was handled and exits 0
    last = max(u["update_id"] for c in api.calls_of("getUpdates") for u in c.result or [])
    assert await svc.current.stop() == 0
    assert api.confirmed_offset > last
    log = svc.current.log()
    assert "Traceback" not in log
    # the log says what happened, but never the bot token or a staff member's phone number
    assert "polling mode" in log and TOKEN not in log
    assert not re.search(r"1[3-9]\d{9}", log)


# -- redelivery ----------------------------------------------------------------------------


async def test_same_message_in_two_updates_makes_one_ticket(svc: Service,
                                                            api: FakeBotAPI) -> None:
    await svc.start()
    report = message_update_json(10, GROUP, "supergroup", RESIDENT, NAMES[RESIDENT],
                                 "报事 南关路的下水道堵了", message_id=500)
    api.push_update(report)
    api.push_update({**report, "update_id": 11})  # Telegram re-sent it under a new id
    await svc.within(api.wait_confirmed(11, WAIT))
    api.push_update({**report, "update_id": 12})  # ... and again, in a later batch
    await svc.within(api.wait_confirmed(12, WAIT))

    chat = Chat(api)
    chat.ids = itertools.count(20)
    await settle(svc, chat, RESIDENT, group=True)
    assert len(texts_to(api, GROUP, "已受理，工单号")) == 1
    assert svc.scalar("SELECT count(*) FROM tickets") == 1
    assert svc.scalar("SELECT count(*) FROM inbound_log WHERE external_id = ?",
                      f"{GROUP}:500") == 1


async def test_kill_9_before_and_after_commit(svc: Service, api: FakeBotAPI) -> None:
    """Killed mid-commit: served again, one ticket. Killed after commit: nothing twice."""
    worker_code = await svc.invite("worker", grid="FN-02")
    await svc.start()
    chat = Chat(api)
    chat.say(WORKER, f"/start {worker_code}")
    await next_sent(svc, WORKER, "绑定成功")

    # 1. the bot fetched the update but its commit is stuck behind our write lock
    await delivered(svc)  # (else the lock would also hold the outbox's "sent" record)
    lock = WriteLock(svc.db)
    await lock.acquire()
    try:
        first = chat.say(RESIDENT, "报事 南关农贸市场门口垃圾没人清", group=True)["update_id"]
        await svc.within(api.wait_for_call("getUpdates", lambda c: has_update(c, first), WAIT))
        await asyncio.sleep(0.5)  # long enough to commit, were the database free
        assert svc.current.returncode is None
        assert api.confirmed_offset <= first
        assert api.sent(GROUP) == []
        svc.current.kill()
    finally:
        lock.release()
    assert svc.scalar("SELECT count(*) FROM tickets") == 0

    mark = len(api.calls)
    await svc.start()
    await svc.within(api.wait_confirmed(first, WAIT))
    assert served(api, first, since=mark) >= 1  # never confirmed, so Telegram sends it again
    card = await next_sent(svc, WORKER, "【新工单】", "垃圾没人清")
    await settle(svc, chat, RESIDENT, group=True)
    assert len(texts_to(api, GROUP, "已受理，工单号")) == 1
    assert svc.scalar("SELECT count(*) FROM tickets") == 1

    # 2. a new report and the worker's note on the card: committed and answered, but the
    # process dies before the offset is confirmed (the confirming getUpdates fails, the bot
    # backs off for a second, and is killed in that window). The card's id is recorded just
    # after Telegram took it; a reply quicker than that (milliseconds, where a person takes
    # seconds) would find no ticket to attach the note to, so wait for the record first
    await delivered(svc)
    mark = len(api.sent())
    second = chat.say(RESIDENT, "报事 南关小学门口井盖丢了", group=True)["update_id"]
    note = chat.say(WORKER, "已派人清运", reply_to=card["result"])["update_id"]
    await svc.within(api.wait_for_call(
        "getUpdates", lambda c: has_update(c, second) and has_update(c, note), WAIT))
    api.fail_next("getUpdates", 502)
    await next_sent(svc, WORKER, "进展已记录", start=mark)
    await next_sent(svc, GROUP, "有新进展：已派人清运", start=mark)
    await next_sent(svc, GROUP, "已受理，工单号", start=mark)
    await delivered(svc)
    assert api.confirmed_offset <= second, "the test lost its window: the updates were confirmed"
    svc.current.kill()

    mark = len(api.calls)
    await svc.start()
    await svc.within(api.wait_confirmed(note, WAIT))
    assert served(api, second, since=mark) >= 1 and served(api, note, since=mark) >= 1
    await settle(svc, chat, RESIDENT, group=True)
    await settle(svc, chat, WORKER, group=False)
    assert len(texts_to(api, GROUP, "已受理，工单号")) == 2  # one per report
    assert len(texts_to(api, GROUP, "有新进展")) == 1
    assert len(texts_to(api, WORKER, "进展已记录")) == 1
    assert svc.scalar("SELECT count(*) FROM tickets") == 2
    assert svc.scalar("SELECT count(*) FROM ticket_events WHERE note = '已派人清运'") == 1


# -- delivery ------------------------------------------------------------------------------


async def test_reply_survives_500_and_429(svc: Service, api: FakeBotAPI) -> None:
    await svc.start()
    api.fail_next("sendMessage", 500)
    api.fail_next("sendMessage", 429, retry_after=1)
    api.push_update(message_update_json(1, GROUP, "supergroup", RESIDENT, NAMES[RESIDENT],
                                        "报事 南关村有人乱倒建筑垃圾"))
    await next_sent(svc, GROUP, "已受理，工单号", timeout=15)

    calls = [c for c in api.calls_of("sendMessage") if c.chat_id == GROUP]
    assert [c.status for c in calls] == [500, 429, 200]
    assert calls[2].at - calls[1].at >= 0.9  # retry_after was honoured
    assert len(texts_to(api, GROUP, "已受理，工单号")) == 1
    row = await svc.until(lambda: svc.query(
        "SELECT status, attempts FROM outbox WHERE chat_id = ? AND status = 'sent'",
        str(GROUP)), "the reply recorded as sent")
    assert row == [("sent", 3)]
    health = await healthz(svc)
    assert health["outbox_pending"] == 0 and health["outbox_oldest_pending_seconds"] is None
    assert 0 <= health["channels"]["telegram"]["seconds_since_poll"] < 5
