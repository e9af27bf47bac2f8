"""A terminal chat through the real core: try the whole loop with no platform credentials.

Speak as a resident in a group or in private, switch to a grid worker, leader or coordinator,
press buttons by number. Everything goes through intake, routing, lifecycle and the outbox.

The group behaves like a real one: a message there is a report only when it mentions the bot
(MENTION), starts with a report word, or replies to a bot message. Bot messages are numbered
m1, m2, ... and the numbers continue across restarts (the stored message -> ticket map keeps
old numbers, so a number must never be handed out twice); buttons are numbered per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import math
import re
import shlex
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy import func, select

from bot.app import App, build_app
from bot.delivery.capabilities import Capabilities
from bot.delivery.media import parse_ref
from bot.deps import Ctx
from bot.messages import Action, GeoPoint, Inbound, Media, Outbound
from bot.notify.texts import scoped, t
from bot.people.directory import standing_roles
from bot.people.onboarding import INVITE_SCOPE, InviteError, create_invite
from config.settings import Settings
from models.enums import Channel, ChatKind, OutboxStatus, StaffRole
from models.tickets import Outbox, SentMessage

log = logging.getLogger(__name__)

CH = Channel.CONSOLE.value
GROUP = "group-1"
MENTION = "@网格报事助手"
# what a Chinese input method types for @
MENTIONS = (MENTION, "＠网格报事助手")
DATUMS = ("wgs84", "gcj02")  # what the core converts from (bot/routing/datum.py)
DATUM_NAMES = {"bd09": "百度坐标 bd09", "bd09ll": "百度坐标 bd09", "cgcs2000": "国家2000坐标"}
DEFAULT_RESIDENT = "张大爷"
ROLE_WORDS = {
    "resident": "resident", "居民": "resident",
    "worker": "worker", "网格员": "worker",
    "leader": "leader", "网格长": "leader",
    "coordinator": "coordinator", "社区": "coordinator", "社区工作人员": "coordinator",
    "centre": "centre", "center": "centre", "指挥中心": "centre",
}
_REF = re.compile(r"[mM]?(\d{1,18})")

HELP = f"""控制台命令：
  /as resident [名字]           换成居民（默认 {DEFAULT_RESIDENT}），在群里说话
  /as worker 网格编号            换成该网格的网格员，例如 /as worker FN-02
  /as leader 网格编号            换成该网格的网格长
  /as coordinator 社区编号       换成该社区的工作人员，例如 /as coordinator FN
  /as centre                    换成指挥中心工作人员
  /group  /private              在群里说话 / 私聊机器人
  /bind 编号                     把群绑定到网格或社区（社区工作人员在群里用）
  /photo 名称 [说明]             发一张照片
  /loc 纬度 经度 [wgs84|gcj02]   发送位置（默认 wgs84；gcj02 是高德、腾讯、微信地图的坐标）
  /reply m消息号 文字            回复机器人的某条消息，例如 /reply m4 下午安排清运
  #数字                          按按钮，例如 #1
  /my  /queue  /help  /quit      我的工单 / 待分派队列 / 本说明 / 退出
群里的消息要 {MENTION}、以“报事”等词开头，或回复机器人的消息，才会生成工单；
私聊里的每条消息都会转给机器人。其他文字照原样发送。"""

LOC_USAGE = ("用法：/loc 纬度 经度 [wgs84|gcj02]，例如 /loc 35.87 111.28"
             "（纬度在 -90 到 90 之间，经度在 -180 到 180 之间）。")
REPLY_USAGE = "用法：/reply m消息号 文字，例如 /reply m4 下午安排清运。"
PHOTO_USAGE = "用法：/photo 名称 [说明]，例如 /photo 照片1 垃圾堆在村口。"


def words(text: str) -> list[str]:
    """Shell-like words, so a name may be quoted; a lone apostrophe (it's) just splits."""
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def parse_location(args: list[str]) -> GeoPoint | str:
    """A GeoPoint, or the Chinese line telling the user what is wrong (nothing is stored)."""
    if len(args) not in (2, 3):
        return LOC_USAGE
    try:
        lat, lon = float(args[0]), float(args[1])
    except ValueError:
        return LOC_USAGE
    if not (math.isfinite(lat) and math.isfinite(lon)) or not (
            -90 <= lat <= 90 and -180 <= lon <= 180):
        return LOC_USAGE
    key = args[2].lower().replace("-", "") if len(args) == 3 else "wgs84"
    if key not in DATUMS:
        name = DATUM_NAMES.get(key, args[2])
        return f"不支持坐标系 {name}，只支持 wgs84 和 gcj02。{LOC_USAGE}"
    return GeoPoint(lat, lon, key)


def split_first(text: str) -> tuple[str, str]:
    """The first word and the rest as typed (a caption or note keeps its quotes and spaces)."""
    parts = text.strip().split(maxsplit=1)
    return (parts[0], parts[1].strip()) if len(parts) == 2 else (parts[0] if parts else "", "")


def mentioned(text: str) -> tuple[bool, str]:
    """Does the text @ the bot; the text without the mention (as Telegram's handler does)."""
    found = any(m in text for m in MENTIONS)
    for m in MENTIONS:
        text = text.replace(m, " ")
    return found, text.strip()


@dataclass
class Who:
    user_id: str = f"resident-{DEFAULT_RESIDENT}"
    name: str = DEFAULT_RESIDENT


@dataclass
class ConsoleState:
    who: Who = field(default_factory=Who)
    where: ChatKind = ChatKind.GROUP
    buttons: dict[int, tuple[str, Action]] = field(default_factory=dict)
    next_button: int = 1
    next_message: int = 1
    shown: dict[int, str] = field(default_factory=dict)  # message number -> chat id, this run
    names: dict[str, str] = field(default_factory=dict)  # chat id -> label
    describe: Callable[[str], str] = str  # label for a chat id not in `names`

    def label(self, chat_id: str) -> str:
        return self.names.get(chat_id) or self.describe(chat_id)


class ConsoleSender:
    channel = CH
    # a terminal has no link that opens a private chat: /private is typed
    capabilities = Capabilities(deep_links=False, location_button=True)

    def __init__(self, state: ConsoleState, out: TextIO) -> None:
        self.state, self.out = state, out

    async def send(self, msg: Outbound) -> str | None:
        st = self.state
        mid = st.next_message
        st.next_message += 1
        st.shown[mid] = msg.chat_id
        where = "群聊" if msg.chat_id == GROUP else f"私聊 {st.label(msg.chat_id)}"
        head = f"\n🤖 → {where} (m{mid})"
        if msg.mention_name:
            head += f" @{msg.mention_name}"
        lines = [head, *("   " + ln for ln in msg.text.splitlines())]
        lines += [f"   [照片 {parse_ref(p)[1].removeprefix(f'{CH}:')}]" for p in msg.photos]
        for row in msg.buttons:
            cells = []
            for b in row:
                if b.request_location:
                    cells.append(f"[{b.text}: /loc 纬度 经度]")
                    continue
                if b.action is None:
                    continue
                n = st.next_button
                st.next_button += 1
                st.buttons[n] = (msg.chat_id, b.action)
                cells.append(f"[#{n} {b.text}]")
            if cells:
                lines.append("   " + " ".join(cells))
        print("\n".join(lines), file=self.out, flush=True)
        return str(mid)


async def last_message_number(app: App) -> int:
    """The highest console message number stored (sent rows and the message -> ticket map)."""
    async with app.deps.sm() as s:
        ids = [*(await s.scalars(select(Outbox.external_message_id).where(
                    Outbox.channel == CH, Outbox.external_message_id.is_not(None)))).all(),
               *(await s.scalars(select(SentMessage.message_id).where(
                    SentMessage.channel == CH))).all()]
    return max((int(i) for i in ids if i and i.isascii() and i.isdigit()), default=0)


class Console:
    def __init__(self, app: App, state: ConsoleState, out: TextIO) -> None:
        self.app, self.st, self.out = app, state, out
        state.describe = self.describe

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def chat_id(self) -> str:
        return GROUP if self.st.where == ChatKind.GROUP else self.st.who.user_id

    def ctx(self) -> Ctx:
        return Ctx(CH, self.st.who.user_id, self.st.who.name, self.chat_id(), self.st.where,
                   uuid.uuid4().hex[:8])

    def inbound(self, text: str = "", **kw: object) -> Inbound:
        mid = uuid.uuid4().hex  # unique across restarts: the inbound log would drop repeats
        mentions, text = mentioned(text)
        mentions = mentions and self.st.where == ChatKind.GROUP
        return Inbound(channel=CH, external_id=mid, chat_id=self.chat_id(),
                       chat_kind=self.st.where, sender_id=self.st.who.user_id,
                       sender_name=self.st.who.name, text=text, message_id=mid,
                       mentions_bot=mentions, **kw)  # type: ignore[arg-type]

    def scope_name(self, role: StaffRole, code: str) -> str | None:
        index = self.app.deps.county.index
        if INVITE_SCOPE[role] == "grid":
            g = index.grids.get(code)
            return scoped(g.name, "网格") if g else None
        if INVITE_SCOPE[role] == "community":
            c = index.communities.get(code)
            return scoped(c[1], "社区") if c else None
        return ""

    def staff_label(self, role: StaffRole, code: str) -> str:
        scope = self.scope_name(role, code)
        role_name = t(f"role.{role.value}")
        return f"{scope} {role_name}" if scope else role_name

    def describe(self, chat_id: str) -> str:
        """A private chat's label from the console's user ids (resident-名字, worker-FN-02)."""
        kind, _, rest = chat_id.partition("-")
        if kind == "resident":
            return rest
        try:
            role = StaffRole(kind)
        except ValueError:
            return chat_id
        return self.staff_label(role, "" if role == StaffRole.CENTRE else rest)

    async def settle(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        """Wait until the outbox has delivered what this line caused (replies print in order)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end and not (stop and stop.is_set()):
            async with self.app.deps.sm() as s:
                waiting = await s.scalar(select(func.count()).select_from(Outbox).where(
                    Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))
            if not waiting:
                return
            await asyncio.sleep(0.1)

    async def become(self, args: list[str]) -> None:
        role = ROLE_WORDS.get(args[0].lower()) if args else None
        if role is None:
            self.say("用法：/as resident [名字]、/as worker 网格编号、/as leader 网格编号、"
                     "/as coordinator 社区编号 或 /as centre。")
            return
        if role == "resident":
            name = " ".join(args[1:]).strip() or DEFAULT_RESIDENT
            self.st.who = Who(f"resident-{name}", name)
            self.st.where = ChatKind.GROUP
            self.st.names[self.st.who.user_id] = name
            self.say(f"现在您是居民 {name}，在群里说话（输入 /private 改为私聊机器人）。")
            return
        staff_role = StaffRole(role)
        scope = args[1].upper() if len(args) > 1 and staff_role != StaffRole.CENTRE else ""
        scope_name = self.scope_name(staff_role, scope)
        if scope_name is None:
            kind = "网格编号，例如 FN-02" if INVITE_SCOPE[staff_role] == "grid" \
                else "社区编号，例如 FN"
            self.say(f"没有这个编号：{scope or '（未填写）'}。请写{kind}。")
            return
        uid = f"{role}-{scope or 'centre'}"
        label = self.staff_label(staff_role, scope)
        async with self.app.deps.sm() as s:
            onboarded = bool(await standing_roles(s, CH, uid))
        code = None
        if not onboarded:  # the first time: a real invite, redeemed like on Telegram
            async with self.app.deps.sm() as s, s.begin():
                try:
                    code = (await create_invite(
                        s, staff_role,
                        grid=scope if INVITE_SCOPE[staff_role] == "grid" else None,
                        community=scope if INVITE_SCOPE[staff_role] == "community" else None,
                        now=self.app.deps.clock(), ttl_days=1)).code
                except InviteError:
                    self.say(f"没有这个编号：{scope}。")
                    return
        self.st.who = Who(uid, label)
        self.st.where = ChatKind.PRIVATE
        self.st.names[uid] = label
        if code is not None:
            await self.app.core.on_start(self.ctx(), code)
        role_name = t(f"role.{staff_role.value}")
        whom = f"{scope_name} 的{role_name}" if scope_name else role_name
        self.say(f"现在您是 {whom}（私聊机器人）。")

    async def reply_chat(self, number: int) -> str | None:
        """The chat message mN was shown in, or None after telling the user why not."""
        chat = self.st.shown.get(number)
        if chat is None:
            async with self.app.deps.sm() as s:
                chats = (await s.scalars(select(Outbox.chat_id).where(
                    Outbox.channel == CH, Outbox.status == OutboxStatus.SENT,
                    Outbox.external_message_id == str(number)))).all()
            if not chats:
                self.say(f"没有消息 m{number}，这次没有发送。"
                         "请用机器人消息后面括号里的编号，例如 /reply m4 文字。")
                return None
            if len(chats) > 1:
                # only from before numbering continued across restarts: never pick one
                self.say(f"消息号 m{number} 对应不止一条消息（旧版控制台重启后编号重复），"
                         "无法确定您回复的是哪一条，这次没有发送。请回复最近显示的消息号。")
                return None
            chat = chats[0]
        if chat == self.chat_id():
            return chat
        if chat == GROUP:
            self.say(f"消息 m{number} 在群里，您现在在私聊：请先输入 /group 再回复。")
        elif chat == self.st.who.user_id:
            self.say(f"消息 m{number} 在您的私聊里，您现在在群里：请先输入 /private 再回复。")
        else:
            self.say(f"消息 m{number} 是发给 {self.st.label(chat)} 的私聊，"
                     "您现在的身份看不到它，这次没有发送。")
        return None

    async def reply(self, rest: str) -> None:
        ref, text = split_first(rest)
        found = _REF.fullmatch(ref)
        if found is None or not text:
            self.say(REPLY_USAGE)
            return
        number = int(found.group(1))
        if await self.reply_chat(number) is None:
            return
        await self.app.core.on_message(self.inbound(text, reply_to_message_id=str(number),
                                                    reply_to_bot=True))

    async def press(self, number: int) -> None:
        pressed = self.st.buttons.get(number)
        if pressed is None:
            self.say("没有这个按钮（按钮编号只在本次运行中有效）。")
            return
        chat_id, action = pressed
        kind = ChatKind.GROUP if chat_id == GROUP else ChatKind.PRIVATE
        ctx = Ctx(CH, self.st.who.user_id, self.st.who.name, chat_id, kind)
        answer, _ok = await self.app.core.on_action(ctx, action)
        self.say(f"   （{answer}）")

    async def handle(self, line: str) -> bool:
        """One typed line; False to quit. An error in it is told, and the console goes on."""
        try:
            return await self._handle(line)
        except Exception as e:  # a bug must not end the session or leave a traceback on screen
            log.warning("console line failed: %s: %s", type(e).__name__, e)
            log.debug("console line failed", exc_info=True)
            self.say("这一行没有处理成功，请检查后重试。")
            return True

    async def _handle(self, line: str) -> bool:
        line = line.strip()
        if not line:
            return True
        core = self.app.core
        if line.startswith("#") and line[1:].isascii() and line[1:].isdigit():
            await self.press(int(line[1:]))
            return True
        if not line.startswith("/"):
            await core.on_message(self.inbound(line))
            return True
        cmd, rest = split_first(line)
        if cmd in ("/quit", "/exit"):
            return False
        if cmd == "/as":
            await self.become(words(rest))
        elif cmd == "/group":
            self.st.where = ChatKind.GROUP
            self.say("现在在群里说话。")
        elif cmd == "/private":
            self.st.where = ChatKind.PRIVATE
            self.say("现在私聊机器人。")
            await core.on_start(self.ctx(), "")
        elif cmd == "/bind":
            args = words(rest)
            await core.on_bind(self.ctx(), args[0] if args else "", "控制台群")
        elif cmd == "/photo":
            name, caption = split_first(rest)
            if not name:
                self.say(PHOTO_USAGE)
                return True
            await core.on_message(self.inbound(caption,
                                               media=[Media("photo", f"{CH}:{name}")]))
        elif cmd == "/loc":
            point = parse_location(words(rest.replace(",", " ").replace("，", " ")))
            if isinstance(point, str):
                self.say(point)
            else:
                await core.on_message(self.inbound(location=point))
        elif cmd == "/reply":
            await self.reply(rest)
        elif cmd == "/my":
            await core.on_message(self.inbound("/my"))
        elif cmd == "/queue":
            await core.on_queue(self.ctx())
        elif cmd == "/report":
            await core.on_message(self.inbound(line))
        else:
            self.say(HELP)
        return True


def _read_lines(inp: TextIO, loop: asyncio.AbstractEventLoop,
                lines: asyncio.Queue[str | None]) -> None:
    """Feed typed lines to the loop; None at the end of input."""
    try:
        for line in iter(inp.readline, ""):
            loop.call_soon_threadsafe(lines.put_nowait, line)
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(lines.put_nowait, None)


async def _next_line(lines: asyncio.Queue[str | None], stop: asyncio.Event) -> str | None:
    get = asyncio.ensure_future(lines.get())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({get, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if get.done():
        return get.result()
    get.cancel()
    return None


async def run_console(settings: Settings, inp: TextIO = sys.stdin, out: TextIO = sys.stdout
                      ) -> None:
    """Chat until /quit, the end of input or Ctrl-C (finish the line, then leave; twice: now)."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    stop = asyncio.Event()
    cancelled = False

    def interrupted() -> None:
        nonlocal cancelled
        if not stop.is_set():
            stop.set()
        elif main is not None and not cancelled:
            cancelled = True
            main.cancel()

    handler = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, interrupted)
        handler = True
    if isinstance(inp, io.TextIOWrapper):
        inp.reconfigure(errors="replace")  # a stray byte must not end the input
    try:
        await _chat(settings, inp, out, stop)
    except asyncio.CancelledError:
        if not cancelled:
            raise
        if main is not None:
            main.uncancel()
    finally:
        if handler:
            loop.remove_signal_handler(signal.SIGINT)


async def _chat(settings: Settings, inp: TextIO, out: TextIO, stop: asyncio.Event) -> None:
    state = ConsoleState()
    sender = ConsoleSender(state, out)
    app = await build_app(settings, {CH: sender})
    try:
        state.next_message = await last_message_number(app) + 1
        app.start_background()
        console = Console(app, state, out)
        console.say(f"网格报事助手 · 控制台。输入 /help 查看命令。"
                    f"您现在是居民{DEFAULT_RESIDENT}，在群里。")
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=_read_lines, args=(inp, loop, lines), daemon=True,
                         name="console-input").start()
        echo = inp is not sys.stdin or not sys.stdin.isatty()
        while not stop.is_set():
            line = await _next_line(lines, stop)
            if line is None:
                break
            if echo:
                console.say(f"» {line.rstrip()}")
            if not await console.handle(line):
                break
            await console.settle(3.0, stop)
        if stop.is_set():
            console.say("\n已退出控制台。")
        else:
            await console.settle(10.0, stop)
    finally:
        await app.close()
