"""/metrics scraped over real HTTP from the service's own port on 127.0.0.1.

The app, its database (an SQLite file, and PostgreSQL), intake, outbox and sweeper are real;
reports go in through the core, the way every channel hands them over, and each scrape is
checked against what they did.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import App, build_app
from bot.deps import Ctx
from bot.health import Health
from bot.messages import Outbound, PermanentSendError, TransientSendError
from bot.metrics import metrics_for
from bot.people.onboarding import create_invite
from bot.tickets.sweeper import sweep_once
from config.settings import Settings
from handlers.http import make_web_app, start_site
from models.db import make_sessionmaker
from models.enums import ChatKind, StaffRole
from tests.conftest import FakeClock
from tests.contract.channels import drain
from tests.fakes.minimal import CHANNEL, MinimalChat, MinimalSender
from tests.pg import fresh_database

WORKER, COORD = "w601", "c602"
NUMBER = re.compile(r"FS-\d{8}-\d{4}")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class FlakySender(MinimalSender):
    """The minimal channel, with chats that fail once (then work) and chats that never work."""

    flaky: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)

    async def send(self, msg: Outbound) -> str | None:
        if msg.chat_id in self.refused:
            raise PermanentSendError("blocked by the user")
        if msg.chat_id in self.flaky:
            self.flaky.discard(msg.chat_id)
            raise TransientSendError("502 Bad Gateway")
        return await super().send(msg)


class Mono:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Service:
    app: App
    sender: FlakySender
    url: str
    chat: MinimalChat = field(default_factory=MinimalChat)

    async def scrape(self) -> tuple[Samples, str]:
        async with aiohttp.ClientSession() as http, http.get(self.url) as r:
            assert r.status == 200 and r.content_type == "text/plain"
            body = await r.text()
        samples: Samples = {}
        for family in text_string_to_metric_families(body):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples, body


def at(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def tickets(samples: Samples) -> dict[str, float]:
    return {dict(k[1])["state"]: v for k, v in samples.items()
            if k[0] == "gridintake_tickets" and v}


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest,
                   loaded_settings: Settings) -> AsyncIterator[Settings]:
    if request.param == "sqlite":
        yield loaded_settings
        return
    async with fresh_database("metrics_test") as url:
        yield Settings(database_url=url, _env_file=None)  # type: ignore[call-arg]


@pytest.fixture
async def service(database: Settings, clock: FakeClock) -> AsyncIterator[Service]:
    sender = FlakySender()
    app = await build_app(database, {CHANNEL: sender}, clock=clock)
    runner: web.AppRunner | None = None
    try:
        runner = await start_site(make_web_app(app), "127.0.0.1", 0)
        host, port = runner.addresses[0][:2]
        yield Service(app, sender, f"http://{host}:{port}/metrics")
    finally:
        if runner is not None:
            await runner.cleanup()
        await app.close()


async def join(app: App, user: str, role: StaffRole, **scope: str) -> None:
    async with app.deps.sm() as s, s.begin():
        inv = await create_invite(s, role, grid=scope.get("grid"),
                                  community=scope.get("community"), now=app.deps.clock(),
                                  ttl_days=7)
    await app.core.on_start(Ctx(CHANNEL, user, user, user, ChatKind.PRIVATE, f"join-{user}"),
                            inv.code)


async def test_reports_move_tickets_outbox_and_intake_latency(
        service: Service, clock: FakeClock) -> None:
    app, chat = service.app, service.chat
    before, _ = await service.scrape()
    assert at(before, "gridintake_database_up") == 1
    assert tickets(before) == {}
    assert at(before, "gridintake_outbox_depth") == 0
    assert at(before, "gridintake_outbox_oldest_age_seconds") == 0
    assert ("gridintake_intake_latency_seconds_count", (("outcome", "report"),)) not in before

    await join(app, WORKER, StaffRole.WORKER, grid="FN-02")
    await drain(app, clock)
    await app.core.on_message(chat.private("r1", "南关农贸市场门口垃圾堆了三天没人清运，"
                                           "电话13812345678", name="张桂英"))
    await app.core.on_message(chat.private("r2", "南关农贸市场门口的路灯坏了，晚上很黑",
                                           name="李建国"))
    await app.core.on_message(chat.private("r1", "南关农贸市场门口垃圾堆了三天没人清运，"
                                           "电话13812345678", name="张桂英"))
    clock.advance(90)
    after, body = await service.scrape()
    assert tickets(after) == {"assigned": 2}
    # two receipts and two cards, a third receipt for the repeat: all written 90 s ago
    assert at(after, "gridintake_outbox_depth") >= 4
    assert at(after, "gridintake_outbox_oldest_age_seconds") == 90
    assert at(after, "gridintake_intake_latency_seconds_count", outcome="report") == 2
    assert at(after, "gridintake_intake_latency_seconds_count", outcome="folded") == 1
    assert at(after, "gridintake_intake_latency_seconds_sum", outcome="report") > 0
    assert "13812345678" not in body and "张桂英" not in body and "r1" not in body

    await drain(app, clock)
    number = NUMBER.search(service.sender.texts("r2")[-1]).group(0)  # type: ignore[union-attr]
    await app.core.on_message(chat.private(WORKER, f"接单 {number}"))
    await drain(app, clock)
    done, _ = await service.scrape()
    assert tickets(done) == {"assigned": 1, "acknowledged": 1}
    assert at(done, "gridintake_outbox_depth") == 0
    assert at(done, "gridintake_outbox_oldest_age_seconds") == 0


async def test_one_registry_per_app_however_many_web_apps(
        service: Service, loaded_settings: Settings, clock: FakeClock) -> None:
    app = service.app
    make_web_app(app)  # bench/wechat.py mounts two web apps over one App
    assert metrics_for(app) is metrics_for(app)
    await app.core.on_message(service.chat.private("r3", "南关农贸市场门口垃圾没人清"))
    samples, _ = await service.scrape()
    assert at(samples, "gridintake_intake_latency_seconds_count", outcome="report") == 1

    other = await build_app(loaded_settings, {CHANNEL: MinimalSender()}, clock=clock)
    try:
        assert metrics_for(other).registry is not metrics_for(app).registry
        text = (await metrics_for(other).render()).decode()
        assert 'gridintake_intake_latency_seconds_count{outcome="report"}' not in text
    finally:
        await other.close()


async def test_failed_and_dead_lettered_deliveries(service: Service, clock: FakeClock) -> None:
    app, chat, sender = service.app, service.chat, service.sender
    await join(app, WORKER, StaffRole.WORKER, grid="FN-02")
    await join(app, COORD, StaffRole.COORDINATOR, community="FN")
    await drain(app, clock)
    sender.flaky.add("r4")
    sender.refused.add("r5")
    await app.core.on_message(chat.private("r4", "南关农贸市场门口垃圾堆了三天没人清运"))
    await app.core.on_message(chat.private("r5", "南关农贸市场门口的路灯坏了，晚上很黑"))
    await app.outbox.run_once()
    samples, _ = await service.scrape()
    assert at(samples, "gridintake_outbox_failed") == 1  # r4's receipt, to be tried again
    assert at(samples, "gridintake_outbox_dead_lettered") == 1  # r5's, given up on at once
    assert at(samples, "gridintake_outbox_depth") >= 1

    await drain(app, clock)
    samples, _ = await service.scrape()
    assert at(samples, "gridintake_outbox_failed") == 0
    assert at(samples, "gridintake_outbox_dead_lettered") == 1
    assert at(samples, "gridintake_outbox_depth") == 0
    assert any(NUMBER.search(x) for x in sender.texts("r4"))  # the receipt, on its second try


async def test_sla_breaches_by_level(service: Service, clock: FakeClock) -> None:
    app = service.app
    await join(app, WORKER, StaffRole.WORKER, grid="FN-02")
    await app.core.on_message(service.chat.private("r6", "南关农贸市场门口垃圾堆了三天没人清运"))
    first, _ = await service.scrape()
    assert at(first, "gridintake_sla_breached_tickets", level="1") == 0
    assert at(first, "gridintake_sla_escalations_total", level="1") == 0

    clock.advance(hours=3)  # past the 2 working hours to acknowledge
    assert await sweep_once(app.deps) == 1
    once, _ = await service.scrape()
    assert at(once, "gridintake_sla_breached_tickets", level="1") == 1
    assert at(once, "gridintake_sla_escalations_total", level="1") == 1
    assert at(once, "gridintake_sla_escalations_total", level="2") == 0

    clock.advance(hours=4)  # one escalation step later, still not acknowledged
    assert await sweep_once(app.deps) == 1
    twice, _ = await service.scrape()
    assert at(twice, "gridintake_sla_breached_tickets", level="1") == 0
    assert at(twice, "gridintake_sla_breached_tickets", level="2") == 1
    assert at(twice, "gridintake_sla_escalations_total", level="1") == 1
    assert at(twice, "gridintake_sla_escalations_total", level="2") == 1
    again, _ = await service.scrape()  # a scrape with nothing new counts nothing twice
    assert at(again, "gridintake_sla_escalations_total", level="2") == 1


async def test_sync_lag_and_channel_health(service: Service) -> None:
    mono = Mono()
    service.app.health = Health(mono)
    sync = service.app.health.channel("wecom_resident", "pull", success="sync", stale_after=300)
    service.app.health.channel("telegram", "polling", success="poll", stale_after=33)
    mono.now += 40
    samples, _ = await service.scrape()
    assert at(samples, "gridintake_sync_lag_seconds", channel="wecom_resident") == 40
    assert ("gridintake_sync_lag_seconds", (("channel", "telegram"),)) not in samples
    assert at(samples, "gridintake_channel_up", channel="wecom_resident", mode="pull") == 1
    assert at(samples, "gridintake_channel_up", channel="telegram", mode="polling") == 0

    sync.ok()
    mono.now += 15
    samples, _ = await service.scrape()
    assert at(samples, "gridintake_sync_lag_seconds", channel="wecom_resident") == 15
    mono.now += 400  # no sync for longer than it may be quiet
    samples, _ = await service.scrape()
    assert at(samples, "gridintake_sync_lag_seconds", channel="wecom_resident") == 415
    assert at(samples, "gridintake_channel_up", channel="wecom_resident", mode="pull") == 0


async def test_an_unreachable_database_is_reported_not_raised(service: Service,
                                                              tmp_path: Path) -> None:
    deps = service.app.deps
    ours = deps.read
    gone = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}")  # a directory, not a file
    deps.read = make_sessionmaker(gone)
    try:
        samples, _ = await service.scrape()
    finally:
        deps.read = ours
        await gone.dispose()
    assert at(samples, "gridintake_database_up") == 0
    assert not tickets(samples)
    assert ("gridintake_outbox_depth", ()) not in samples
    samples, _ = await service.scrape()
    assert at(samples, "gridintake_database_up") == 1
