"""Several numbers after one split place: every one of them counts, never the first alone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.county.files import CountyData, PlaceRow
from bot.routing import NumberRange, Router, normalize, number_after, parse_ranges
from bot.routing.numbers import members, numbers_after
from models.enums import RouteStatus


def _spans(text: str) -> list[tuple[int, int]]:
    return [(r.lo, r.hi) for r in numbers_after(normalize("府前街" + text), 3)]


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        # one number, as before
        ("23号", [(23, 23)]), ("3号楼2单元", [(3, 3)]), ("9-2-301", [(9, 9)]),
        ("9-2单元", [(9, 9)]), ("23-1号", [(23, 23)]), ("的第三栋", [(3, 3)]),
        ("12栋", [(12, 12)]), ("12幢", [(12, 12)]), ("十二栋", [(12, 12)]), ("12号院", [(12, 12)]),
        ("23,", [(23, 23)]), ("3号楼,5楼", [(3, 3)]), ("3号楼和5个", [(3, 3)]),
        # 栋 then a word about one building: building N, not N buildings
        ("12栋楼道", [(12, 12)]), ("12栋楼下", [(12, 12)]), ("十二栋楼顶", [(12, 12)]),
        ("第3栋楼", [(3, 3)]),
        # lists
        ("3号楼和12号楼", [(3, 3), (12, 12)]), ("3、12号楼", [(3, 3), (12, 12)]),
        ("3,12号楼", [(3, 3), (12, 12)]), ("3号楼与12号楼", [(3, 3), (12, 12)]),
        ("三、五号楼", [(3, 3), (5, 5)]), ("第3栋和第12栋", [(3, 3), (12, 12)]),
        ("3栋、12幢", [(3, 3), (12, 12)]), ("23号和24号", [(23, 23), (24, 24)]),
        ("3、5、7号楼", [(3, 3), (5, 5), (7, 7)]), ("3号楼和5、6号楼", [(3, 3), (5, 5), (6, 6)]),
        # ranges
        ("3-8号楼", [(3, 8)]), ("3至8号楼", [(3, 8)]), ("3到8号楼", [(3, 8)]),
        ("3~8号楼", [(3, 8)]), ("3号楼到8号楼", [(3, 8)]), ("三至八栋", [(3, 8)]),
        ("8至3号楼", [(3, 8)]), ("23-27号", [(23, 27)]), ("3-8", [(3, 8)]),
        # not addresses
        ("3栋楼之间", []), ("3、5栋楼之间", []), ("3到5栋楼停电", []), ("3、5个", []),
        ("3和5个", []), ("3至8楼", []), ("5楼", []), ("3单元", []), ("有3个", []), ("", []),
    ],
)  # fmt: skip
def test_numbers_after(text: str, spans: list[tuple[int, int]]) -> None:
    assert _spans(text) == spans


def test_number_after_is_only_ever_one_number() -> None:
    assert number_after(normalize("府前街23号"), 3) == 23
    for text in ("府前街3号楼和12号楼", "府前街3-8号楼", "府前街3、5号楼", "府前街门口"):
        assert number_after(normalize(text), 3) is None


def test_members() -> None:
    assert members(NumberRange(23, 27), sided=True) == range(23, 28, 2)
    assert members(NumberRange(23, 26), sided=True) == range(23, 27)
    assert members(NumberRange(3, 5), sided=False) == range(3, 6)
    assert members(NumberRange(1, 5000), sided=False) is None


@pytest.mark.parametrize(
    "form", ["{a}号楼和{b}号楼", "{a}、{b}号楼", "第{a}栋和第{b}栋", "{a}栋、{b}幢"]
)
def test_never_the_first_of_two_buildings(router: Router, form: str) -> None:
    """锦绣花园: buildings 1-8 are DJ-03, 9-16 DJ-04; any order, any pair."""
    for a in range(1, 17):
        for b in range(1, 17):
            res = router.route("锦绣花园" + form.format(a=a, b=b) + "漏水")
            grids = {"DJ-03" if n <= 8 else "DJ-04" for n in (a, b)}
            if len(grids) == 1:
                assert (res.status, res.grid) == (RouteStatus.ROUTED, grids.pop()), (a, b, res)
            else:
                assert res.status == RouteStatus.AMBIGUOUS, (a, b, res)
                assert res.candidates == ["DJ-03", "DJ-04"]


@pytest.mark.parametrize("sep", ["-", "至", "到"])
def test_never_the_first_of_a_range(router: Router, sep: str) -> None:
    for a in range(1, 16):
        for b in range(a + 1, 17):
            res = router.route(f"锦绣花园{a}{sep}{b}号楼停水")
            if b <= 8 or a >= 9:
                assert res.status == RouteStatus.ROUTED, (a, b, res)
            else:
                assert res.candidates == ["DJ-03", "DJ-04"], (a, b, res)


def test_the_rest_of_the_place(county: CountyData) -> None:
    rows = (
        PlaceRow("DJ-01", "长街", ranges=parse_ranges("1-50")),
        PlaceRow("DJ-02", "长街"),
        PlaceRow("DJ-03", "短街", ranges=parse_ranges("1-10")),
        PlaceRow("DJ-04", "短街", ranges=parse_ranges("11-20")),
    )
    r = Router.build(replace(county, places=rows))
    assert r.route("长街20号和30号").grid == "DJ-01"
    assert r.route("长街20号和80号").candidates == ["DJ-01", "DJ-02"]
    assert r.route("长街45-55号").candidates == ["DJ-01", "DJ-02"]
    assert r.route("长街1-5000号").candidates == ["DJ-01", "DJ-02"]  # the whole street
    assert r.route("长街51-80号").grid == "DJ-02"
    # a number in no row says nothing, so the chat may choose; one in a row, and it may not
    assert r.route("短街30号", "DJ-04").grid == "DJ-04"
    assert r.route("短街5号和30号", "DJ-04").status == RouteStatus.AMBIGUOUS
    assert r.route("短街5号和30号").candidates == ["DJ-03", "DJ-04"]
    assert r.route("短街5号和7号", "DJ-04").grid == "DJ-03"


def test_one_place_named_twice(router: Router) -> None:
    res = router.route("锦绣花园3号楼漏水，锦绣小区12号楼也漏")  # the name and an alias
    assert res.candidates == ["DJ-03", "DJ-04"]
    assert router.route("锦绣花园12号楼，锦绣花园门口也有").grid == "DJ-04"
    assert router.route("锦绣花园3号楼和锦绣花园5号楼").grid == "DJ-03"
