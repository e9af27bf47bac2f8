"""BRIDGE_CAPABILITIES: what the operator's connector can show, e.g.
`buttons=0,quoting=1,max_text=2000,per_minute=20`.

- buttons: most choices one message may carry as buttons (0: numbered choices in the text)
- quoting: 1 if the connector can show which message an answer replies to
- max_text: the longest text one message may carry (longer ones are split)
- per_minute: most messages a minute the connector takes (0 or absent: no limit of its own)
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.delivery.capabilities import Capabilities

# a connector holds no media ids of other channels and opens no private chats by link
BASE = Capabilities(buttons=0, quoting=False, max_text=2000, reusable_media=False,
                    deep_links=False)
LIMITS = {"buttons": (0, 100), "quoting": (0, 1), "max_text": (50, 100_000),
          "per_minute": (0, 10_000)}


@dataclass(frozen=True, slots=True)
class Declared:
    capabilities: Capabilities
    per_minute: int | None  # None: the service's own limits only


def parse(text: str) -> Declared:
    """BRIDGE_CAPABILITIES -> what the connector can do; ValueError naming what is wrong."""
    values: dict[str, int] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or key not in LIMITS:
            raise ValueError(f"BRIDGE_CAPABILITIES: {item.strip()!r} is not one of "
                             f"{', '.join(f'{k}=<number>' for k in LIMITS)}")
        if key in values:
            raise ValueError(f"BRIDGE_CAPABILITIES: {key} is given twice")
        lo, hi = LIMITS[key]
        if not raw.isascii() or not raw.isdigit() or not lo <= int(raw) <= hi:
            raise ValueError(f"BRIDGE_CAPABILITIES: {key} must be a whole number from {lo} "
                             f"to {hi}, not {raw!r}")
        values[key] = int(raw)
    caps = Capabilities(
        buttons=values.get("buttons", BASE.buttons),
        quoting=bool(values.get("quoting", int(BASE.quoting))),
        max_text=values.get("max_text", BASE.max_text),
        reusable_media=BASE.reusable_media, deep_links=BASE.deep_links,
        per_minute=values.get("per_minute") or None)
    return Declared(caps, values.get("per_minute") or None)
