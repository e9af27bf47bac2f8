"""Fault scenarios against the real service: `run_bot.py serve` on an SQLite file in a temp dir,
the sample county, the fake Bot API on 127.0.0.1 (tests/fakes/botapi.py).

  double  concurrent presses: 接单 twice in one getUpdates batch / as two concurrent webhook
          POSTs, 20 copies of one press, 不满意 twice; extra effects counted from the database
  stuck   a poison callback (tid 99999999999999999999), and separately an update the installed
          aiogram cannot parse; then a report a second from other chats: longest report -> reply
  hol     sendMessage to one chat hangs for 30 s; p95 delivery delay of replies in 20 others
  flood   one resident sends 100 identical reports into a bound group: tickets made; and the
          delay of one report from another resident in another chat meanwhile

Every figure is printed beside its same-run baseline (the same thing without the fault) and its
target. Scenario 1 runs with the test suite's generous rate limits (it is about correctness and
needs the cards quickly); 2-4 with the production defaults (1/s per private chat, 20/min per
group, 30/s overall), because they measure delays.
Usage: python bench/faults.py [--only double|stuck|hol|flood] [--hang 30] [--keep]
Last line: one JSON object {double_effects, stuck_s, hol_p95_s, flood_tickets, neighbour_s, ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import functools
import itertools
import json
import math
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiogram.types import Update  # noqa: E402

from tests.fakes.botapi import FakeBotAPI  # noqa: E402
from tests.fakes.recording import callback_update_json, message_update_json  # noqa: E402
from tests.procs import REPO, TOKEN, Service  # noqa: E402

SAMPLE_DIR = ROOT / "config" / "sample"
Sent = dict[str, Any]
Json = dict[str, Any]

GROUP = -1001000777
GROUP_TITLE = "南关村居民群"
WORKER, COORD, FLOODER = 7001, 7002, 7010
REPORTERS = 7100  # scenario 1: resident i is 7100 + i
NAMES = {WORKER: "郑波", COORD: "社区小李", FLOODER: "刷屏大爷"}
# what the invite command prints has changed before: "code: X", "/start X", "?start=X"
INVITE_CODE = re.compile(r"(?:^code:\s*|/start\s+|\?start=|邀请码[：:]\s*)([A-Za-z0-9_-]{6,})",
                         re.M)
NUMBER = re.compile(r"[A-Z]+-\d{8}-\d{4,}")
RECEIVED = "工单号"  # in every reply that acknowledges a report
SECRET = "bench-webhook-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
POISON = "t1:ack:99999999999999999999:"
WEBHOOK_MESSAGE_IDS = 10_000_000  # webhook updates never reach the fake: numbered clear of it
PROBLEMS = ["路灯坏了好几天", "门口垃圾没人清运", "下水道堵了", "楼道里电动车充电很危险",
            "晚上广场舞太吵", "井盖松动", "墙上小广告很多", "单元门门禁坏了"]
REALISTIC = {"PRIVATE_PER_SECOND": "1", "GROUP_PER_MINUTE": "20", "GLOBAL_PER_SECOND": "30"}
SCENARIOS = ("double", "stuck", "hol", "flood")
# figure -> (target, unit); every target is an upper bound
TARGETS: dict[str, tuple[float, str]] = {
    "double_effects": (0, ""), "stuck_s": (5.0, "s"), "hol_p95_s": (3.0, "s"),
    "flood_tickets": (3, ""), "neighbour_s": (10.0, "s"),
}
MODE_S = 35.0  # scenario 1, one transport
START_S = 60.0  # a cold `serve` imports aiogram's types: seconds, more on a busy machine
BUDGET_S = {"setup": 30.0, "double": 110.0, "stuck": 80.0, "hol": 45.0, "flood": 60.0}
TOTAL_S = 270.0  # whatever happens, the run ends about here (a scenario left no time: skipped)
# figure -> where its same-run baseline is, and what that baseline is
BASELINES = {
    "double_effects": ("", "each ticket against one pressed once (counts above)"),
    "stuck_s": ("baseline_reply_s", "report -> reply, no fault"),
    "hol_p95_s": ("baseline_delivery_p95_s", "p95 of 20 replies, no hang"),
    "flood_tickets": ("baseline_tickets", "tickets from one report"),
    "neighbour_s": ("baseline_neighbour_s", "report -> reply, no flood"),
}


def say(*parts: object) -> None:
    print(*parts, flush=True)


@functools.cache
def places() -> list[str]:
    with (SAMPLE_DIR / "places.csv").open(encoding="utf-8") as f:
        return sorted({row["place"] for row in csv.DictReader(f) if not row["numbers"]})


def p95(xs: list[float]) -> float:
    """Nearest rank: with 20 values, the 19th smallest."""
    s = sorted(xs)
    return s[max(0, math.ceil(0.95 * len(s)) - 1)] if s else math.nan


def button(sent: Sent, label: str) -> str:
    for row in (sent.get("reply_markup") or {}).get("inline_keyboard", []):
        for b in row:
            if b.get("text") == label and "callback_data" in b:
                return str(b["callback_data"])
    raise LookupError(f"no button {label!r} on: {str(sent.get('text'))[:60]}")


def has_button(sent: Sent, label: str) -> bool:
    try:
        button(sent, label)
    except LookupError:
        return False
    return True


# -- one running service and its fake Telegram ---------------------------------------------


@dataclass
class Live:
    name: str
    api: FakeBotAPI
    svc: Service
    staffed: bool = False
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    http: aiohttp.ClientSession | None = None

    @property
    def hook(self) -> str:
        return f"{self.svc.base_url}/tg/webhook"

    def message(self, user: int, text: str, chat: int | None = None, *,
                webhook: bool = False) -> Json:
        uid = next(self.ids)
        chat_id = user if chat is None else chat
        update = message_update_json(
            uid, chat_id, "private" if chat_id > 0 else "supergroup", user,
            NAMES.get(user, f"居民{user}"), text, message_id=WEBHOOK_MESSAGE_IDS + uid,
            chat_title=GROUP_TITLE if chat_id < 0 else None)
        if not webhook:  # the fake numbers it, clear of the ids of the bot's own messages
            del update["message"]["message_id"]
        return update

    def press(self, user: int, sent: Sent, label: str) -> Json:
        """A tap on a button of a message the bot sent, carrying that message as it is now."""
        chat, mid = int(sent["chat_id"]), int(sent["result"]["message_id"])
        update = callback_update_json(
            next(self.ids), user, button(sent, label), chat, mid,
            user_name=NAMES.get(user, f"居民{user}"),
            chat_type="private" if chat > 0 else "supergroup")
        known = self.api.messages.get((chat, mid))
        if known is not None:
            update["callback_query"]["message"] = dict(known)
        return update

    def push(self, update: Json) -> float:
        self.api.push_update(update)
        return time.monotonic()

    async def post(self, update: Json) -> list[int]:
        """POST an update to the webhook as Telegram does: a non-2xx answer is delivered again
        (up to 3 tries here). Returns each try's HTTP status (0: no answer)."""
        assert self.http is not None
        statuses: list[int] = []
        for _ in range(3):
            try:
                async with self.http.post(self.hook, json=update,
                                          headers={SECRET_HEADER: SECRET}) as r:
                    await r.read()
                    statuses.append(r.status)
            except (aiohttp.ClientError, TimeoutError):
                statuses.append(0)
            if 200 <= statuses[-1] < 300:
                break
            await asyncio.sleep(1.0)
        return statuses

    async def next_sent(self, chat: int, match: Callable[[Sent], bool] = lambda _m: True, *,
                        start: int = 0, timeout: float = 15.0) -> Sent:  # noqa: ASYNC109
        def pred(m: Sent) -> bool:
            return m.get("chat_id") == chat and match(m)

        return await self.api.wait_for_sent(pred, timeout, start=start)

    def outbox_busy(self) -> int:
        return int(self.svc.scalar(
            "SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')") or 0)

    async def drained(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while self.outbox_busy():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def kill(svc: Service) -> None:
    for p in svc.procs:
        with contextlib.suppress(Exception):
            p.kill()


def copy_db(src: Path, dst: Path) -> None:
    with contextlib.closing(sqlite3.connect(src)) as a, \
            contextlib.closing(sqlite3.connect(dst)) as b:
        a.backup(b)


async def invite(svc: Service, role: str, **scope: str) -> str:
    """`run_bot.py invite`; the child is killed if this is cancelled (Service.invite isn't)."""
    args = [sys.executable, "run_bot.py", "invite", "--role", role]
    for k, v in scope.items():
        args += [f"--{k}", v]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=REPO, env=svc.env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    found = INVITE_CODE.search(text)
    if proc.returncode != 0 or not found:
        said = " | ".join((text + err.decode(errors="replace")).strip().splitlines()[-3:])
        raise RuntimeError(f"invite {role} failed (rc {proc.returncode}): {said}")
    return found.group(1)


class Rig:
    """The temp dir, the databases scenarios start from, and every process started.

    `county.db`: migrated, with the sample county. `staffed.db`: also the worker of 南关
    (FN-02) and a coordinator of 府南 on Telegram, onboarded through real invite codes, and the
    residents' group bound to FN-02 -- made by the first scenario that needs it.
    """

    def __init__(self, root: Path, keep: bool) -> None:
        self.root = root
        self.keep = keep
        self.county = root / "county.db"
        self.staffed: Path | None = None
        self.services: list[Service] = []

    async def prepare(self) -> None:
        # imported here: a service that cannot even be imported is a setup error, reported
        from bot.app import prepare_database
        from config.settings import Settings

        await prepare_database(Settings(  # type: ignore[call-arg]
            database_url=f"sqlite+aiosqlite:///{self.county}", sample_data=True,
            county_dir=SAMPLE_DIR, _env_file=None))

    @contextlib.asynccontextmanager
    async def live(self, name: str, *, staffed: bool = False,
                   env: dict[str, str] | None = None) -> AsyncIterator[Live]:
        """A fake Telegram and a (not yet started) service on a copy of a starting database."""
        workdir = self.root / name
        workdir.mkdir()
        # message ids go on from the copied database's (chat:message_id is how intake spots
        # a message it has seen)
        first = 1_000_000 * (len(self.services) + 1)
        async with FakeBotAPI(token=TOKEN, first_message_id=first) as api:
            svc = Service(workdir, api, **(env or {}))
            self.services.append(svc)
            lv = Live(name, api, svc, staffed=staffed and self.staffed is not None)
            copy_db(self.staffed if lv.staffed and self.staffed else self.county, svc.db)
            try:
                yield lv
            except BaseException:
                print(f"--- {name}: service log (tail) ---\n{svc.tail(30)}", file=sys.stderr)
                raise
            finally:
                kill(svc)
                if lv.http is not None:
                    await lv.http.close()

    async def start(self, lv: Live, *, staff: bool = False, warm: bool = False) -> None:
        """Start the service; with `staff`, onboard staff and bind the group unless the copied
        database has them; with `warm`, wait for one report's reply (a cold first reply is
        not what a baseline should be)."""
        if staff and not lv.staffed:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(lv.svc.start(START_S))
                worker = tg.create_task(invite(lv.svc, "worker", grid="FN-02"))
                coord = tg.create_task(invite(lv.svc, "coordinator", community="FN"))
            await onboard(lv, worker.result(), coord.result())
            lv.staffed = True
            if self.staffed is None:
                self.staffed = self.root / "staffed.db"
                copy_db(lv.svc.db, self.staffed)
        else:
            await lv.svc.start(START_S)
        if warm:
            chat = 8999
            t0 = lv.push(lv.message(chat, report_text(0)))
            await reply_delays(lv.api, {chat: t0}, t0 + 15)

    def close(self) -> None:
        for svc in self.services:
            kill(svc)
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


async def onboard(lv: Live, worker_code: str, coord_code: str) -> None:
    for user, code in ((WORKER, worker_code), (COORD, coord_code)):
        mark = len(lv.api.sent())
        lv.push(lv.message(user, f"/start {code}"))
        await lv.next_sent(user, start=mark)
    mark = len(lv.api.sent())
    lv.push(lv.message(COORD, "/bind FN-02", GROUP))
    await lv.next_sent(GROUP, start=mark)
    staff = lv.svc.scalar("SELECT count(*) FROM identities WHERE user_id IN (?, ?) "
                          "AND person_id IS NOT NULL", str(WORKER), str(COORD))
    bound = lv.svc.scalar("SELECT count(*) FROM chat_bindings WHERE chat_id = ?", str(GROUP))
    if staff != 2 or not bound:
        raise RuntimeError(f"onboarding failed: {staff} of 2 staff, group bound: {bound}")
    await lv.drained()


# -- timing replies ------------------------------------------------------------------------


def first_reply(api: FakeBotAPI, chat: int, since: float, needle: str) -> float | None:
    """When the first accepted sendMessage to `chat` containing `needle` reached Telegram."""
    for c in api.calls:
        if (c.method == "sendMessage" and c.chat_id == chat and c.at >= since and c.ok
                and needle in str(c.params.get("text", ""))):
            return c.at
    return None


async def reply_delays(api: FakeBotAPI, pushed: dict[int, float], deadline: float,
                       needle: str = RECEIVED) -> tuple[dict[int, float], list[int]]:
    """Push -> reply delay per chat; a chat without a reply by `deadline` gets deadline - push
    (a lower bound) and is listed as missing."""
    got: dict[int, float] = {}
    while True:
        for chat, t0 in pushed.items():
            if chat not in got and (at := first_reply(api, chat, t0, needle)) is not None:
                got[chat] = at - t0
        if len(got) == len(pushed) or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.05)
    missing = [c for c in pushed if c not in got]
    for chat in missing:
        got[chat] = deadline - pushed[chat]
    return got, missing


_BUILDINGS = itertools.count(1)


def report_text(i: int) -> str:
    """A report of place and problem i, at a building no other report names: the same
    problem at the same place would follow an earlier report as a co-report (附议), and the
    same words from the same person fold into their first ticket; either is answered without
    a number of its own."""
    names = places()
    return (f"报事 {names[(i * 7) % len(names)]}{next(_BUILDINGS)}号楼"
            f"{PROBLEMS[i % len(PROBLEMS)]}")


async def baseline_replies(lv: Live, chats: list[int], spacing: float) -> list[float]:
    pushed: dict[int, float] = {}
    for i, chat in enumerate(chats):
        if i and spacing:
            await asyncio.sleep(spacing)
        pushed[chat] = lv.push(lv.message(chat, report_text(i)))
    got, missing = await reply_delays(lv.api, pushed, time.monotonic() + 15)
    if missing:
        say(f"  (baseline: {len(missing)} of {len(chats)} got no reply within 15 s)")
    return [got[c] for c in chats]


# -- 1. double effects ---------------------------------------------------------------------

HEADLINE = ("transition→acknowledged", "transition→reopened", "notice→resident")


def effects(svc: Service, ticket: Ticket, marks: tuple[int, int]) -> Counter[str]:
    """What happened to one ticket since `marks` (last event id, last outbox id)."""
    ticket_id, reporter = ticket.id, ticket.reporter
    found: Counter[str] = Counter()
    for kind, to_state in svc.query(
            "SELECT kind, to_state FROM ticket_events WHERE ticket_id = ? AND id > ?",
            ticket_id, marks[0]):
        found[f"{kind}→{to_state}" if to_state else str(kind)] += 1
    for (chat,) in svc.query("SELECT chat_id FROM outbox WHERE ticket_id = ? AND id > ?",
                             ticket_id, marks[1]):
        who = "worker" if str(chat) == str(WORKER) else "other"
        if str(chat) in (str(GROUP), str(reporter)):
            who = "resident"
        found[f"notice→{who}"] += 1
    return found


def marks_now(svc: Service) -> tuple[int, int]:
    return (int(svc.scalar("SELECT coalesce(max(id), 0) FROM ticket_events")),
            int(svc.scalar("SELECT coalesce(max(id), 0) FROM outbox")))


@dataclass
class Check:
    """Tickets that got the same press several times, against one ticket that got it once."""

    label: str
    tickets: list[Ticket]
    doubles: int = 0
    missing: int = 0
    other: int = 0
    seen: Counter[str] = field(default_factory=Counter)

    def score(self, svc: Service, marks: tuple[int, int], expected: Counter[str]) -> None:
        for ticket in self.tickets:
            got = effects(svc, ticket, marks)
            self.seen += got
            for k in set(got) | set(expected):
                extra, short = got[k] - expected[k], expected[k] - got[k]
                if k in HEADLINE:
                    self.doubles += max(0, extra)
                    self.missing += max(0, short)
                else:
                    self.other += max(0, extra)

    def line(self, mode: str) -> str:
        seen = shown(self.seen)
        return (f"  {mode:<8}{self.label:<30} {len(self.tickets):>2} ticket(s): "
                f"extra {self.doubles}, missing {self.missing}, other extra {self.other}"
                f"   [{seen}]")


class Transport:
    """How updates reach the service. `groups`: the updates of one group arrive together."""

    webhook = False

    async def send(self, lv: Live, groups: list[list[Json]]) -> None:
        raise NotImplementedError


class Polling(Transport):
    """Everything pushed at once (one getUpdates batch); returns once the service confirmed
    all of it. `apart` counts groups whose updates were not all in one getUpdates answer."""

    def __init__(self) -> None:
        self.apart = 0

    async def send(self, lv: Live, groups: list[list[Json]]) -> None:
        last = 0
        for group in groups:
            for u in group:
                lv.push(u)
                last = max(last, int(u["update_id"]))
        try:
            await lv.api.wait_confirmed(last, 20)
        except TimeoutError:
            say(f"  (polling: update {last} not confirmed within 20 s)")
        # (the answer carrying them may be to a long poll begun before they were pushed)
        batches = [{u["update_id"] for u in c.result or []}
                   for c in lv.api.calls_of("getUpdates") if c.ok]
        for group in groups:
            ids = {u["update_id"] for u in group}
            if len(group) > 1 and not any(ids <= b for b in batches):
                self.apart += 1


class Webhook(Transport):
    """Each group as concurrent POSTs, one group after another."""

    webhook = True

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()

    async def send(self, lv: Live, groups: list[list[Json]]) -> None:
        for group in groups:
            for tries in await asyncio.gather(*(lv.post(u) for u in group)):
                self.statuses.update(tries)


@dataclass
class Ticket:
    id: int
    card: Sent  # the worker's card, with its buttons
    reporter: int


async def report_tickets(lv: Live, n: int) -> list[Ticket]:
    """n group reports, each by a different resident (one resident repeating themself may be
    folded into one ticket) -> their tickets, in report order."""
    for i in range(n):
        lv.push(lv.message(REPORTERS + i, f"报事 南关村{i + 1}号楼{PROBLEMS[i % len(PROBLEMS)]}",
                           GROUP))
    cards: dict[str, Sent] = {}
    deadline = time.monotonic() + 30
    while len(cards) < n:
        for m in lv.api.sent(WORKER)[:]:
            found = NUMBER.search(str(m.get("text", "")))
            if found and has_button(m, "接单"):
                cards.setdefault(found.group(0), m)
        if len(cards) >= n:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(cards)} of {n} cards reached the worker")
        await asyncio.sleep(0.05)
    rows = {num: (int(tid), int(who)) for num, tid, who in lv.svc.query(
        "SELECT number, id, reporter_user_id FROM tickets")}
    made = [Ticket(rows[num][0], card, rows[num][1]) for num, card in cards.items()]
    return sorted(made, key=lambda t: t.id)


async def resolve(lv: Live, tr: Transport, ticket: Ticket) -> Sent:
    """办结 + a note, as the worker; returns the rating prompt the resident got."""
    card = ticket.card
    number = NUMBER.search(str(card["text"]))
    assert number
    mark = len(lv.api.sent())
    await tr.send(lv, [[lv.press(WORKER, card, "办结")]])
    await lv.next_sent(WORKER, start=mark)  # "send a resolution note"
    await tr.send(lv, [[lv.message(WORKER, "已处理完毕，现场已恢复", webhook=tr.webhook)]])
    return await lv.next_sent(
        GROUP, lambda m: number.group(0) in str(m.get("text")) and has_button(m, "不满意"),
        start=mark)


async def presses(lv: Live, tr: Transport, mode: str,
                  tickets: list[Ticket]) -> tuple[list[Check], dict[str, Counter[str]]]:
    """Tickets: [0] control 接单, [1:11] 接单 twice, [11] 接单 x20 copies, [12] control 不满意,
    [13] 不满意 twice."""
    ack_control, pairs, copies = tickets[0], tickets[1:11], tickets[11]
    rate_control, rate_pair = tickets[12], tickets[13]

    marks = marks_now(lv.svc)
    one = lv.press(WORKER, copies.card, "接单")
    if tr.webhook:  # Telegram retrying one delivery: the very same update
        copy_group = [one] * 20
    else:  # redelivered under new update ids, same callback query
        copy_group = [{**one, "update_id": next(lv.ids)} for _ in range(20)]
    await tr.send(lv, [[lv.press(WORKER, ack_control.card, "接单")],
                       *[[lv.press(WORKER, t.card, "接单"), lv.press(WORKER, t.card, "接单")]
                         for t in pairs],
                       copy_group])
    await lv.drained()
    expected = effects(lv.svc, ack_control, marks)
    if not expected:
        raise RuntimeError("a single 接单 press changed nothing (the service is failing?)")
    twice = Check("接单 x2 " + ("concurrent POSTs" if tr.webhook else "same batch"), pairs)
    many = Check("接单 x20 copies", [copies])
    for c in (twice, many):
        c.score(lv.svc, marks, expected)
    say(f"  {mode:<8}baseline: one 接单 press -> {shown(expected)}")

    prompts = [await resolve(lv, tr, t) for t in (rate_control, rate_pair)]
    marks = marks_now(lv.svc)
    await tr.send(lv, [[lv.press(rate_control.reporter, prompts[0], "不满意")],
                       [lv.press(rate_pair.reporter, prompts[1], "不满意"),
                        lv.press(rate_pair.reporter, prompts[1], "不满意")]])
    await lv.drained()
    rate_expected = effects(lv.svc, rate_control, marks)
    if not rate_expected:
        raise RuntimeError("a single 不满意 press changed nothing (the service is failing?)")
    rated = Check("不满意 x2 by the reporter", [rate_pair])
    rated.score(lv.svc, marks, rate_expected)
    say(f"  {mode:<8}baseline: one 不满意 press -> {shown(rate_expected)}")
    checks = [twice, many, rated]
    for c in checks:
        say(c.line(mode))
    if isinstance(tr, Polling) and tr.apart:
        say(f"  {mode:<8}(!) {tr.apart} group(s) of presses did not arrive in one batch")
    return checks, {"ack": expected, "unsatisfied": rate_expected}


def shown(c: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "nothing"


async def run_double(rig: Rig) -> dict[str, Any]:
    """Polling, then webhook on the same database; a mode that breaks leaves the other's
    figures standing (marked partial)."""
    say("\n[1] double effects: concurrent presses (polling, then webhook on the same database)")
    checks: dict[str, list[Check]] = {}
    bases: dict[str, dict[str, Counter[str]]] = {}
    broken: dict[str, str] = {}
    hook = Webhook()
    async with rig.live("double", staffed=True) as lv:
        await rig.start(lv, staff=True)
        tickets = await report_tickets(lv, 28)

        async def mode(name: str, tr: Transport, mine: list[Ticket]) -> None:
            try:
                async with asyncio.timeout(MODE_S):
                    checks[name], bases[name] = await presses(lv, tr, name, mine)
            except Exception as e:  # TimeoutError included: the other mode still counts
                broken[name] = describe(e)
                say(f"  {name:<8}(!) not measured: {broken[name]}")
                print(f"--- double ({name}): service log (tail) ---\n{lv.svc.tail(30)}",
                      file=sys.stderr)

        await mode("polling", Polling(), tickets[:14])
        await lv.svc.current.stop()
        lv.svc.env.update(TELEGRAM_WEBHOOK_URL=lv.hook, TELEGRAM_WEBHOOK_SECRET=SECRET)
        lv.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        await rig.start(lv)
        await mode("webhook", hook, tickets[14:])
        say(f"  webhook POST answers: {dict(sorted(hook.statuses.items()))}")

    if not checks:
        raise RuntimeError("; ".join(f"{k}: {v}" for k, v in broken.items()))
    every = [c for cs in checks.values() for c in cs]
    doubles = sum(c.doubles for c in every)
    missing = sum(c.missing for c in every)
    other = sum(c.other for c in every)
    say(f"  => extra effects {doubles} (transitions to acknowledged/reopened and notices to the "
        f"resident beyond a single press); missing {missing}; other extra rows {other}"
        + (f"; PARTIAL: {', '.join(broken)} not measured" if broken else ""))
    out: dict[str, Any] = {
        "double_effects": doubles,
        "double_detail": {"missing": missing, "other_extra": other,
                          "webhook_statuses": {str(k): v for k, v in hook.statuses.items()},
                          "by_check": {f"{m} {c.label}": c.doubles
                                       for m, cs in checks.items() for c in cs}},
        "baseline_one_press": {m: {k: dict(v) for k, v in base.items()}
                               for m, base in bases.items()}}
    if broken:
        out["double_partial"] = True
        out["_error"] = "; ".join(f"{k} mode: {v}" for k, v in broken.items())
    return out


# -- 2. stuck ------------------------------------------------------------------------------


def poison_callback(lv: Live) -> Json:
    return callback_update_json(next(lv.ids), 8000, POISON, 8000, 1, user_name="试探者",
                                chat_type="private")


def unparsable_update(lv: Live) -> Json:
    """A message update (an allowed type) carrying a poll aiogram's model refuses."""
    update = lv.message(8000, "")
    msg = update["message"]
    msg.pop("text", None)
    msg.pop("entities", None)
    msg["poll"] = {"id": "poll-1", "question": "明天停水吗？", "options": "是/否"}
    return update


def parses(update: Json) -> str | None:
    """None if the installed aiogram accepts the update, else the first line of its complaint."""
    probe = dict(update)
    if "message" in probe:
        probe["message"] = {"message_id": 1, **probe["message"]}
    try:
        Update.model_validate(probe)
    except Exception as e:  # pydantic's ValidationError, whatever its wording
        return str(e).splitlines()[0]
    return None


async def stuck_case(lv: Live, label: str, make: Callable[[Live], Json], first_chat: int,
                     after: float) -> dict[str, Any]:
    """Five reports for the baseline, the fault, then ten reports a second from new chats."""
    base = await baseline_replies(lv, list(range(first_chat, first_chat + 5)), 0.3)
    fault = make(lv)
    if label == "unparsable":
        why = parses(fault)
        say("  unparsable: the installed aiogram "
            + ("ACCEPTS it (the fault is not exercised)" if why is None
               else f"refuses it: {why}"))
    t_fault = lv.push(fault)
    pushed: dict[int, float] = {}
    for i in range(10):
        await asyncio.sleep(max(0.0, t_fault + 0.5 + i - time.monotonic()))
        chat = first_chat + 10 + i
        pushed[chat] = lv.push(lv.message(chat, report_text(i + 5)))
    got, missing = await reply_delays(lv.api, pushed, max(pushed.values()) + after)
    delays = [got[c] for c in pushed]
    query_id = fault.get("callback_query", {}).get("id")
    answered = any(c.params.get("callback_query_id") == query_id
                   for c in lv.api.calls_of("answerCallbackQuery"))
    confirmed = lv.api.confirmed_offset > int(fault["update_id"])
    worst = max(delays)
    say(f"  {label:<11} baseline report->reply max {max(base):.2f} s (n={len(base)});  "
        f"with the fault: max {worst:.2f} s{'+' if missing else ''}, "
        f"median {sorted(delays)[len(delays) // 2]:.2f} s, "
        f"{len(missing)} of {len(pushed)} unanswered after {after:.0f} s; fault update "
        f"{'confirmed' if confirmed else 'NOT confirmed'}"
        + (f", presser {'answered' if answered else 'not answered'}"
           if label == "poison" else ""))
    return {"stuck_s": worst, "censored": bool(missing), "baseline_s": max(base),
            "unanswered": len(missing), "fault_confirmed": confirmed}


async def healthy(lv: Live, chat: int) -> bool:
    t0 = lv.push(lv.message(chat, report_text(2)))
    _, missing = await reply_delays(lv.api, {chat: t0}, t0 + 3)
    return not missing


async def run_stuck(rig: Rig) -> dict[str, Any]:
    say("\n[2] stuck: a poison callback / an unparsable update, then a report a second "
        "from 10 other chats")
    todo = [("poison", poison_callback), ("unparsable", unparsable_update)]
    cases: dict[str, dict[str, Any]] = {}
    chats = itertools.count(8100, 100)
    while todo:
        async with rig.live(f"stuck-{todo[0][0]}", env=REALISTIC) as lv:
            await rig.start(lv, warm=True)
            while todo:
                label, make = todo.pop(0)
                case = cases[label] = await stuck_case(lv, label, make, next(chats), 8.0)
                if todo and not (case["fault_confirmed"] and await healthy(lv, next(chats))):
                    say("  (the service did not get over it: the next case gets a fresh one)")
                    break
    worst = max(c["stuck_s"] for c in cases.values())
    censored = any(c["censored"] and c["stuck_s"] == worst for c in cases.values())
    return {"stuck_s": round(worst, 2), "stuck_censored": censored,
            "stuck_detail": {k: {kk: round(v, 2) if isinstance(v, float) else v
                                 for kk, v in c.items()} for k, c in cases.items()},
            "baseline_reply_s": round(max(c["baseline_s"] for c in cases.values()), 3)}


# -- 3. head-of-line blocking ----------------------------------------------------------------


async def run_hol(rig: Rig, hang: float) -> dict[str, Any]:
    say(f"\n[3] head of line: sendMessage to one chat hangs {hang:.0f} s; replies in 20 others")
    async with rig.live("hol", env=REALISTIC) as lv:
        await rig.start(lv, warm=True)
        pushed = {chat: 0.0 for chat in range(9001, 9021)}
        for i, chat in enumerate(pushed):
            pushed[chat] = lv.push(lv.message(chat, report_text(i)))
        base, base_missing = await reply_delays(lv.api, pushed, time.monotonic() + 15)
        base_p95 = p95(list(base.values()))

        slow = 9999
        lv.api.stall("sendMessage", hang, chat_id=slow)
        lv.push(lv.message(slow, report_text(3)))
        try:
            await _hanging(lv.api, slow, 10)
            hung = True
        except TimeoutError:
            say("  (!) the slow chat's reply did not start within 10 s: nothing hung")
            hung = False
        t_hang = time.monotonic()
        pushed = {chat: 0.0 for chat in range(9101, 9121)}
        for i, chat in enumerate(pushed):
            pushed[chat] = lv.push(lv.message(chat, report_text(i)))
        got, missing = await reply_delays(lv.api, pushed, max(pushed.values()) + hang + 3)
        delays = list(got.values())
        held = sum(1 for c, d in got.items() if pushed[c] + d >= t_hang + hang - 0.5)
        say(f"  baseline (no hang): p95 {base_p95:.2f} s, max {max(base.values()):.2f} s"
            f"{f', {len(base_missing)} unanswered' if base_missing else ''}")
        say(f"  with the hang:      p95 {p95(delays):.2f} s{'+' if missing else ''}, "
            f"max {max(delays):.2f} s, {held} of 20 only after the hang ended, "
            f"{len(missing)} unanswered")
        return {"hol_p95_s": round(p95(delays), 2), "hol_censored": bool(missing),
                "baseline_delivery_p95_s": round(base_p95, 3),
                "hol_detail": {"max_s": round(max(delays), 2), "after_hang": held,
                               "unanswered": len(missing), "hang_s": hang, "hung": hung}}


async def _hanging(api: FakeBotAPI, chat: int, timeout: float) -> None:  # noqa: ASYNC109
    """Until a sendMessage to `chat` has arrived and is still unanswered."""
    deadline = time.monotonic() + timeout
    while not any(c.method == "sendMessage" and c.chat_id == chat and c.status is None
                  for c in api.calls):
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.02)


# -- 4. flood ------------------------------------------------------------------------------


async def run_flood(rig: Rig) -> dict[str, Any]:
    say("\n[4] flood: 100 identical reports by one resident in a bound group; meanwhile one "
        "report from another resident in another chat")
    async with rig.live("flood", staffed=True, env=REALISTIC) as lv:
        await rig.start(lv, staff=True, warm=True)
        base = await baseline_replies(lv, [9501], 0)
        base_tickets = int(lv.svc.scalar("SELECT count(*) FROM tickets WHERE chat_id = ?",
                                         "9501"))
        text = "报事 南关村口的路灯坏了，晚上很黑，好几天没人修"
        t_start = time.monotonic()
        neighbour: dict[int, float] = {}
        last = 0
        for chunk in range(10):
            for _ in range(10):
                u = lv.message(FLOODER, text, GROUP)
                last = int(u["update_id"])
                lv.push(u)
            if chunk == 4:
                neighbour[9502] = lv.push(lv.message(9502, report_text(1)))
            await asyncio.sleep(0.25)
        flood_s = time.monotonic() - t_start
        got, missing = await reply_delays(lv.api, neighbour, neighbour[9502] + 25)
        try:
            await lv.api.wait_confirmed(last, 20)
            confirmed = True
        except TimeoutError:
            confirmed = False
        tickets = int(lv.svc.scalar(
            "SELECT count(*) FROM tickets WHERE chat_id = ? AND reporter_user_id = ?",
            str(GROUP), str(FLOODER)))
        replies = len([t for t in lv.api.sent_texts(GROUP) if RECEIVED in t])
        queued = int(lv.svc.scalar("SELECT count(*) FROM outbox") or 0)
        say(f"  sent 100 identical reports in {flood_s:.1f} s; tickets made: {tickets} "
            f"(baseline: one report -> {base_tickets} ticket)"
            + ("" if confirmed else " (the flood was NOT all handled in time)"))
        say(f"  group replies sent so far {replies}; outbox rows {queued}")
        say(f"  neighbour report->reply: {got[9502]:.2f} s{'+ (no reply)' if missing else ''} "
            f"(baseline without the flood: {base[0]:.2f} s)")
        return {"flood_tickets": tickets, "baseline_tickets": base_tickets,
                "neighbour_s": round(got[9502], 2),
                "neighbour_censored": bool(missing), "baseline_neighbour_s": round(base[0], 3),
                "flood_detail": {"all_handled": confirmed, "group_replies": replies,
                                 "outbox_rows": queued}}


# -- main ----------------------------------------------------------------------------------


def describe(e: BaseException) -> str:
    while isinstance(e, ExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    if isinstance(e, TimeoutError) and not str(e):
        return "TimeoutError (over its time budget)"
    first = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {first}"[:200]


def verdict(name: str, value: float | None) -> tuple[str, bool | None]:
    target, unit = TARGETS[name]
    if value is None:
        return "not measured", None
    ok = value <= target
    shown = f"{value:.2f} {unit}" if unit else f"{value:g}"
    return f"{shown:<10} target <= {target:g}{(' ' + unit) if unit else ''}", ok


async def guarded(name: str, work: Callable[[], Awaitable[dict[str, Any]]],
                  errors: dict[str, str], budget: float) -> dict[str, Any]:
    if budget < 15:
        errors[name] = "skipped: the run's time was used up"
        say(f"\n  !! {name} not measured: {errors[name]}")
        return {}
    try:
        async with asyncio.timeout(budget):
            return await work()
    except TimeoutError:
        errors[name] = f"over its {budget:.0f} s budget"
    except Exception as e:  # one broken scenario must not hide the others' figures
        errors[name] = describe(e)
    say(f"  !! {name} not measured: {errors[name]}")
    return {}


async def run(only: str | None, hang: float, keep: bool) -> dict[str, Any]:
    chosen = [only] if only else list(SCENARIOS)
    rig = Rig(Path(tempfile.mkdtemp(prefix="bench-faults-")), keep)
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    t0 = time.monotonic()
    try:
        await guarded("setup", lambda: _prepared(rig), errors, BUDGET_S["setup"])
        if "setup" in errors:
            chosen = []
        work: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
            "double": lambda: run_double(rig), "stuck": lambda: run_stuck(rig),
            "hol": lambda: run_hol(rig, hang), "flood": lambda: run_flood(rig)}
        for name in chosen:
            budget = BUDGET_S[name] + (hang if name == "hol" else 0)
            left = TOTAL_S + hang - 30 - (time.monotonic() - t0)
            got = await guarded(name, work[name], errors, min(budget, left))
            if "_error" in got:
                errors[name] = got.pop("_error")
            out.update(got)
    finally:
        rig.close()
    say(f"\nsummary ({time.monotonic() - t0:.0f} s)")
    verdicts: dict[str, bool | None] = {}
    for name in TARGETS:
        text, ok = verdict(name, out.get(name))
        verdicts[name] = ok
        censored = bool(out.get(f"{name.split('_')[0]}_censored"))
        mark = "" if ok is None else ("PASS" if ok else "FAIL")
        key, what = BASELINES[name]
        base = out.get(key) if key else None
        base_text = f"baseline {base:g} ({what})" if base is not None else (
            f"baseline: {what}" if not key and ok is not None else "")
        say(f"  {name:<15} {text:<32} {mark:<5} {base_text}"
            + ("  [a lower bound: some never answered]" if censored else "")
            + ("  [PARTIAL: see errors]" if out.get(f"{name.split('_')[0]}_partial") else ""))
    if keep:
        say(f"  logs and databases kept in {rig.root}")
    result: dict[str, Any] = {name: out.get(name) for name in TARGETS}
    result.update({k: v for k, v in out.items() if k not in TARGETS})
    result["pass"] = verdicts
    result["targets"] = {name: target for name, (target, _unit) in TARGETS.items()}
    result["run_s"] = round(time.monotonic() - t0)
    if errors:
        result["errors"] = errors
    return result


async def _prepared(rig: Rig) -> dict[str, Any]:
    t0 = time.monotonic()
    await rig.prepare()
    say(f"setup: sample county migrated and loaded in {time.monotonic() - t0:.1f} s")
    return {}


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await run(args.only, args.hang, args.keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--only", choices=SCENARIOS, help="run one scenario")
    ap.add_argument("--hang", type=float, default=30.0, help="seconds sendMessage hangs (hol)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    try:
        result = asyncio.run(amain(ap.parse_args()))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: the service processes are stopped, the temp dir removed",
              file=sys.stderr)
        sys.exit(130)
    print(json.dumps(result, ensure_ascii=False))
    sys.exit(1 if result.get("errors") else 0)


if __name__ == "__main__":
    main()
