"""Grid boundaries: point-in-polygon through an STRtree, and which grids touch which."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

# grids within ~50 m of each other count as neighbours (hand-drawn edges rarely meet exactly)
NEAR_DEG = 0.0005


class GridGeometry:
    def __init__(self, boundaries: Mapping[str, dict[str, Any]]) -> None:
        self.codes: list[str] = list(boundaries)
        self.shapes: list[BaseGeometry] = [shape(g) for g in boundaries.values()]
        shapely.prepare(self.shapes)
        self._tree = STRtree(self.shapes) if self.shapes else None
        self._index = {c: i for i, c in enumerate(self.codes)}

    def __contains__(self, code: str) -> bool:
        return code in self._index

    def locate(self, lat: float, lon: float) -> list[str]:
        """Grids whose boundary covers the WGS-84 point (two or more only on a shared edge)."""
        if self._tree is None:
            return []
        idx = self._tree.query(shapely.Point(lon, lat), predicate="intersects")
        if len(idx) < 2:
            return [self.codes[i] for i in idx]
        return [self.codes[i] for i in sorted(idx)]

    def touching(self, code: str, near: float = NEAR_DEG) -> list[str]:
        i = self._index.get(code)
        if i is None or self._tree is None:
            return []
        idx = self._tree.query(self.shapes[i], predicate="dwithin", distance=near)
        return [self.codes[j] for j in sorted(idx) if j != i]
