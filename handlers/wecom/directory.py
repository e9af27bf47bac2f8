"""`run_bot.py wecom sync`: binds the county's staff to WeCom userids by mobile number."""

from __future__ import annotations

import argparse

from config.settings import Settings


def sync_command(settings: Settings, args: argparse.Namespace) -> int:
    raise NotImplementedError("being built")
