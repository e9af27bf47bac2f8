"""grid-intake command line: serve (default), console, import, route, invite, wechat menu,
report, brief, callbacks.

Platform libraries are imported only by the subcommands that talk to a platform: aiogram
alone takes seconds to import, and a usage error or a configuration mistake should answer at
once. Problems an operator can fix are one line on stderr, in Chinese, without a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import re
import socket
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import ValidationError

from config.settings import Settings, get_settings

if TYPE_CHECKING:
    from aiogram.exceptions import TelegramNetworkError

# the scope option each role's invite needs: bot.people.onboarding.INVITE_SCOPE, repeated here so a
# usage error needs no import of the core (tests/test_cli_startup.py holds them equal)
INVITE_NEEDS: dict[str, str | None] = {
    "worker": "grid", "leader": "grid", "coordinator": "community", "centre": None}
SCOPE_EXAMPLE = {"grid": "网格编号，如 FN-02", "community": "社区编号，如 FN"}


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiogram logs request URLs at debug level, and those contain the bot token
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters at debug level: residents' phones
    logging.getLogger("aiosqlite").setLevel(logging.INFO)


def _fail(line: str) -> int:
    print(line, file=sys.stderr)
    return 1


def serve_config_problem(settings: Settings) -> str | None:
    from handlers.serve import KINDS, present

    if not present(settings):
        names = "，或 ".join(k.settings for k in KINDS)
        return (f"启动失败：没有配置任何渠道（{names}，见 .env.example）；不接平台试用请运行 "
                "python run_bot.py console / no channel is configured (see .env.example), "
                "or use: console")
    if settings.telegram_webhook_url and settings.telegram_webhook_secret is None:
        return ("启动失败：设置了 TELEGRAM_WEBHOOK_URL 就必须同时设置 TELEGRAM_WEBHOOK_SECRET "
                "/ TELEGRAM_WEBHOOK_SECRET must be set with TELEGRAM_WEBHOOK_URL")
    return None


def port_message(host: str, port: int, e: OSError) -> str:
    where = f"{host}:{port}"
    if e.errno == errno.EADDRINUSE:
        return (f"启动失败：HTTP 端口 {where} 已被占用（可能已有一个实例在运行），请先停掉它或改 "
                f"HTTP_PORT / port {where} is already in use")
    if e.errno == errno.EACCES:
        return (f"启动失败：没有权限监听 {where}（1024 以下的端口要管理员权限），请改 HTTP_PORT "
                f"/ no permission to listen on {where}")
    return f"启动失败：无法监听 {where}（{e.strerror or e}），请检查 HTTP_HOST 和 HTTP_PORT"


def port_problem(host: str, port: int) -> str | None:
    """Why the HTTP port cannot be listened on; checked before the slow part of the start."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        for family, kind, proto, _name, address in addresses:
            with socket.socket(family, kind, proto) as s:
                # the same options asyncio's server uses, so a port in TIME_WAIT is not "busy"
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind(address)
    except socket.gaierror:
        return f"启动失败：HTTP_HOST={host} 不是本机可以监听的地址 / cannot resolve HTTP_HOST"
    except OSError as e:
        return port_message(host, port, e)
    return None


def telegram_unreachable(settings: Settings, e: TelegramNetworkError) -> str:
    base = settings.telegram_api_base or "https://api.telegram.org"
    host = urlsplit(base).netloc.rpartition("@")[2] or base
    cause = e.__cause__
    os_error = getattr(cause, "os_error", None)
    if isinstance(os_error, socket.gaierror):
        why, en = "域名解析失败", "DNS lookup failed"
    elif isinstance(os_error, ConnectionRefusedError):
        why, en = "连接被拒绝", "connection refused"
    elif isinstance(cause, TimeoutError):
        why, en = "连接超时", "timed out"
    else:
        why, en = "网络错误", "network error"
    return (f"启动失败：连不上 Telegram（{host}，{why}），请检查网络、代理或 TELEGRAM_API_BASE "
            f"/ cannot reach Telegram: {en}")


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    problem = (serve_config_problem(settings)
               or port_problem(settings.http_host, settings.http_port))
    if problem:
        return _fail(problem)
    from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

    from handlers.serve import configured, run

    try:
        edges = configured(settings)
    except ValueError as e:  # a malformed WECHAT_OA_AES_KEY or template field mapping
        return _fail(f"启动失败：渠道配置有误：{e} / a channel's settings are malformed")
    try:
        run(settings, edges)
    except TelegramNetworkError as e:
        return _failed_start(telegram_unreachable(settings, e))
    except TelegramUnauthorizedError:
        return _failed_start("启动失败：Telegram 不认这个 TELEGRAM_BOT_TOKEN（填错或已作废），请到 "
                             "@BotFather 核对 / the bot token was rejected")
    except OSError as e:
        if e.errno != errno.EADDRINUSE:  # taken between the check above and the start
            raise
        return _failed_start(port_message(settings.http_host, settings.http_port, e))
    return 0


def _failed_start(line: str) -> int:
    # a start that fails in prepare() leaves the bot's HTTP session open, and aiohttp's
    # "Unclosed client session" log would follow the one line at exit
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    return _fail(line)


def cmd_console(settings: Settings, _args: argparse.Namespace) -> int:
    from handlers.console import run_console

    logging.getLogger().setLevel(logging.WARNING)
    if "quiet_hours" not in settings.model_fields_set:
        # whoever types here is at the terminal now: cards are shown at once, at any hour,
        # unless QUIET_HOURS is set on purpose to try them
        settings = settings.model_copy(update={"quiet_hours": "off"})
    asyncio.run(run_console(settings))
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from bot.county.files import CountyFileError
    from bot.county.texts import t
    from bot.notify.texts import use_language
    from bot.routing.cli import import_dir

    use_language(settings.language)  # the problems and the report, in LANGUAGE
    try:
        report = asyncio.run(import_dir(settings.database_url, Path(args.directory)))
    except CountyFileError as e:
        print(f"{t('county.import_failed')}\n{e}", file=sys.stderr)
        return 1
    print(report)
    return 0


def cmd_route(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import prepare_database
    from bot.routing.cli import route_jsonl

    asyncio.run(prepare_database(settings))
    return asyncio.run(route_jsonl(settings.database_url, sys.stdin, sys.stdout))


def cmd_invite(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.invite import print_invite, print_partner_invite

    if args.partner is not None:
        return asyncio.run(print_partner_invite(settings, args.partner, args.name))
    return asyncio.run(print_invite(settings, args.role, args.grid, args.community))


def cmd_wechat(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.wechat.menu import configured_menu, set_menu

    logging.getLogger().setLevel(logging.WARNING)
    return asyncio.run(set_menu(settings, configured_menu(), show=args.show))


def cmd_wecom(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.wecom.cli import run

    return run(settings, args)


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    if args.date_to < args.date_from:
        args.usage_error("--to 不能早于 --from")
    from handlers.report_cli import report

    return report(settings, args)


def cmd_brief(settings: Settings, args: argparse.Namespace) -> int:
    if Path(args.output).suffix.lower() not in (".xlsx", ".md"):
        args.usage_error("-o 的文件名要以 .xlsx 或 .md 结尾")
    from handlers.report_cli import brief

    return brief(settings, args)


def cmd_desk(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.web.cli import run

    return run(settings, args)


def cmd_callbacks(settings: Settings, args: argparse.Namespace) -> int:
    if args.callbacks_cmd == "plan" and args.output \
            and Path(args.output).suffix.lower() != ".xlsx":
        args.usage_error("-o 的文件名要以 .xlsx 结尾")
    if args.callbacks_cmd == "record" and bool(args.sheet) == bool(args.said):
        args.usage_error("写回访编号和结果（如 2026W49-001 满意），或 --sheet 回访表.xlsx，二选一")
    from handlers.callbacks_cli import run

    return run(settings, args)


def _week(text: str) -> str:
    if not re.fullmatch(r"\d{4}-?W\d{1,2}", text.strip(), re.I):
        raise argparse.ArgumentTypeError(f"周次应写成 2026-W49 这样：{text!r}")
    return text.strip()


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"日期应写成 2026-11-01 这样：{text!r}") from None


def _month(text: str) -> date:
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError:
        raise argparse.ArgumentTypeError(f"月份应写成 2026-11 这样：{text!r}") from None


def _code(text: str) -> str:
    """Grid and community codes as the county files write them (FN-02), however typed."""
    return text.strip().upper()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run_bot.py", description="网格报事助手 grid-intake")
    sub = p.add_subparsers(dest="cmd")
    sub.add_parser("serve", help="run the Telegram bot (default)")
    sub.add_parser("console", help="a terminal chat through the real core, no credentials")
    imp = sub.add_parser("import", help="load a county directory (grids.yaml, places, boundaries)")
    imp.add_argument("directory")
    route = sub.add_parser("route", help="route JSON lines from stdin")
    route.add_argument("--jsonl", action="store_true", required=True)
    inv = sub.add_parser("invite", help="print a one-time code that grants a staff role")
    inv.add_argument("--role", choices=list(INVITE_NEEDS))
    inv.add_argument("--grid", type=_code, help="grid code, e.g. FN-02 (worker, leader)")
    inv.add_argument("--community", type=_code, help="community code, e.g. FN (coordinator)")
    inv.add_argument("--partner", type=_code,
                     help="partner unit code in partners.csv, e.g. WY-HD (转办); not with --role")
    inv.add_argument("--name", help="with --partner: the contact's name (default: the listed one)")
    inv.set_defaults(usage_error=inv.error)
    wx = sub.add_parser("wechat", help="WeChat Official Account tasks")
    wx_sub = wx.add_subparsers(dest="wechat_cmd", metavar="{menu}", required=True)
    menu = wx_sub.add_parser("menu", help="set the account's menu (default or WECHAT_OA_MENU)")
    menu.add_argument("--show", action="store_true", help="print the menu JSON, send nothing")
    wc = sub.add_parser("wecom", help="WeCom (企业微信) tasks")
    wc_sub = wc.add_subparsers(dest="wecom_cmd", required=True)
    wc_sub.add_parser("sync", help="bind the county's staff to WeCom userids by mobile number")
    grids = wc_sub.add_parser("grids", help="居民上报: the county's grids in WeCom")
    grids_sub = grids.add_subparsers(dest="grids_cmd", required=True)
    push = grids_sub.add_parser("push", help="mirror communities and grids into WeCom")
    push.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    res = wc_sub.add_parser("residents", help="居民上报: residents' reports from WeCom")
    res_sub = res.add_subparsers(dest="residents_cmd", required=True)
    res_sub.add_parser("sync", help="pull changed reports once and turn them into tickets")
    rep = sub.add_parser("report", help="三率统计表：响应率、按期办结率、满意率（XLSX 或 CSV）")
    rep.add_argument("--from", dest="date_from", type=_day, required=True, metavar="YYYY-MM-DD")
    rep.add_argument("--to", dest="date_to", type=_day, required=True, metavar="YYYY-MM-DD")
    rep.add_argument("--by", choices=["grid", "worker", "community", "partner"],
                     default="community")
    rep.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    rep.add_argument("-o", "--output", required=True, metavar="FILE")
    rep.set_defaults(usage_error=rep.error)
    bri = sub.add_parser("brief", help="社区月度联席会议简报（.xlsx 或 .md）")
    bri.add_argument("--month", type=_month, required=True, metavar="YYYY-MM")
    bri.add_argument("--community", type=_code, required=True, help="社区编号，如 FN")
    bri.add_argument("-o", "--output", required=True, metavar="FILE.xlsx|FILE.md")
    bri.set_defaults(usage_error=bri.error)
    cb = sub.add_parser("callbacks", help="电话回访：每周抽取回访名单、登记回访结果")
    cb_sub = cb.add_subparsers(dest="callbacks_cmd", required=True)
    cbp = cb_sub.add_parser("plan", help="抽取一周的回访名单，生成回访表（XLSX，含电话）")
    cbp.add_argument("--week", type=_week, required=True, metavar="YYYY-Www")
    cbp.add_argument("-o", "--output", metavar="FILE.xlsx")
    cbp.set_defaults(usage_error=cbp.error)
    cbr = cb_sub.add_parser("record", help="登记回访结果：编号 满意|基本满意|不满意 [备注]")
    cbr.add_argument("said", nargs="*", metavar="编号 结果",
                     help="如 2026W49-001 社区满意 网格员基本满意 业委会无 路灯已修；或 H12 未接通")
    cbr.add_argument("--sheet", metavar="FILE.xlsx", help="填好的回访表，逐行登记")
    cbr.add_argument("--by", default="指挥中心", help="回访人姓名（记入工单记录）")
    cbr.set_defaults(usage_error=cbr.error)
    dk = sub.add_parser("desk", help="网页工作台：为管理员生成一次性登录链接")
    dk_sub = dk.add_subparsers(dest="desk_cmd", required=True)
    dkl = dk_sub.add_parser("link", help="打印一个登录链接（10 分钟内有效，只能用一次）")
    dkl.add_argument("--person", required=True, help="人员姓名或编号（社区、网格长或指挥中心）")
    return p


COMMANDS = {"serve": cmd_serve, "console": cmd_console, "import": cmd_import,
            "route": cmd_route, "invite": cmd_invite, "wechat": cmd_wechat,
            "wecom": cmd_wecom, "report": cmd_report, "brief": cmd_brief,
            "callbacks": cmd_callbacks, "desk": cmd_desk}


def settings_problems(e: ValidationError) -> list[str]:
    lines = []
    for err in e.errors():
        name = "_".join(str(x) for x in err["loc"]).upper()
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"配置有误 / invalid setting: {msg if name in msg else f'{name}: {msg}'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.cmd == "invite" and (args.partner is None) == (args.role is None):
        args.usage_error("需要 --role（工作人员）或 --partner（协同单位联系人），二选一")
    if args.cmd == "invite" and args.role is not None:
        needs = INVITE_NEEDS[args.role]
        if needs is not None and not getattr(args, needs):
            args.usage_error(f"--role {args.role} 需要 --{needs}（{SCOPE_EXAMPLE[needs]}）")
    try:
        settings = get_settings()
    except ValidationError as e:
        for line in settings_problems(e):
            print(line, file=sys.stderr)
        return 1
    _logging(settings)
    return COMMANDS[args.cmd or "serve"](settings, args)


if __name__ == "__main__":
    sys.exit(main())
