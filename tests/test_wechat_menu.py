"""`run_bot.py wechat menu`: the menu JSON it sends to menu/create through the channel's client
and token store, WECHAT_OA_MENU, one-line errors; and the HELP button's answer."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from config.settings import Settings
from handlers.wechat.menu import MenuError, build_menu, configured_menu, create_menu, set_menu
from models.db import make_engine, make_sessionmaker
from tests.conftest import FakeClock
from tests.contract.wechat import APPID, SECRET, WeChatUsers, oa_settings, oa_stack
from tests.fakes.wechat_api import MENU_CREATE, TOKEN, FakeWeChatAPI
from tests.procs import REPO, clean_env

EXPECTED = {"button": [
    {"type": "click", "name": "我要报事", "key": "REPORT"},
    {"type": "click", "name": "我的工单", "key": "MY_TICKETS"},
    {"type": "click", "name": "使用说明", "key": "HELP"},
]}


@pytest.fixture
async def api() -> AsyncIterator[FakeWeChatAPI]:
    async with FakeWeChatAPI(APPID, SECRET) as fake:
        yield fake


async def test_the_default_menu_is_sent_with_the_stored_token(
        loaded_settings: Settings, api: FakeWeChatAPI, capsys: pytest.CaptureFixture[str]) -> None:
    settings = oa_settings(loaded_settings, api)
    assert await set_menu(settings, None) == 0
    assert api.menus == [EXPECTED]
    [call] = api.calls_to(MENU_CREATE)
    assert call.params["access_token"].startswith("TOKEN0001-")
    out, err = capsys.readouterr()
    assert err == ""
    assert out == ("公众号菜单已设置 / menu set: 我要报事（REPORT） | 我的工单（MY_TICKETS） | "
                   "使用说明（HELP）\n")
    # a second run (or the running service) uses the token in the database: no new fetch
    await create_menu(settings, build_menu(None))
    assert api.token_fetches == 1 and len(api.calls_to(TOKEN)) == 1
    assert len(api.menus) == 2


async def test_a_token_wechat_calls_invalid_is_fetched_again_once(
        loaded_settings: Settings, api: FakeWeChatAPI) -> None:
    settings = oa_settings(loaded_settings, api)
    await create_menu(settings, build_menu(None))
    api.expire_tokens()  # another process refreshed it
    await create_menu(settings, build_menu(None))
    assert api.token_fetches == 2
    assert [c.errcode for c in api.calls_to(MENU_CREATE)] == [0, 40001, 0]


async def test_wechat_menu_override_is_sent_as_given(
        loaded_settings: Settings, api: FakeWeChatAPI) -> None:
    menu = {"button": [
        {"type": "click", "name": "报事", "key": "REPORT"},
        {"name": "更多", "sub_button": [
            {"type": "click", "name": "我的工单", "key": "MY_TICKETS"},
            {"type": "view", "name": "社区主页", "url": "https://example.invalid/"}]}]}
    await create_menu(oa_settings(loaded_settings, api),
                      build_menu(json.dumps(menu, ensure_ascii=False)))
    assert api.menus == [menu]
    assert build_menu(json.dumps(menu["button"])) == menu  # the list alone is the same menu


def test_wechat_oa_menu_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the working directory
    monkeypatch.delenv("WECHAT_OA_MENU", raising=False)
    assert configured_menu() is None
    monkeypatch.setenv("WECHAT_OA_MENU", '[{"type": "click", "name": "说明", "key": "HELP"}]')
    assert build_menu(configured_menu()) == {
        "button": [{"type": "click", "name": "说明", "key": "HELP"}]}


@pytest.mark.parametrize(("override", "says"), [
    ("{not json", "不是合法的 JSON"),
    ('{"menu": []}', '{"button": [...]}'),
    ("[]", "1 到 3 个按钮"),
    ('[{"type": "click", "key": "REPORT"}]', "要有 name"),
    ('[{"type": "click", "name": "报事", "key": "REPAIR"}]', '"REPAIR" 公众号不认'),
    ('[{"type": "click", "name": "我要报事我要报事", "key": "REPORT"}]', "超过 16 字节"),
    ('[{"name": "更多", "sub_button": []}]', "“更多”的子菜单要有 1 到 5 个按钮"),
    ('[{"name": "更多"}]', "没有 type"),
])
def test_a_bad_override_is_one_line(override: str, says: str) -> None:
    with pytest.raises(MenuError) as e:
        build_menu(override)
    assert says in str(e.value)
    assert "\n" not in str(e.value)


def test_not_configured_is_one_line_and_touches_nothing(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert asyncio.run(set_menu(settings, None)) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("没有配置公众号：需要 WECHAT_OA_APPID 和 WECHAT_OA_SECRET")
    db = settings.database_url.partition(":///")[2]
    assert not Path(db).exists()


@pytest.mark.parametrize(("path", "errcode", "says"), [
    (MENU_CREATE, 48001, "errcode 48001: fake error 48001）"),
    (MENU_CREATE, 40016, "errcode 40016: fake error 40016）"),
])
async def test_wechat_refusing_is_one_line_with_errcode_and_errmsg(
        loaded_settings: Settings, api: FakeWeChatAPI, capsys: pytest.CaptureFixture[str],
        path: str, errcode: int, says: str) -> None:
    api.fail(path, errcode)
    assert await set_menu(oa_settings(loaded_settings, api), None) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("设置菜单失败：微信拒绝了") and says in err
    assert api.menus == []


async def test_a_wrong_secret_and_an_unreachable_api_are_one_line(
        loaded_settings: Settings, api: FakeWeChatAPI, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = oa_settings(loaded_settings, api, wechat_oa_secret="not-the-secret")
    assert await set_menu(wrong, None) == 1
    gone = oa_settings(loaded_settings, api, wechat_api_base="http://127.0.0.1:9",
                       wechat_http_timeout_s=2.0)
    assert await set_menu(gone, None) == 1
    out, err = capsys.readouterr()
    first, second = err.splitlines()
    assert out == "" and err.count("\n") == 2
    assert "errcode 40125: invalid appsecret" in first and "WECHAT_OA_SECRET 不对" in first
    assert "not-the-secret" not in err
    assert second.startswith("设置菜单失败：连不上微信接口（ClientConnectorError）")


async def test_a_refused_token_fetch_leaves_no_lease_behind(
        loaded_settings: Settings, api: FakeWeChatAPI) -> None:
    with pytest.raises(MenuError, match="errcode 40125"):
        await create_menu(oa_settings(loaded_settings, api, wechat_oa_secret="wrong"),
                          build_menu(None))
    settings = oa_settings(loaded_settings, api)
    await create_menu(settings, build_menu(None))  # at once: the failed fetch holds no lease
    assert api.menus == [EXPECTED]
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s:
            rows = (await s.execute(text("SELECT refreshing_until FROM access_tokens"))).all()
    finally:
        await engine.dispose()
    assert rows == [(None,)]


async def test_the_help_button_answers_with_the_core_help(
        loaded_settings: Settings, clock: FakeClock) -> None:
    async with oa_stack(loaded_settings, clock) as stack:
        users = WeChatUsers(stack)
        answer = await users.event("o6_bmjrPTlm6_2sgVt7hMZOPfHELP", "CLICK", "HELP")
        assert answer.text is not None and answer.text.startswith("直接发送问题即可报事")


@pytest.mark.slow
async def test_run_bot_wechat_menu_end_to_end(
        loaded_settings: Settings, api: FakeWeChatAPI) -> None:
    env = {k: v for k, v in clean_env().items() if not k.upper().startswith("WECHAT_")}
    env.update(DATABASE_URL=loaded_settings.database_url, WECHAT_OA_APPID=APPID,
               WECHAT_OA_SECRET=SECRET, WECHAT_API_BASE=api.base_url)

    async def run(*args: str, **extra: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "run_bot.py", *args, cwd=REPO, env={**env, **extra},
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        return proc.returncode or 0, out.decode(), err.decode()

    assert await run("wechat", "menu") == (
        0, "公众号菜单已设置 / menu set: 我要报事（REPORT） | 我的工单（MY_TICKETS） | "
           "使用说明（HELP）\n", "")
    assert api.menus == [EXPECTED]
    one = '[{"type": "click", "name": "报事", "key": "REPORT"}]'
    assert (await run("wechat", "menu", WECHAT_OA_MENU=one))[0] == 0
    assert api.menus[-1] == {"button": json.loads(one)}
    code, out, err = await run("wechat", "menu", WECHAT_OA_MENU='[{"name": "x"}]')
    assert (code, out, err.count("\n")) == (1, "", 1)
    api.fail(MENU_CREATE, 45064)
    code, out, err = await run("wechat", "menu")
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "设置菜单失败：微信拒绝了（errcode 45064: fake error 45064） / WeChat refused the menu"]
