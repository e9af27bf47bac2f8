"""Routing: text normalisation, gazetteer, geometry and datum conversion, and the Router."""

from bot.routing.datum import gcj02_to_wgs84, to_wgs84, wgs84_to_gcj02
from bot.routing.normalize import normalize
from bot.routing.numbers import NumberRange, NumberSpecError, number_after, parse_ranges
from bot.routing.router import Router, RouteResult

__all__ = [
    "NumberRange",
    "NumberSpecError",
    "RouteResult",
    "Router",
    "gcj02_to_wgs84",
    "normalize",
    "number_after",
    "parse_ranges",
    "to_wgs84",
    "wgs84_to_gcj02",
]
