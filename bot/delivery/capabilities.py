"""What a channel can do, declared beside its sender; the core composes one message for all.

bot.delivery.render fits a composed message to these: numbered choices where there are no buttons,
text split at the channel's limit (counted the way the platform counts).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Capabilities:
    buttons: int = 100  # most buttons one message may carry; 0: numbered choices instead
    button_chars: int = 64  # the longest label a button shows whole; longer: numbered choices
    location_button: bool = False  # a button that asks for the person's location
    quoting: bool = True  # an answer says which message it replies to (a worker's note)
    max_text: int = 4096  # the longest text of one message
    utf16: bool = False  # the platform counts text in UTF-16 code units (Telegram does)
    window_hours: float | None = None  # free text only this long after the person last wrote
    templates: bool = False  # template notifications outside that window
    reusable_media: bool = True  # its sender can re-send a media id it received
    deep_links: bool = True  # a link that opens a private chat with the bot
    per_minute: int | None = None  # most messages a minute over the whole channel, if it says

    def length(self, text: str) -> int:
        return len(text.encode("utf-16-le")) // 2 if self.utf16 else len(text)


FULL = Capabilities()
