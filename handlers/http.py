"""The service's HTTP port: /healthz always; platform webhooks mount here too."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from bot.app import App
from models.enums import OutboxStatus
from models.tickets import Outbox

APP_KEY = web.AppKey("grid_app", App)


async def healthz(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    try:
        async with app.deps.sm() as s:
            pending = await s.scalar(select(func.count()).select_from(Outbox).where(
                Outbox.status == OutboxStatus.PENDING))
            dead = await s.scalar(select(func.count()).select_from(Outbox).where(
                Outbox.status == OutboxStatus.DEAD))
    except Exception:
        return web.json_response({"ok": False, "db": "unreachable"}, status=503)
    return web.json_response({"ok": True, "outbox_pending": pending, "outbox_dead": dead})


def make_web_app(app: App) -> web.Application:
    web_app = web.Application(client_max_size=2 * 1024 * 1024)
    web_app[APP_KEY] = app
    web_app.router.add_get("/healthz", healthz)
    return web_app


async def start_site(web_app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
