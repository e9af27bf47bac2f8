"""Text normalisation shared by place names (at build time) and messages (per route call).

Both sides go through the same function, so whatever it does, matching stays consistent:
NFKC (full-width digits, letters and punctuation become ASCII), Traditional -> Simplified
(OpenCC t2s), lower case, and whitespace removed -- except one space kept between two ASCII
letters/digits so that "3 4" does not become "34".
"""

from __future__ import annotations

import unicodedata

import opencc

_T2S = opencc.OpenCC("t2s")


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def normalize(text: str) -> str:
    s = unicodedata.normalize("NFKC", text)
    if not s.isascii():
        s = _T2S.convert(s)
    s = s.lower()
    parts = s.split()
    if len(parts) == 1:
        return parts[0]
    out: list[str] = []
    for part in parts:
        if out and _is_ascii_alnum(out[-1][-1]) and _is_ascii_alnum(part[0]):
            out.append(" ")
        out.append(part)
    return "".join(out)
