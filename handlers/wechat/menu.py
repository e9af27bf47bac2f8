"""`run_bot.py wechat menu`: set the Official Account's custom menu (menu/create).

The default menu is three click buttons whose keys the channel answers (handlers/wechat/oa.py):
我要报事 -> REPORT, 我的工单 -> MY_TICKETS, 使用说明 -> HELP. WECHAT_OA_MENU replaces it with
the JSON menu/create takes (`{"button": [...]}`, or just the list). A click button must carry
a key the channel answers: WeChat would show any other, and pressing it would do nothing.

The call goes through the channel's own client and token store, so on the service's database
it uses the token the running service holds instead of fetching one, which would replace it.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pydantic_settings import BaseSettings

from bot.app import prepare_database
from config.settings import Settings
from handlers.wechat.api import OAClient, Unreachable, WeChatError
from handlers.wechat.oa import HELP_KEYS, MY_KEYS, REPORT_KEYS
from handlers.wechat.tokens import TokenUnavailable
from models.db import make_engine, make_sessionmaker

MENU_CREATE = "/cgi-bin/menu/create"
CLICK_KEYS = REPORT_KEYS | MY_KEYS | HELP_KEYS
DEFAULT_BUTTONS = (("我要报事", "REPORT"), ("我的工单", "MY_TICKETS"), ("使用说明", "HELP"))
# menu/create's limits (names in UTF-8 bytes)
MAX_BUTTONS, MAX_SUB_BUTTONS = 3, 5
NAME_BYTES, SUB_NAME_BYTES = 16, 60
HINTS = {
    40013: "WECHAT_OA_APPID 不对",
    40125: "WECHAT_OA_SECRET 不对",
    40164: "本机出口 IP 不在公众号的 IP 白名单里（开发 → 基本配置）",
    48001: "这个公众号没有自定义菜单接口的权限（未认证的订阅号没有）",
    65303: "个性化菜单存在时要先有默认菜单",
}


class MenuError(Exception):
    """What went wrong, as one line for the operator."""


class _MenuSetting(BaseSettings):
    # read only by this command; the same sources as config.settings.Settings
    model_config = Settings.model_config
    wechat_oa_menu: str | None = None


def configured_menu() -> str | None:
    """WECHAT_OA_MENU from the environment or `.env`, if set."""
    return _MenuSetting().wechat_oa_menu or None


def default_menu() -> dict[str, Any]:
    return {"button": [{"type": "click", "name": name, "key": key}
                       for name, key in DEFAULT_BUTTONS]}


def build_menu(override: str | None) -> dict[str, Any]:
    """The menu/create body: the default, or WECHAT_OA_MENU once it passes WeChat's limits."""
    if override is None or not override.strip():
        return default_menu()
    try:
        data = json.loads(override)
    except ValueError as e:
        raise MenuError(f"WECHAT_OA_MENU 不是合法的 JSON（{e}）/ WECHAT_OA_MENU is not valid JSON"
                        ) from None
    menu = {"button": data} if isinstance(data, list) else data
    if not isinstance(menu, dict) or not isinstance(menu.get("button"), list):
        raise MenuError('WECHAT_OA_MENU 应是 {"button": [...]} 或按钮列表 / WECHAT_OA_MENU must '
                        'be {"button": [...]} or a list of buttons')
    _check_buttons(menu["button"], MAX_BUTTONS, NAME_BYTES, "")
    return menu


def _check_buttons(buttons: list[Any], most: int, name_bytes: int, where: str) -> None:
    if not 1 <= len(buttons) <= most:
        raise MenuError(f"WECHAT_OA_MENU：{where}菜单要有 1 到 {most} 个按钮，现在是 "
                        f"{len(buttons)} 个 / 1 to {most} buttons")
    for b in buttons:
        if not isinstance(b, dict) or not isinstance(b.get("name"), str) or not b["name"]:
            raise MenuError(f"WECHAT_OA_MENU：每个按钮都要有 name：{_short(b)} / a button "
                            "without a name")
        name = b["name"]
        if len(name.encode()) > name_bytes:
            raise MenuError(f"WECHAT_OA_MENU：按钮名“{name}”超过 {name_bytes} 字节 / the "
                            f"button name is over {name_bytes} bytes")
        if "sub_button" in b and not where:
            subs = b["sub_button"]
            if not isinstance(subs, list):
                raise MenuError(f"WECHAT_OA_MENU：“{name}”的 sub_button 应是列表 / sub_button "
                                "must be a list")
            _check_buttons(subs, MAX_SUB_BUTTONS, SUB_NAME_BYTES, f"“{name}”的子")
            continue
        if b.get("type") == "click":
            key = b.get("key")
            if key not in CLICK_KEYS:
                known = "、".join(k for _n, k in DEFAULT_BUTTONS)
                raise MenuError(f"WECHAT_OA_MENU：按钮“{name}”的 key {_short(key)} 公众号不认，"
                                f"可用：{known} / click key not answered by the channel")
        elif not isinstance(b.get("type"), str):
            raise MenuError(f"WECHAT_OA_MENU：按钮“{name}”没有 type / a button without a type")


def _short(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)[:60]


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


async def create_menu(settings: Settings, menu: dict[str, Any]) -> None:
    """POST `menu` to menu/create with the channel's client and token store."""
    appid, secret = settings.wechat_oa_appid, settings.wechat_oa_secret
    if not (appid and secret):
        raise MenuError("没有配置公众号：需要 WECHAT_OA_APPID 和 WECHAT_OA_SECRET（见 "
                        ".env.example）/ the Official Account is not configured")
    await prepare_database(settings)  # the token store's table
    engine = make_engine(settings.database_url)
    client = OAClient(settings.wechat_api_base, appid, secret.get_secret_value(),
                      make_sessionmaker(engine), settings.wechat_http_timeout_s)
    try:
        await client.call(MENU_CREATE, menu)
    except WeChatError as e:
        hint = HINTS.get(e.errcode)
        raise MenuError(_one_line(
            f"设置菜单失败：微信拒绝了（errcode {e.errcode}: {e.errmsg[:120]}）"
            + (f"，{hint}" if hint else "") + " / WeChat refused the menu")) from None
    except (Unreachable, TokenUnavailable) as e:
        raise MenuError(_one_line(
            f"设置菜单失败：连不上微信接口（{e}），请检查网络、代理或 WECHAT_API_BASE / "
            "cannot reach the WeChat API")) from None
    finally:
        await client.close()
        await engine.dispose()


def describe(menu: dict[str, Any]) -> str:
    """The menu as one line: name (key) for each button, sub-buttons in brackets."""
    def one(b: dict[str, Any]) -> str:
        if "sub_button" in b:
            return f"{b['name']}[{'，'.join(one(s) for s in b['sub_button'])}]"
        return f"{b['name']}（{b.get('key') or b.get('url') or b.get('type')}）"
    return " | ".join(one(b) for b in menu["button"])


async def set_menu(settings: Settings, override: str | None, *, show: bool = False) -> int:
    """The command: 0 when the menu is set (or shown), 1 with one line on stderr if not."""
    try:
        menu = build_menu(override)
        if show:
            print(json.dumps(menu, ensure_ascii=False, indent=2))
            return 0
        await create_menu(settings, menu)
    except MenuError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"公众号菜单已设置 / menu set: {describe(menu)}")
    return 0
