"""The Router over the sample county: labelled cases, then the pieces one by one."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.county.files import CountyData, PlaceRow
from bot.messages import GeoPoint
from bot.routing import (
    NumberRange,
    NumberSpecError,
    Router,
    normalize,
    number_after,
    parse_ranges,
)
from bot.routing.cli import route_lines
from bot.routing.gazetteer import Gazetteer
from models.enums import RouteStatus

CASES_FILE = Path(__file__).parent / "routing_cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text("utf-8"))


def _run(router: Router, case: dict[str, Any]) -> Any:
    loc = None
    if "lat" in case:
        loc = GeoPoint(case["lat"], case["lon"], case.get("datum", "wgs84"))
    return router.route(case["text"], case.get("chat_grid"), loc)


def test_enough_cases() -> None:
    assert len(CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['text'][:12]}" for i, c in enumerate(CASES)])
def test_labelled_case(router: Router, case: dict[str, Any]) -> None:
    res = _run(router, case)
    expect = case["expect"]
    if expect in ("ambiguous", "unknown"):
        assert res.status == RouteStatus(expect), res
        assert res.grid is None
    else:
        assert res.status == RouteStatus.ROUTED, res
        assert res.grid == expect, res
        assert res.candidates == []
    if "candidates" in case:
        assert set(res.candidates) == set(case["candidates"]), res
        assert len(res.candidates) == len(set(res.candidates))
    if "matched" in case:
        assert res.matched == case["matched"], res


# --- normalisation and numbers ----------------------------------------------------------


def test_normalize() -> None:
    assert normalize("錦繡花園１２號樓") == "锦绣花园12号楼"
    assert normalize("金鼎ＫＴＶ") == "金鼎ktv"
    assert normalize(" 锦绣 花园\u3000 3 4 号楼 ") == "锦绣花园3 4号楼"
    assert normalize("") == ""


@pytest.mark.parametrize(
    ("text", "n"),
    [
        ("23号", 23), ("3号楼2单元", 3), ("的第三栋", 3), ("9-2-301", 9), ("一百二十号", 120),
        ("小区12号楼", 12), ("第6栋楼", 6), ("5#", 5), ("23", 23), ("23,", 23),
        ("有3个", None), ("3个路灯", None), ("3栋楼之间", None), ("5楼", None), ("3单元", None),
        ("23路", None), ("两栋", None), ("一带", None), ("", None),
    ],
)  # fmt: skip
def test_number_after(text: str, n: int | None) -> None:
    assert number_after(normalize("府前街" + text), 3) == n


def test_parse_ranges() -> None:
    assert parse_ranges("1-199 odd; 7;2-4 even") == (
        NumberRange(1, 199, "odd"), NumberRange(7, 7), NumberRange(2, 4, "even"),
    )  # fmt: skip
    assert parse_ranges("１－４") == (NumberRange(1, 4),)
    assert parse_ranges("2-10 双") == (NumberRange(2, 10, "even"),)
    assert parse_ranges("") == ()
    for bad in ("a-b", "5-1", "1-199 left", "2-2 odd", "1--3"):
        with pytest.raises(NumberSpecError):
            parse_ranges(bad)


def test_ranges_contain_and_overlap() -> None:
    odd, even = NumberRange(1, 199, "odd"), NumberRange(2, 200, "even")
    assert odd.contains(23) and not odd.contains(24) and not odd.contains(201)
    assert not odd.overlaps(even)
    assert NumberRange(1, 10).overlaps(NumberRange(10, 20))
    assert not NumberRange(1, 9).overlaps(NumberRange(10, 20))
    assert NumberRange(1, 10).overlaps(NumberRange(2, 2, "even"))
    assert not NumberRange(3, 3).overlaps(NumberRange(1, 9, "even"))
    assert str(odd) == "1-199 odd" and str(NumberRange(7, 7)) == "7"


def test_gazetteer_longest_wins() -> None:
    g = Gazetteer()
    for i, name in enumerate(["南关", "南关村", "南关新村", "新村路"]):
        g.add(name, i)
    g.build()
    found = g.find(normalize("南关新村路灯坏了，南关那边也是"))
    assert [m.label for m in found] == ["南关新村", "南关"]
    assert g.find("") == [] and g.find("没有地名") == []


# --- decisions not covered by one line of the case file ----------------------------------


def test_shared_edge_point(router: Router, county: CountyData) -> None:
    def ring(code: str) -> set[tuple[float, float]]:
        b = next(b for b in county.boundaries if b.grid == code)
        return {tuple(p) for p in b.geometry["coordinates"][0]}  # type: ignore[misc]

    shared = ring("FN-01") & ring("WC-04")
    lon, lat = next(p for p in shared if all(p not in ring(c) for c in ("XJ-02", "DJ-01")))
    res = router.route("这里积水", location=GeoPoint(lat, lon))
    assert res.status == RouteStatus.AMBIGUOUS
    assert res.candidates == ["FN-01", "WC-04"]
    assert router.route("这里积水", "WC-04", GeoPoint(lat, lon)).grid == "WC-04"


def test_bad_datum_raises(router: Router) -> None:
    with pytest.raises(ValueError, match="datum"):
        router.route("x", location=GeoPoint(35.97, 111.85, "bd09"))


# --- display helpers and neighbours -------------------------------------------------------


def test_display_helpers(router: Router) -> None:
    assert router.grid_name("FN-02") == "南关"
    assert router.grid_community("FN-02") == "府南"
    assert router.community_code("FN-02") == "FN"
    assert router.candidate_label("FN-02") == "府南社区·南关网格"
    assert "南关新村" in router.places_of("FN-03")
    assert "锦绣花园" in router.places_of("DJ-03") and "锦绣花园" in router.places_of("DJ-04")
    assert router.grid_name("NOPE") == "NOPE" and router.places_of("NOPE") == []
    assert len(router.grid_codes) == 25 and router.has_grid("QF-03")


def test_neighbours_from_boundaries(router: Router) -> None:
    near = router.neighbours("FN-02")
    assert {"FN-01", "FN-03", "FN-04"} <= set(near)
    assert "FN-02" not in near and "QF-02" not in near
    same = [c for c in near if c.startswith("FN")]
    assert near[: len(same)] == same  # the grid's own community first
    assert set(router.neighbours("QF-02")) >= {"QF-01", "QF-03"}  # a gcj02-drawn boundary
    assert router.neighbours("NOPE") == []


def test_neighbours_without_boundaries_fall_back_to_community(county: CountyData) -> None:
    r = Router.build(replace(county, boundaries=()))
    assert r.neighbours("FN-02") == ["FN-01", "FN-03", "FN-04", "FN-05", "FN-06"]
    assert r.route("这里", location=GeoPoint(35.9624, 111.8501)).status == RouteStatus.UNKNOWN


def test_empty_county() -> None:
    r = Router.build(CountyData("空", (), (), ()))
    assert r.route("锦绣花园3号楼").status == RouteStatus.UNKNOWN
    assert r.route("x", "FN-01").status == RouteStatus.UNKNOWN


def test_place_in_unknown_grid_is_skipped(county: CountyData) -> None:
    extra = PlaceRow(grid="ZZ-01", name="幽灵小区")
    r = Router.build(replace(county, places=(*county.places, extra)))
    assert r.route("幽灵小区").status == RouteStatus.UNKNOWN


def test_default_row_covers_the_rest(county: CountyData) -> None:
    rows = (
        PlaceRow("DJ-01", "长街", ranges=parse_ranges("1-50")),
        PlaceRow("DJ-02", "长街"),
    )
    r = Router.build(replace(county, places=rows))
    assert r.route("长街20号").grid == "DJ-01"
    assert r.route("长街80号").grid == "DJ-02"
    assert set(r.route("长街").candidates) == {"DJ-01", "DJ-02"}


# --- route --jsonl --------------------------------------------------------------------------


def test_route_lines(router: Router) -> None:
    inp = io.StringIO(
        "\n".join(
            [
                json.dumps({"text": "锦绣花园12号楼电梯坏了"}, ensure_ascii=False),
                json.dumps({"text": "路灯坏了", "lat": 35.968775, "lon": 111.858152,
                            "datum": "gcj02"}, ensure_ascii=False),
                json.dumps({"text": "锦绣花园门口"}, ensure_ascii=False),
                json.dumps({"text": "没有地方", "chat_grid": "FN-01"}, ensure_ascii=False),
                json.dumps({"text": "路灯坏了"}, ensure_ascii=False),
                "",
                "not json",
                json.dumps({"text": "x", "lat": 35.9, "lon": 111.8, "datum": "bd09"}),
            ]
        )
    )
    out = io.StringIO()
    assert route_lines(router, inp, out) == 2
    lines = out.getvalue().splitlines()
    assert "锦绣花园" in lines[0]  # ensure_ascii=False
    rows = [json.loads(x) for x in lines]
    assert rows[0] == {
        "grid": "DJ-04", "status": "routed", "candidates": [], "matched": ["锦绣花园"],
    }  # fmt: skip
    assert rows[1]["grid"] == "WC-04" and rows[1]["matched"] == ["location"]
    assert rows[2] == {
        "grid": None, "status": "ambiguous", "candidates": ["DJ-03", "DJ-04"],
        "matched": ["锦绣花园"],
    }  # fmt: skip
    assert rows[3]["grid"] == "FN-01" and rows[3]["matched"] == ["chat"]
    assert rows[4] == {"grid": None, "status": "unknown", "candidates": [], "matched": []}
    assert "error" in rows[5] and "datum" in rows[6]["error"]
    assert len(rows) == 7
