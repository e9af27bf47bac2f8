"""`run_bot.py wecom grids push [--dry-run]` and `wecom residents sync` (居民上报)."""

from __future__ import annotations

import argparse

from config.settings import Settings


def grids_push(settings: Settings, args: argparse.Namespace) -> int:
    raise NotImplementedError("being built")


def residents_sync(settings: Settings, args: argparse.Namespace) -> int:
    raise NotImplementedError("being built")
