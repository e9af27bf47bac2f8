"""grid-intake command line: serve (default), console, import, route, invite."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from config.settings import Settings, get_settings


def _logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiogram logs request URLs at debug level, and those contain the bot token
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def cmd_serve(settings: Settings, _args: argparse.Namespace) -> int:
    from handlers.telegram.runner import run

    run(settings)
    return 0


def cmd_console(settings: Settings, _args: argparse.Namespace) -> int:
    from handlers.console import run_console

    logging.getLogger().setLevel(logging.WARNING)
    asyncio.run(run_console(settings))
    return 0


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from bot.county_files import CountyFileError
    from bot.routing.cli import import_dir

    try:
        report = asyncio.run(import_dir(settings.database_url, Path(args.directory)))
    except CountyFileError as e:
        print(f"导入失败，未做任何修改 / import failed, nothing changed:\n{e}", file=sys.stderr)
        return 1
    print(report)
    return 0


def cmd_route(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import prepare_database
    from bot.routing.cli import route_jsonl

    asyncio.run(prepare_database(settings))
    return asyncio.run(route_jsonl(settings.database_url, sys.stdin, sys.stdout))


def cmd_invite(settings: Settings, args: argparse.Namespace) -> int:
    from handlers.invite import print_invite

    return asyncio.run(print_invite(settings, args.role, args.grid, args.community))


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
    inv.add_argument("--role", required=True, choices=["worker", "leader", "coordinator", "centre"])
    inv.add_argument("--grid")
    inv.add_argument("--community")
    return p


COMMANDS = {"serve": cmd_serve, "console": cmd_console, "import": cmd_import,
            "route": cmd_route, "invite": cmd_invite}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = get_settings()
    _logging(settings)
    return COMMANDS[args.cmd or "serve"](settings, args)


if __name__ == "__main__":
    sys.exit(main())
