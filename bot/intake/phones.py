"""Phone numbers a resident types into a report: taken out of the words everyone reads.

Workers, groups and logs see the report with "（号码已隐藏）" in the number's place; the number
itself is kept only in resident_contacts, which the command centre's call-backs read.
libphonenumber finds them (mobiles, landlines with area codes, +86, spaced or dashed), after
a cheap count of digits, since most reports have none and its matcher costs ~0.2 ms.
"""

from __future__ import annotations

import phonenumbers

HIDDEN = "（号码已隐藏）"
_MIN_DIGITS = 7  # a local landline; fewer digits cannot be a number to phone


def hide(text: str) -> tuple[str, list[str]]:
    """`text` without its phone numbers, and the numbers (digits only, as written)."""
    if sum(ch.isdigit() for ch in text) < _MIN_DIGITS:
        return text, []
    found = list(phonenumbers.PhoneNumberMatcher(text, "CN", leniency=phonenumbers.Leniency.VALID))
    if not found:
        return text, []
    parts: list[str] = []
    at = 0
    for m in found:
        parts += [text[at:m.start].rstrip(), HIDDEN]  # the brackets stand for the gap
        at = m.end
    parts.append(text[at:])
    return "".join(parts), [phonenumbers.format_number(
        m.number, phonenumbers.PhoneNumberFormat.NATIONAL).replace(" ", "") for m in found]
