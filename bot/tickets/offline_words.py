"""代报 in words: staff filing a report for a resident met face to face.

    代报 张大妈 13800000000 南关村口路灯坏了       name, phone, problem
    代报 13800000000 南关村口路灯坏了              no name
    代报 王大爷 南关村口路灯坏了                   a name without a phone: only a form of address
    代报 南关村口路灯坏了                          (大爷, 阿姨, 师傅 …) or 姓名：… is read as one
    代報 姓名：張三 電話：0357-1234567 內容：…     Traditional, labels, full-width punctuation

Any phone number in the message is taken out of the problem's text wherever it was written, so
it can never reach a ticket, a card or a group; two different numbers are refused. 代报名 and
代报销 are other words and stay ordinary text (None).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.intake.classify import MAX_TEXT

# the word, then a separator, the end, or a number written straight after it
_HEAD = re.compile(r"^代[报報](?=[\s:,;]|$|[0-9+(])\s*[:,;]?\s*")
_LABEL = r"(?:联系电话|聯繫電話|联系方式|聯繫方式|电话|電話|手机|手機)\s*:?\s*"
_MOBILE = r"(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d{4}){2}"
_LANDLINE = r"(?:\(0\d{2,3}\)|0\d{2,3})[\s-]?\d{7,8}"
_PHONE = re.compile(rf"(?:{_LABEL})?(?<!\d)(?P<p>{_MOBILE}|{_LANDLINE})(?!\d)")
_NAME_LABEL = re.compile(r"(?:姓名|名字)\s*[:：]?\s*")
_CONTENT_LABEL = re.compile(r"(?:内容|內容|问题|問題|事项|事項)\s*[:：]\s*")
_NAME = re.compile(r"[^\d\s,;:，；：]{1,12}")
# how a resident is called when their name is not known: 王大爷, 李阿姨, 老张 …
_ADDRESSED = re.compile(r"(?:大妈|大媽|大爷|大爺|大娘|大伯|阿姨|叔叔|婶婶|嬸嬸|奶奶|爷爷|爺爺|"
                        r"大姐|大哥|师傅|師傅|先生|女士|老师|老師)$|^老.$")
_FIRST = re.compile(r"(?P<word>\S+?)[\s,;]+(?P<rest>.+)$", re.S)  # used with a start position
_EDGES = " \t\n,;:。.、，；：\u3000"
_FOLD = str.maketrans({**{chr(0xFF10 + i): str(i) for i in range(10)}, "\u3000": " ", "：": ":",
                       "，": ",", "；": ";", "（": "(", "）": ")", "＋": "+", "－": "-"})
NAME_MAX = 32
_SHORT_NAME = 6  # 欧阳大妈, 南关张大爷: longer words before a phone are the problem


@dataclass(frozen=True, slots=True)
class Filing:
    name: str  # "" when not given
    phone: str  # digits only ("" when not given), as households.csv keeps them
    content: str  # "" when missing: the usage is shown
    phones: int = 0  # different numbers written: more than one is refused


def parse(text: str) -> Filing | None:
    """The filing said, or None when the text is no 代报 (the core reads it on as usual)."""
    orig = text.strip()
    # folded character for character, so a span found in `norm` is the same span of `orig`
    # (the problem keeps the punctuation it was written with)
    norm = orig.translate(_FOLD)
    head = _HEAD.match(norm)
    if head is None:
        return None
    found = list(_PHONE.finditer(norm, head.end()))
    numbers = list(dict.fromkeys(_digits(m["p"]) for m in found))
    name, body = "", head.end()
    if found:
        said = _clean(orig[head.end():found[0].start()])
        lead = _unlabelled(_NAME_LABEL, said)
        # a short word right before the phone is a name when the problem follows the phone
        if lead and _NAME.fullmatch(lead) and (
                lead != said or _ADDRESSED.search(lead)
                or (len(lead) <= _SHORT_NAME and _clean(_PHONE.sub(" ", norm[found[0].end():])))):
            name, body = lead, found[0].start()
    if not name:
        label = _NAME_LABEL.match(norm, head.end())
        first = _FIRST.match(norm, label.end() if label else head.end())
        if first is not None and _NAME.fullmatch(first["word"]) \
                and (label is not None or _ADDRESSED.search(first["word"])):
            name, body = orig[first.start("word"):first.end("word")], first.start("rest")
    kept: list[str] = []
    at = body
    for phone in found:
        if phone.start() >= body:
            kept.append(orig[at:phone.start()])
            at = phone.end()
    content = _unlabelled(_CONTENT_LABEL, " ".join(
        part for x in [*kept, orig[at:]] if (part := _clean(x))))
    return Filing(name=name[:NAME_MAX], phone=numbers[0] if numbers else "",
                  content=content[:MAX_TEXT], phones=len(numbers))


def _digits(phone: str) -> str:
    d = re.sub(r"\D", "", phone)
    return d[2:] if len(d) == 13 and d.startswith("86") else d


def _unlabelled(label: re.Pattern[str], text: str) -> str:
    m = label.match(text)
    return _clean(text[m.end():]) if m else text


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip(_EDGES)
