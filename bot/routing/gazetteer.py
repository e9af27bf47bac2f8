"""Aho-Corasick index over normalised place names and aliases.

One scan finds every key in a message; overlapping hits are then resolved longest first, so
the most specific name wins over a shorter name or alias inside it (南关新村 over 南关).
The automaton stores only an int per key; labels and targets live in flat lists, which keeps
a county of 100,000 places within a few tens of megabytes.

A key that is part of a longer key naming something else (南关 in 南关新村, 西关 in 西关菜市场)
is marked *shadowed* at build time, and its mentions say so: when the longer name is written
with a wrong character (南关心村), the scan finds only the shorter one, and the Router checks
such a mention against the sound index before trusting it. The phonetic index adds the keys
that sound like part of a longer key (`mark_shadowed`).
"""

from __future__ import annotations

from array import array
from collections.abc import ItemsView
from dataclasses import dataclass

import ahocorasick

from bot.routing.normalize import normalize


@dataclass(frozen=True, slots=True)
class Mention:
    start: int
    end: int  # exclusive, in the normalised text
    label: str  # the name or alias as written in the county files
    targets: tuple[object, ...]  # what the key names; more than one for a shared alias
    shadowed: bool = False  # the key is part of a longer key naming something else


class Gazetteer:
    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._labels: list[str] = []
        self._targets: list[tuple[object, ...]] = []
        self._lens = array("H")
        self._shadowed = bytearray()
        self._auto = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        self._built = False

    def add(self, surface: str, target: object, key: str | None = None) -> None:
        """Index `surface` (normalised unless `key` is given) as naming `target`."""
        if self._built:
            raise RuntimeError("gazetteer already built")
        key = normalize(surface) if key is None else key
        if not key:
            return
        k = self._index.get(key)
        if k is None:
            self._index[key] = len(self._labels)
            self._labels.append(surface)
            self._targets.append((target,))
            self._lens.append(min(len(key), 65535))
            self._shadowed.append(0)
        elif target not in self._targets[k]:
            self._targets[k] = (*self._targets[k], target)

    def build(self) -> None:
        for key, k in self._index.items():
            self._auto.add_word(key, k)
        if self._index:
            self._auto.make_automaton()
            # keys inside longer keys that name something else
            lens, targets, shadowed = self._lens, self._targets, self._shadowed
            for key, k in self._index.items():
                if len(key) < 2:
                    continue
                for _end, inner in self._auto.iter(key):
                    if lens[inner] < len(key) and targets[inner] != targets[k]:
                        shadowed[inner] = 1
        self._index = {}  # the automaton holds the keys from here on
        self._built = True

    def __len__(self) -> int:
        return len(self._labels)

    def keys(self) -> ItemsView[str, int]:
        """Every normalised key and its entry number; only until `build()`."""
        if self._built:
            raise RuntimeError("gazetteer already built: the automaton holds the keys")
        return self._index.items()

    def label(self, k: int) -> str:
        return self._labels[k]

    def targets(self, k: int) -> tuple[object, ...]:
        return self._targets[k]

    def shadowed(self, k: int) -> bool:
        return bool(self._shadowed[k])

    def mark_shadowed(self, k: int) -> None:
        """Mark entry `k` as part of a longer name of something else (see the module doc)."""
        self._shadowed[k] = 1

    def find(self, text: str) -> list[Mention]:
        """Non-overlapping mentions in `text` (already normalised), in text order."""
        if not self._built or not self._labels:
            return []
        lens, labels, targets, shadowed = self._lens, self._labels, self._targets, self._shadowed
        hits = [
            Mention(end - lens[k] + 1, end + 1, labels[k], targets[k], shadowed[k] == 1)
            for end, k in self._auto.iter(text)
        ]
        if len(hits) < 2:
            return hits
        hits.sort(key=lambda m: (m.start - m.end, m.start))
        chosen: list[Mention] = []
        for m in hits:
            if all(m.end <= c.start or m.start >= c.end for c in chosen):
                chosen.append(m)
        chosen.sort(key=lambda m: m.start)
        return chosen
