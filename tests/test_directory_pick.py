"""Which of a person's accounts the service writes to first: never one that can only answer."""

from __future__ import annotations

from bot.people.directory import _pick


def _choose(accounts: list[tuple[str, str | None]], prefer: str | None) -> str | None:
    best = None
    for channel, chat in accounts:
        best = _pick(best, 1, "王建军", channel, chat, None, prefer)
    assert best is not None
    return best.channel


def test_the_preferred_reachable_account_wins() -> None:
    assert _choose([("telegram", "1"), ("wecom", "wjj")], "wecom") == "wecom"
    assert _choose([("wecom", "wjj"), ("telegram", "1")], "wecom") == "wecom"
    assert _choose([("wecom", None), ("telegram", "1")], "wecom") == "telegram"


def test_a_reply_only_account_is_used_only_when_there_is_no_other() -> None:
    # a staff member who redeemed a code in the smart robot's single chat, and has the app
    assert _choose([("wecom_robot", "wjj"), ("wecom", "wjj")], "wecom_robot") == "wecom"
    assert _choose([("wecom", "wjj"), ("wecom_robot", "wjj")], "wecom_robot") == "wecom"
    assert _choose([("wecom_robot", "wjj")], "wecom") == "wecom_robot"
