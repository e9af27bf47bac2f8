"""`run_bot.py wecom …`: WeCom tasks (their arguments are declared in run_bot.py, so that a
usage error needs no import of the service)."""

from __future__ import annotations

import argparse

from config.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.wecom_cmd == "sync":
        from handlers.wecom.directory import sync_command

        return sync_command(settings, args)
    from handlers.wecom.residents import cli as residents

    if args.wecom_cmd == "grids":
        return residents.grids_push(settings, args)
    return residents.residents_sync(settings, args)
