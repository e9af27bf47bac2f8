"""The service's HTTP port: /healthz and /metrics always; platform webhooks mount here too.

/healthz answers 503 when the database is unreachable or a channel's intake is stuck (see
`bot.health`), so a supervisor or load balancer can act on it; the body says which.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from bot.app import App
from bot.metrics import CONTENT_TYPE, Metrics, metrics_for
from models.enums import OutboxStatus
from models.tickets import Outbox

log = logging.getLogger(__name__)

APP_KEY = web.AppKey("grid_app", App)
METRICS_KEY = web.AppKey("grid_metrics", Metrics)


async def healthz(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    channels = app.health.report()
    problems = app.health.problems()
    pending_now = Outbox.status == OutboxStatus.PENDING
    try:
        async with app.deps.sm() as s:
            pending, dead, oldest = (await s.execute(select(
                func.count().filter(pending_now),
                func.count().filter(Outbox.status == OutboxStatus.DEAD),
                func.min(Outbox.created_at).filter(pending_now)))).one()
    except Exception as e:
        log.warning("healthz: database unreachable (%s)", type(e).__name__)
        return web.json_response({"ok": False, "db": "unreachable", "channels": channels,
                                  "problems": [*problems, "database unreachable"]}, status=503)
    body: dict[str, Any] = {
        "ok": not problems,
        "outbox_pending": pending,
        "outbox_dead": dead,
        "outbox_oldest_pending_seconds":
            None if oldest is None else round((app.deps.clock() - oldest).total_seconds(), 1),
        "channels": channels,
    }
    if problems:
        body["problems"] = problems
    return web.json_response(body, status=503 if problems else 200)


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS_KEY].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def make_web_app(app: App) -> web.Application:
    web_app = web.Application(client_max_size=2 * 1024 * 1024)
    web_app[APP_KEY] = app
    web_app[METRICS_KEY] = metrics_for(app)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics)
    return web_app


async def start_site(web_app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
