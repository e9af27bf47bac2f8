"""A 居民上报 report as get_order_list / get_order_info return it, parsed once.

Fields: https://developer.work.weixin.qq.com/document/path/97157 (get_order_list) and
https://developer.work.weixin.qq.com/document/path/97158 (get_order_info).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Step:
    process_type: int
    solve_userid: str
    desc: str
    status: int
    solved_time: int
    image_urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    address: str
    lat: float | None  # GCJ-02; None when WeCom sent none (it sends 0, 0)
    lon: float | None


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    desc: str
    case_name: str
    grid_id: str
    grid_name: str
    create_time: int
    reporter_name: str
    reporter_mobile: str
    image_urls: tuple[str, ...]
    video_media_ids: tuple[str, ...]
    place: Place | None
    processors: tuple[str, ...]
    steps: tuple[Step, ...]

    def __repr__(self) -> str:  # never the reporter's name or mobile, wherever it is logged
        return f"Order({self.order_id!r}, steps={len(self.steps)})"


def _str(v: object, limit: int = 2000) -> str:
    return "" if v is None else str(v).strip()[:limit]


def _int(v: object) -> int:
    try:
        return int(v)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _strs(v: object) -> tuple[str, ...]:
    return tuple(_str(x, 512) for x in v if x) if isinstance(v, list) else ()


def _place(v: object) -> Place | None:
    if not isinstance(v, Mapping):
        return None
    try:
        lat, lon = float(v.get("latitude") or 0), float(v.get("longitude") or 0)
    except (TypeError, ValueError):
        lat = lon = 0.0
    usable = (lat, lon) != (0.0, 0.0) and -90 <= lat <= 90 and -180 <= lon <= 180
    name, address = _str(v.get("name"), 128), _str(v.get("address"), 256)
    if not (name or address or usable):
        return None
    return Place(name, address, lat if usable else None, lon if usable else None)


def parse_order(d: Mapping[str, Any]) -> Order:
    """One entry of order_list (or order_info); ValueError when it has no order_id."""
    order_id = _str(d.get("order_id"), 64)
    if not order_id:
        raise ValueError("order without order_id")
    steps = tuple(
        Step(_int(p.get("process_type")), _str(p.get("solve_userid"), 64),
             _str(p.get("process_desc"), 500), _int(p.get("status")),
             _int(p.get("solved_time")), _strs(p.get("image_urls")))
        for p in d.get("process_list") or [] if isinstance(p, Mapping))
    return Order(
        order_id=order_id, desc=_str(d.get("desc")), case_name=_str(d.get("case_name"), 64),
        grid_id=_str(d.get("grid_id"), 64), grid_name=_str(d.get("grid_name"), 64),
        create_time=_int(d.get("create_time")),
        reporter_name=_str(d.get("reporter_name"), 128),
        reporter_mobile=_str(d.get("reporter_mobile"), 32),
        image_urls=_strs(d.get("image_urls")), video_media_ids=_strs(d.get("video_media_ids")),
        place=_place(d.get("location")), processors=_strs(d.get("processor_userids")),
        steps=steps)
