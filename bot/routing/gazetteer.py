"""Aho-Corasick index over normalised place names and aliases.

One scan finds every key in a message; overlapping hits are then resolved longest first, so
the most specific name wins over a shorter name or alias inside it (南关新村 over 南关).
The automaton stores only an int per key; labels and targets live in flat lists, which keeps
a county of 100,000 places within a few tens of megabytes.
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


class Gazetteer:
    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._labels: list[str] = []
        self._targets: list[tuple[object, ...]] = []
        self._lens = array("H")
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
        elif target not in self._targets[k]:
            self._targets[k] = (*self._targets[k], target)

    def build(self) -> None:
        for key, k in self._index.items():
            self._auto.add_word(key, k)
        if self._index:
            self._auto.make_automaton()
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

    def find(self, text: str) -> list[Mention]:
        """Non-overlapping mentions in `text` (already normalised), in text order."""
        if not self._built or not self._labels:
            return []
        lens, labels, targets = self._lens, self._labels, self._targets
        hits = [
            Mention(end - lens[k] + 1, end + 1, labels[k], targets[k])
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
