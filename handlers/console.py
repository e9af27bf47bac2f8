"""A terminal chat through the real core: try the whole loop with no platform credentials.

Speak as a resident in a group or in private, switch to a grid worker, leader or coordinator,
press buttons by number. Everything goes through intake, routing, lifecycle and the outbox.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import uuid
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy import func, select

from bot.app import App, build_app
from bot.deps import Ctx
from bot.directory import standing_roles
from bot.messages import Action, GeoPoint, Inbound, Media, Outbound
from bot.onboarding import INVITE_SCOPE, InviteError, create_invite
from config.settings import Settings
from models.enums import Channel, ChatKind, OutboxStatus, StaffRole
from models.tickets import Outbox

CH = Channel.CONSOLE.value
GROUP = "group-1"

HELP = """命令 / commands:
  /as resident [名字]         以居民身份说话 (speak as a resident)
  /as worker|leader 网格编号   以网格员/网格长身份 (e.g. /as worker FN-02)
  /as coordinator 社区编号     以社区工作人员身份 (e.g. /as coordinator FN)
  /as centre                  以指挥中心身份
  /group | /private           在群里说 / 私聊机器人 (where you speak)
  /bind 编号                   把群绑定到网格或社区 (as coordinator, in the group)
  /photo 名称 [说明]           发一张照片 (send a photo)
  /loc 纬度 经度 [gcj02]       发送位置 (share a location)
  /reply 消息号 文字           回复某条消息 (reply to a message, e.g. a ticket card)
  #数字                        按按钮 (press a button, e.g. #3)
  /my  /queue  /help  /quit    其他文字：作为消息发送 (anything else is sent as a message)"""


@dataclass
class Who:
    user_id: str = "resident-张大爷"
    name: str = "张大爷"


@dataclass
class ConsoleState:
    who: Who = field(default_factory=Who)
    where: ChatKind = ChatKind.GROUP
    buttons: dict[int, tuple[str, Action]] = field(default_factory=dict)
    next_button: int = 1
    next_message: int = 1
    names: dict[str, str] = field(default_factory=dict)  # chat id -> label


class ConsoleSender:
    channel = CH

    def __init__(self, state: ConsoleState, out: TextIO) -> None:
        self.state, self.out = state, out

    async def send(self, msg: Outbound) -> str | None:
        st = self.state
        mid = st.next_message
        st.next_message += 1
        where = "群聊" if msg.chat_id == GROUP else f"私聊 {st.names.get(msg.chat_id, msg.chat_id)}"
        head = f"\n🤖 → {where} (m{mid})"
        if msg.mention_name:
            head += f" @{msg.mention_name}"
        lines = [head, *("   " + ln for ln in msg.text.splitlines())]
        lines += [f"   [照片 {p}]" for p in msg.photos]
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


class Console:
    def __init__(self, app: App, state: ConsoleState, out: TextIO) -> None:
        self.app, self.st, self.out = app, state, out

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def chat_id(self) -> str:
        return GROUP if self.st.where == ChatKind.GROUP else self.st.who.user_id

    def ctx(self) -> Ctx:
        return Ctx(CH, self.st.who.user_id, self.st.who.name, self.chat_id(), self.st.where,
                   uuid.uuid4().hex[:8])

    def inbound(self, text: str = "", **kw: object) -> Inbound:
        mid = uuid.uuid4().hex  # unique across restarts: the inbound log would drop repeats
        return Inbound(channel=CH, external_id=mid, chat_id=self.chat_id(),
                       chat_kind=self.st.where, sender_id=self.st.who.user_id,
                       sender_name=self.st.who.name, text=text, message_id=mid,
                       mentions_bot=self.st.where == ChatKind.GROUP and bool(text),
                       **kw)  # type: ignore[arg-type]

    async def settle(self, seconds: float) -> None:
        """Wait until the outbox has delivered what this line caused (replies print in order)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            async with self.app.deps.sm() as s:
                waiting = await s.scalar(select(func.count()).select_from(Outbox).where(
                    Outbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING])))
            if not waiting:
                return
            await asyncio.sleep(0.1)

    async def become(self, args: list[str]) -> None:
        if not args:
            self.say(HELP)
            return
        role = args[0]
        if role == "resident":
            name = args[1] if len(args) > 1 else "张大爷"
            self.st.who = Who(f"resident-{name}", name)
            self.st.where = ChatKind.GROUP
            self.st.names[self.st.who.user_id] = name
            self.say(f"现在你是居民 {name}（在群里；/private 切换到私聊）。")
            return
        try:
            staff_role = StaffRole(role)
        except ValueError:
            self.say(HELP)
            return
        scope = args[1].upper() if len(args) > 1 else ""
        uid = f"{role}-{scope or 'centre'}"
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
                except InviteError as e:
                    self.say(f"没有这个编号：{e}")
                    return
        self.st.who = Who(uid, f"{role}:{scope}")
        self.st.where = ChatKind.PRIVATE
        self.st.names[uid] = self.st.who.name
        if code is not None:
            await self.app.core.on_start(self.ctx(), code)
        self.say(f"现在你是 {role} {scope}（私聊）。")

    async def handle(self, line: str) -> bool:
        line = line.strip()
        if not line:
            return True
        core = self.app.core
        if line.startswith("#") and line[1:].isdigit():
            pressed = self.st.buttons.get(int(line[1:]))
            if pressed is None:
                self.say("没有这个按钮。")
                return True
            chat_id, action = pressed
            kind = ChatKind.GROUP if chat_id == GROUP else ChatKind.PRIVATE
            ctx = Ctx(CH, self.st.who.user_id, self.st.who.name, chat_id, kind)
            answer, _ok = await core.on_action(ctx, action)
            self.say(f"   ({answer})")
            return True
        if not line.startswith("/"):
            await core.on_message(self.inbound(line))
            return True
        parts = shlex.split(line)
        cmd, args = parts[0], parts[1:]
        if cmd in ("/quit", "/exit"):
            return False
        if cmd == "/as":
            await self.become(args)
        elif cmd == "/group":
            self.st.where = ChatKind.GROUP
        elif cmd == "/private":
            self.st.where = ChatKind.PRIVATE
            await core.on_start(self.ctx(), "")
        elif cmd == "/bind":
            await core.on_bind(self.ctx(), args[0] if args else "", "console group")
        elif cmd == "/photo":
            name = args[0] if args else "photo"
            await core.on_message(self.inbound(" ".join(args[1:]),
                                               media=[Media("photo", f"console:{name}")]))
        elif cmd == "/loc" and len(args) >= 2:
            datum = args[2] if len(args) > 2 else "wgs84"
            await core.on_message(self.inbound(location=GeoPoint(float(args[0]), float(args[1]),
                                                                 datum)))
        elif cmd == "/reply" and len(args) >= 2:
            await core.on_message(self.inbound(" ".join(args[1:]),
                                               reply_to_message_id=args[0].lstrip("m"),
                                               reply_to_bot=True))
        elif cmd == "/my":
            await core.on_message(self.inbound("/my"))
        elif cmd == "/queue":
            await core.on_queue(self.ctx())
        elif cmd == "/report":
            await core.on_message(self.inbound(line))
        else:
            self.say(HELP)
        return True


async def run_console(settings: Settings, inp: TextIO = sys.stdin, out: TextIO = sys.stdout
                      ) -> None:
    state = ConsoleState()
    sender = ConsoleSender(state, out)
    app = await build_app(settings, {CH: sender})
    app.start_background()
    console = Console(app, state, out)
    console.say("网格报事助手 · 控制台 (console). 输入 /help 查看命令。"
                "你现在是居民张大爷，在群里。")
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, inp.readline)
            if not line:
                break
            if inp is not sys.stdin or not sys.stdin.isatty():
                console.say(f"» {line.rstrip()}")
            if not await console.handle(line):
                break
            await console.settle(3.0)
        await console.settle(10.0)
    finally:
        await app.close()
