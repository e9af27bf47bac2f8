"""`serve`: every configured channel on one HTTP port, around one core.

Each channel is an edge (`Edge`): it declares its sender, mounts its routes, and runs until
the app stops (Telegram polls or takes its webhook; a webhook-only channel just waits). A
channel whose settings are absent is off; /healthz lists the ones that are on.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from bot.app import App, build_app
from bot.messages import Sender
from config.settings import Settings
from handlers.http import make_web_app, start_site

log = logging.getLogger(__name__)


class Edge(Protocol):
    name: str  # the channel, as stored on tickets and identities

    @property
    def sender(self) -> Sender | None: ...  # None: no chat of its own (a job)

    async def prepare(self) -> None:
        """Reach the platform once before anything is served (fails the start clearly)."""

    def follow_link(self, number: str) -> str | None:
        """A link that opens this channel's private chat following ticket `number`."""

    def mount(self, web_app: web.Application, app: App) -> None:
        """Add this channel's webhook routes and register its health."""

    async def run(self, app: App) -> None:
        """Work until app.stop is set (poll, or hold a webhook)."""

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """A channel serve can start: when its settings count as present, and where its edge is."""

    label: str  # as an operator knows it, for messages
    settings: str  # the settings that turn it on, for messages
    present: Callable[[Settings], bool]
    module: str  # imported only when present: platform libraries load only for channels in use
    factory: str  # a callable in module: (Settings) -> Edge (or a Job, with job=True)
    job: bool = False  # a loop with no chat of its own (a pull), not a channel


KINDS: tuple[ChannelKind, ...] = (
    ChannelKind("Telegram", "TELEGRAM_BOT_TOKEN",
                lambda s: s.telegram_bot_token is not None,
                "handlers.telegram.edge", "TelegramEdge"),
    ChannelKind("微信公众号", "WECHAT_OA_APPID/SECRET/TOKEN",
                lambda s: bool(s.wechat_oa_appid and s.wechat_oa_secret and s.wechat_oa_token),
                "handlers.wechat.oa", "OfficialAccount.from_settings"),
    ChannelKind("企业微信应用", "WECOM_CORP_ID/SECRET/AGENT_ID/TOKEN/AES_KEY",
                lambda s: bool(s.wecom_corp_id and s.wecom_secret and s.wecom_agent_id
                               and s.wecom_token and s.wecom_aes_key),
                "handlers.wecom.app", "WeComApp.from_settings"),
    ChannelKind("企业微信智能机器人", "WECOM_ROBOT_TOKEN/AES_KEY",
                lambda s: bool(s.wecom_robot_token and s.wecom_robot_aes_key),
                "handlers.wecom.robot", "SmartRobot.from_settings"),
    ChannelKind("企业微信群机器人", "WECOM_GROUP_WEBHOOK_URL",
                lambda s: s.wecom_group_webhook_url is not None,
                "handlers.wecom.webhook", "GroupWebhook.from_settings"),
    ChannelKind("企业微信居民上报", "WECOM_CORP_ID/SECRET 与 WECOM_RESIDENT_SYNC_SECONDS",
                lambda s: bool(s.wecom_corp_id and s.wecom_secret
                               and s.wecom_resident_sync_seconds > 0),
                "handlers.wecom.residents.sync", "ResidentSync.from_settings", job=True),
    ChannelKind("网页工作台", "DESK_SECRET_KEY",
                lambda s: s.desk_secret_key is not None,
                "handlers.web.desk", "Desk.from_settings"),
    ChannelKind("消息桥", "BRIDGE_SECRET",
                lambda s: s.bridge_secret is not None,
                "handlers.bridge.edge", "BridgeEdge.from_settings"),
)


class Job(Protocol):
    name: str

    async def run(self, app: App) -> None:
        """Work until app.stop is set."""


class JobEdge:
    """A job run as an edge: no sender, no routes; its health is its own."""

    sender = None

    def __init__(self, job: Job) -> None:
        self.job, self.name = job, job.name

    async def prepare(self) -> None:
        pass

    def follow_link(self, number: str) -> str | None:
        return None

    def mount(self, web_app: web.Application, app: App) -> None:
        pass

    async def run(self, app: App) -> None:
        await self.job.run(app)

    async def close(self) -> None:
        pass


def present(settings: Settings) -> list[ChannelKind]:
    return [k for k in KINDS if k.present(settings)]


def configured(settings: Settings) -> list[Edge]:
    """The channels whose settings are present (platform libraries load only for those)."""
    edges: list[Edge] = []
    for kind in present(settings):
        target: Any = importlib.import_module(kind.module)
        for part in kind.factory.split("."):
            target = getattr(target, part)
        edge = target(settings)
        if edge is not None:
            edges.append(JobEdge(edge) if kind.job else edge)
    return edges


async def serve(settings: Settings, edges: list[Edge]) -> None:
    by_name = {e.name: e for e in edges}
    for e in edges:
        await e.prepare()

    def follow(channel: str, number: str) -> str | None:
        edge = by_name.get(channel)
        return edge.follow_link(number) if edge else None

    senders = {e.name: e.sender for e in edges if e.sender is not None}
    app = await build_app(settings, senders, follow_link=follow)
    web_app = make_web_app(app)
    for e in edges:
        e.mount(web_app, app)  # before /healthz answers: it never shows a process without them
    runner = await start_site(web_app, settings.http_host, settings.http_port)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, app.stop.set)
    app.start_background()
    log.info("serving %s; /healthz on %s:%s", ", ".join(by_name), settings.http_host,
             settings.http_port)
    try:
        await asyncio.gather(*(e.run(app) for e in edges))
    finally:
        await runner.cleanup()
        await app.close()
        for e in edges:
            await e.close()


def run(settings: Settings, edges: list[Edge]) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, edges))
