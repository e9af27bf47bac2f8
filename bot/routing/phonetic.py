"""Homophone look-up: place names the resident wrote with the wrong characters.

Residents type with a pinyin input method, and the method offers every character that
sounds alike: 南光村 for 南关村, 锦秀花园 for 锦绣花园, 信家破小区 for 信家坡小区. This index
finds such names by sound. It never decides a grid by itself: the Router turns what it finds
into a question (see the Router's rules), so a false hit costs a question, not a misroute.

Sound, per character: the toneless pinyin syllable (pypinyin's `lazy_pinyin`, Style.NORMAL),
read in context -- a name and a message are both cut into words by pypinyin's own segmenter,
so a heteronym takes the reading of the word it stands in (长街 chang, 银行 hang). Two
confusions that pinyin input and most northern speech make are folded away: front and back
nasals (an/ang, en/eng, in/ing: 关 guan = 光 guang) and flat and retroflex initials (z/zh,
c/ch, s/sh). Tones are ignored. Nothing else is folded (l/n, f/h stay apart).

Each syllable is one code character (from the Private Use Area), and every other character
stays itself, so a text's code string has exactly one character per character of the text:
positions map back without bookkeeping. Keys are the code strings of every normalised name
and alias in the gazetteer; one Aho-Corasick scan of the message's code string finds every
name that sounds like a stretch of it. A hit counts only if

- the name has at least 2 Han characters;
- the stretch differs from the name in at least one character (else the exact gazetteer had
  it) and in at most half of them (南光村 for 南关村 yes; 难官村, where only 村 is left of
  the name as written, no);
- a difference falls in the name's stem, the part before its trailing place word (卫生 of
  卫生巷, 锦绣 of 锦绣花园): with the stem written right, a wrong 巷 or 园 is ordinary text
  far more often than a typo (讲卫生向来不好 is not 卫生巷);
- a name of just 2 characters (南关, 鼓楼, 二中, 职中) is directly followed by a place word
  (村, 路, 街, 巷, 小区, 花园, 市场, ...: see `PLACE_SUFFIXES`): 2 syllables match inside
  ordinary words far too often (难关, 东莞, 之中, 附中, 一有). Names of 3 or more characters
  need no place word after them.

Overlapping hits are resolved as in the gazetteer: the longest wins. Where several names
sound like one stretch, the closest spelling is kept, and the others only if they name other
places (锦秀花园 is taken for 锦绣花园, not also for its alias 锦绣花苑).

`covering` is the look-up for a shorter place name found exactly inside a longer one written
wrong (南关心村: 南关 exact, 南关新村 by sound; the Router's rule 1a): only names that sound like
a stretch around the given exact mention and are longer than it, and there without the stem
rule, since the stem is that exact name. At build time the index also marks, in the
gazetteer, every name whose sound is part of a longer name of another place (`mark_shadowed`).

Not covered: a heteronym the resident meant in its other reading (文长路 for 文昌路: 长 is
read zhang on its own), and typos that change the sound (南瓜村). Both stay unknown: safe.
"""

from __future__ import annotations

import json
import os
import re
import sys
from importlib import resources
from typing import TYPE_CHECKING

import ahocorasick

from bot.routing.gazetteer import Mention
from bot.routing.normalize import normalize

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from bot.routing.gazetteer import Gazetteer


def _import_pypinyin() -> None:
    """Import pypinyin without its 47,000-phrase dictionary: that one costs ~45 MB resident,
    and all it adds for toneless syllables is the few thousand phrases `_load_phrases` puts
    back. Uses pypinyin's own memory switches (its FAQ), set only for the import; an
    operator's own setting wins, and a pypinyin imported earlier is left as it is."""
    if "pypinyin" in sys.modules:
        return
    switches = [k for k in ("PYPINYIN_NO_PHRASES", "PYPINYIN_NO_DICT_COPY") if k not in os.environ]
    os.environ.update(dict.fromkeys(switches, "1"))
    try:
        import pypinyin  # noqa: F401
    finally:
        for k in switches:
            os.environ.pop(k, None)


_import_pypinyin()
from pypinyin import Style, lazy_pinyin, load_phrases_dict  # noqa: E402
from pypinyin.constants import PHRASES_DICT, PINYIN_DICT  # noqa: E402
from pypinyin.contrib.tone_convert import to_normal  # noqa: E402
from pypinyin.seg.mmseg import seg as _mmseg  # noqa: E402

# Han characters pypinyin knows about (its RE_HANS, less its few private-use code points)
_HAN_CLASS = (
    "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f\U00030000-\U00032389"
)
_HAN_RUN = re.compile(f"[{_HAN_CLASS}]+")
_IS_HAN = re.compile(f"[{_HAN_CLASS}]")

# Syllable codes live in U+E000..U+E7FF (pypinyin counts U+E815.. as Han; we stay below).
_CODE_BASE = 0xE000
_CODE_LIMIT = 0xE800
# A message's own private-use characters must not pose as syllables.
_NO_PUA = {c: "\ufffd" for c in range(_CODE_BASE, _CODE_LIMIT)}

# Words after a 2-character name that make it a place: 南关 is a word, 难关村 a place name.
PLACE_SUFFIXES: tuple[str, ...] = (
    "村", "庄", "屯", "寨", "堡", "路", "街", "巷", "弄", "胡同", "大道", "小区", "花园",
    "家园", "新村", "苑", "园", "院", "家属院", "宿舍", "公寓", "大厦", "广场", "市场",
    "菜市场", "商场", "小学", "中学", "学校", "幼儿园", "医院", "卫生院", "社区", "片区",
)  # fmt: skip
_SUFFIX_ALT = "|".join(sorted(map(re.escape, PLACE_SUFFIXES), key=len, reverse=True))
_SUFFIX_RE = re.compile(_SUFFIX_ALT)
_SUFFIX_END = re.compile(f"(?:{_SUFFIX_ALT})$")

_CACHE_MAX = 200_000  # words (single characters and dictionary phrases) whose codes we keep


def fold(syllable: str) -> str:
    """The toneless syllable with z/zh, c/ch, s/sh and -n/-ng made the same."""
    if syllable[:2] in ("zh", "ch", "sh"):
        syllable = syllable[0] + syllable[2:]
    if syllable.endswith(("ang", "eng", "ing")):
        syllable = syllable[:-1]
    return syllable


def _load_phrases() -> int:
    """Give pypinyin back the phrases that change a toneless, folded syllable (银行 hang, not
    xing; 长城 chang, not zhang): the contextual readings of heteronyms. Once per process;
    returns how many phrases were added (0 when pypinyin already has its phrases)."""
    if PHRASES_DICT:
        return 0
    try:
        src = resources.files("pypinyin").joinpath("phrases_dict.json").read_text("utf-8")
        phrases: dict[str, list[list[str]]] = json.loads(src)
    except (OSError, ValueError):  # pragma: no cover - a pypinyin laid out differently
        return 0
    plain: dict[str, str] = {}

    def toneless(py: str) -> str:
        t = plain.get(py)
        if t is None:
            t = plain[py] = fold(to_normal(py))
        return t

    def default(ch: str) -> str | None:
        readings = PINYIN_DICT.get(ord(ch))
        return toneless(readings.split(",", 1)[0]) if readings else None

    keep = {
        word: readings
        for word, readings in phrases.items()
        if len(readings) == len(word)
        and any(r and toneless(r[0]) != default(ch) for ch, r in zip(word, readings, strict=True))
    }
    del phrases, src
    if keep:
        load_phrases_dict(keep)
    return len(keep)


class Encoder:
    """Text -> code string: one code per Han character (its folded syllable), else itself."""

    def __init__(self) -> None:
        _load_phrases()
        self._codes: dict[str, str] = {}  # folded syllable -> its code character
        self._words: dict[str, str] = {}  # cache: a segmented word -> its code string

    def _code(self, syllable: str, ch: str) -> str:
        if not (syllable.isascii() and syllable.isalpha()):
            return ch  # no reading known: the character has to match as itself
        key = fold(syllable.lower())
        c = self._codes.get(key)
        if c is None:
            n = len(self._codes)
            if _CODE_BASE + n >= _CODE_LIMIT:  # pragma: no cover - ~400 syllables exist
                return ch
            c = self._codes[key] = chr(_CODE_BASE + n)
        return c

    def _word(self, word: str) -> str:
        sylls = lazy_pinyin(word, style=Style.NORMAL)
        if len(sylls) != len(word):  # a reading that is not one syllable per character
            sylls = [lazy_pinyin(ch, style=Style.NORMAL)[0] for ch in word]
        codes = "".join(self._code(s, ch) for s, ch in zip(sylls, word, strict=True))
        if len(self._words) >= _CACHE_MAX:
            self._words.clear()
        self._words[word] = codes
        return codes

    def encode(self, text: str) -> str:
        """`text` (already normalised) as a code string of the same length."""
        out: list[str] = []
        pos = 0
        words = self._words
        for m in _HAN_RUN.finditer(text):
            if m.start() > pos:
                out.append(text[pos : m.start()].translate(_NO_PUA))
            out.extend(words.get(w) or self._word(w) for w in _mmseg.cut(m.group()))
            pos = m.end()
        if pos < len(text):
            out.append(text[pos:].translate(_NO_PUA))
        return "".join(out)


class PhoneticIndex:
    """Gazetteer keys by sound. Built once, before the gazetteer itself is built."""

    def __init__(self, gazetteer: Gazetteer, keys: Iterable[tuple[str, int]]) -> None:
        self._gaz = gazetteer
        self._enc = Encoder()
        self._auto = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        self._shared: list[tuple[int, ...]] = []  # keys that sound the same, by -value - 1
        index: dict[str, int] = {}
        enc = self._enc.encode
        for key, k in keys:
            if len(_IS_HAN.findall(key)) < 2:
                continue
            code = enc(key)
            v = index.get(code)
            if v is None:
                index[code] = k
            elif v >= 0:
                index[code] = -len(self._shared) - 1
                self._shared.append((v, k))
            else:
                self._shared[-v - 1] += (k,)
        for code, v in index.items():
            self._auto.add_word(code, v)
        self._size = len(index)
        if index:
            self._auto.make_automaton()
            self._mark_shadowed(index)
        del index

    def _entries(self, v: int) -> tuple[int, ...]:
        return (v,) if v >= 0 else self._shared[-v - 1]

    def _mark_shadowed(self, index: dict[str, int]) -> None:
        """Mark in the gazetteer the keys whose sound is part of a longer key's sound, where
        the longer key names something else: 南关 in 南关新村, but also 西关 in a 溪关菜市场.
        (The gazetteer marks exact parts itself; this adds parts written differently.)"""
        gaz = self._gaz
        lens = {v: len(code) for code, v in index.items()}
        for code, v in index.items():
            if len(code) < 3:
                continue
            outer: set[tuple[object, ...]] | None = None
            for _last, inner in self._auto.iter(code):
                if lens[inner] >= len(code):
                    continue
                if outer is None:
                    outer = {gaz.targets(k) for k in self._entries(v)}
                for k in self._entries(inner):
                    if not gaz.shadowed(k) and outer - {gaz.targets(k)}:
                        gaz.mark_shadowed(k)

    def __len__(self) -> int:
        return self._size

    def find(self, text: str) -> list[Mention]:
        """Names that sound like a stretch of `text` (already normalised), in text order.

        Each mention's label is `written≈name`, e.g. `南光村≈南关村`.
        """
        return self._find(text, None)

    def covering(self, text: str, spans: Sequence[tuple[int, int]]) -> list[Mention]:
        """Longer names that sound like a stretch of `text` around one of `spans`.

        The spans are exact mentions of shadowed names (南关 in 南关心村); a hit must cover one
        of them and be longer. Unlike `find`, a difference only in the trailing place word
        counts (南关心村 for 南关新村): the stem is already a place name, so the question is
        which place, not whether it is one.
        """
        return self._find(text, spans) if spans else []

    def _find(self, text: str, spans: Sequence[tuple[int, int]] | None) -> list[Mention]:
        if not self._size or not text:
            return []
        gaz = self._gaz
        hits: list[tuple[int, int, int, int]] = []  # start, end, differences, entry
        for last, v in self._auto.iter(self._enc.encode(text)):
            for k in (v,) if v >= 0 else self._shared[-v - 1]:
                key = normalize(gaz.label(k))
                end = last + 1
                start = end - len(key)
                if spans is not None and not any(
                    start <= s and e <= end and e - s < end - start for s, e in spans
                ):
                    continue
                diffs = [i for i, (a, b) in enumerate(zip(text[start:end], key, strict=True))
                         if a != b]  # fmt: skip
                if not diffs or len(diffs) > len(key) // 2:
                    continue
                if spans is None and diffs[0] >= _stem_len(key):
                    continue
                if len(key) == 2 and not _SUFFIX_RE.match(text, end):
                    continue
                hits.append((start, end, len(diffs), k))
        if not hits:
            return []
        # longest first; at one stretch, the closest spelling first
        hits.sort(key=lambda h: (h[0] - h[1], h[0], h[2]))
        chosen: list[tuple[int, int, int, int]] = []
        for hit in hits:
            start, end, _, k = hit
            same = [c for c in chosen if c[0] == start and c[1] == end]
            if same:
                # another key at this stretch: keep it only if it names other places
                # (锦秀花园 is 锦绣花园 rather than its alias 锦绣花苑, both DJ-03/DJ-04)
                known = {t for c in same for t in gaz.targets(c[3])}
                if not set(gaz.targets(k)) <= known:
                    chosen.append(hit)
            elif all(end <= c[0] or start >= c[1] for c in chosen):
                chosen.append(hit)
        chosen.sort(key=lambda h: h[0])
        return [
            Mention(s, e, f"{text[s:e]}≈{gaz.label(k)}", gaz.targets(k)) for s, e, _, k in chosen
        ]


def _stem_len(key: str) -> int:
    """Length of `key` without its trailing place word (锦绣花园 -> 2, 鼓楼 -> 2)."""
    m = _SUFFIX_END.search(key, 1)
    return m.start() if m else len(key)
