"""`run_bot.py serve` with only the Official Account configured: no Telegram at all.

The real service as a subprocess, WeChat's API faked on 127.0.0.1, a resident's message
POSTed to /wechat/oa in plaintext mode, answered with the ticket number.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from handlers.wechat.signing import signature
from tests.contract.wechat import APPID, SECRET, TOKEN
from tests.fakes.wechat_api import FakeWeChatAPI
from tests.procs import REPO, clean_env, free_port

pytestmark = pytest.mark.slow  # a real subprocess or HTTP server: the fast set skips it

RESIDENT = "o6_bmjrPTlm6_2sgVt7hMserve01"


def _message(text: str, msg_id: int, created: int) -> str:
    return (f"<xml><ToUserName><![CDATA[gh_grid]]></ToUserName>"
            f"<FromUserName><![CDATA[{RESIDENT}]]></FromUserName>"
            f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>")


async def test_serve_with_only_the_official_account(tmp_path: Path) -> None:
    port = free_port()
    async with FakeWeChatAPI(APPID, SECRET) as api:
        env = clean_env()
        env.update({
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'oa.db'}",
            "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(port),
            "WECHAT_OA_APPID": APPID, "WECHAT_OA_SECRET": SECRET, "WECHAT_OA_TOKEN": TOKEN,
            "WECHAT_API_BASE": api.base_url, "OUTBOX_POLL_SECONDS": "0.1",
            "PYTHONUNBUFFERED": "1",
        })
        log = (tmp_path / "serve.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "run_bot.py", "serve", cwd=REPO, env=env, stdout=log,
            stderr=asyncio.subprocess.STDOUT)
        try:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                health: dict[str, object] = {}
                for _ in range(300):
                    try:
                        async with http.get(f"{base}/healthz") as r:
                            health = await r.json()
                            break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
                assert health, (tmp_path / "serve.log").read_text()
                channels = str(health.get("channels"))
                assert "wechat" in channels and "telegram" not in channels, health

                ts, nonce = str(int(time.time())), "88120"
                params = {"timestamp": ts, "nonce": nonce,
                          "signature": signature(TOKEN, ts, nonce)}
                body = _message("报事 南关农贸市场门口垃圾堆了三天没人清运", 73000001, int(ts))
                async with http.post(f"{base}/wechat/oa", params=params,
                                     data=body.encode()) as r:
                    status, reply = r.status, await r.text()
            assert status == 200, reply
            if reply == "success":  # not ready within the 5 s budget: it follows by the API
                for _ in range(100):
                    if api.texts(RESIDENT):
                        break
                    await asyncio.sleep(0.1)
                reply = "".join(api.texts(RESIDENT))
            number = re.search(r"工单号 (FS-\d{8}-\d{4})", reply)
            assert number, reply
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 20)
            log.close()
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_each_kind_is_on_only_with_its_settings(tmp_path: Path) -> None:
    from config.settings import Settings
    from handlers.serve import JobEdge, configured, present

    base = {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"}
    assert present(Settings(_env_file=None, **base)) == []  # type: ignore[arg-type]
    pull_only = Settings(_env_file=None, wecom_corp_id="ww1", wecom_secret="s",  # type: ignore[arg-type]
                         **base)
    [edge] = configured(pull_only)
    assert isinstance(edge, JobEdge) and edge.name == "wecom_resident" and edge.sender is None
    off = Settings(_env_file=None, wecom_corp_id="ww1", wecom_secret="s",  # type: ignore[arg-type]
                   wecom_resident_sync_seconds=0, **base)
    assert present(off) == []
    app = Settings(_env_file=None, wecom_corp_id="ww1", wecom_secret="s",  # type: ignore[arg-type]
                   wecom_agent_id=1000002, wecom_token="t",
                   wecom_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", **base)
    assert sorted(k.module for k in present(app)) == ["handlers.wecom.app",
                                                      "handlers.wecom.residents.sync"]
