"""Routing benchmark: accuracy on the labelled cases, then speed and memory at county scale.

    python bench/routing.py [--places 100000] [--messages 60000]

Part 1 routes tests/routing_cases.yaml over the sample county and counts misroutes (a grid
given where the label says another grid, or says ambiguous/unknown: a confident wrong answer),
and how many cases were answered by sound (a homophone of a place name: `matched` has `≈`), of
them how many next to an exact shorter name (rule 1a: `南关`, `南关心村≈南关新村`).
Part 2 generates a county of 100,000 places (1,000 grids with boundaries, streets split by
number, aliases) and measures the index build (the exact and the phonetic index), routing
throughput next to a same-run baseline (a bare Aho-Corasick scan of the same messages; 3% of
the messages name a place with one character swapped for a homophone), and peak RSS. The
last line printed is one JSON object: accuracy, misroutes, msgs_per_s, build_s, rss_mb.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_MSGS_PER_S = 20_000
TARGET_BUILD_S = 5.0
TARGET_RSS_MB = 200.0

_CHARS = (
    "安宝北滨博昌城春翠大德东丰凤福富阜港光广贵国海汉和河恒红宏鸿华欢环辉汇佳嘉建江金锦晶"
    "景静九聚康兰乐丽利莲良林临柳龙隆鹿绿美明南宁平荣瑞润森山善尚胜盛石书顺泰天田通同万旺"
    "文西祥翔新鑫兴秀旭阳怡益银永友裕园源悦云长振正中众竹紫"
)
_COMPOUND = ["小区", "花园", "家属院", "苑", "新村", "家园", "公寓", "村"]
_STREET = ["路", "街", "巷", "大道"]
_OTHER = ["小学", "中学", "市场", "医院", "幼儿园", "广场"]
_PROBLEMS = [
    "路灯坏了", "下水道堵了好几天", "垃圾没人清理", "有人乱停车", "井盖丢了很危险",
    "楼道灯不亮", "晚上施工太吵", "树倒了挡路", "有3个路灯坏了", "积水很深过不去",
]  # fmt: skip


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- part 1: accuracy ---------------------------------------------------------------------


def accuracy() -> tuple[float, int, int, int, int]:
    import yaml

    from bot.county.files import load_county_dir
    from bot.messages import GeoPoint
    from bot.routing import Router
    from models.enums import RouteStatus

    router = Router.build(load_county_dir(ROOT / "config" / "sample"))
    cases = yaml.safe_load((ROOT / "tests" / "routing_cases.yaml").read_text("utf-8"))
    right = misroutes = by_sound = beside_exact = 0
    for c in cases:
        loc = GeoPoint(c["lat"], c["lon"], c.get("datum", "wgs84")) if "lat" in c else None
        r = router.route(c["text"], c.get("chat_grid"), loc)
        got = r.grid if r.status == RouteStatus.ROUTED else r.status.value
        ok = got == c["expect"]
        if ok and "candidates" in c:
            ok = set(r.candidates) == set(c["candidates"])
        right += ok
        by_sound += any("≈" in m for m in r.matched)
        beside_exact += any("≈" in m for m in r.matched) and any(
            "≈" not in m and m not in ("location", "chat") for m in r.matched
        )
        if r.status == RouteStatus.ROUTED and got != c["expect"]:
            misroutes += 1
            print(f"  misroute: {c['text']!r} -> {got}, expected {c['expect']}")
    return right / len(cases), misroutes, len(cases), by_sound, beside_exact


# --- part 2: scale ------------------------------------------------------------------------


def _name(rng: random.Random, used: set[str], suffixes: list[str]) -> str:
    while True:
        n = "".join(rng.choice(_CHARS) for _ in range(rng.choice((2, 2, 3))))
        name = n + rng.choice(suffixes)
        if name not in used:
            used.add(name)
            return name


def synthetic_county(n_places: int, seed: int = 7) -> Any:
    from bot.county.files import (
        BoundaryData,
        CommunityData,
        CountyData,
        GridData,
        PlaceRow,
        Staff,
    )
    from bot.routing.numbers import NumberRange

    rng = random.Random(seed)
    cols, rows = 40, 25  # 1,000 grids, 50 communities of 20
    step_lon, step_lat = 0.01, 0.008
    comms, grids, bounds = [], [], []
    for k in range(cols * rows // 20):
        comms.append(CommunityData(f"C{k:02d}", f"社区{k}"))
    for i in range(cols * rows):
        x, y = i % cols, i // cols
        code = f"C{i // 20:02d}-{i % 20:02d}"
        lon0, lat0 = 111.5 + x * step_lon, 35.8 + y * step_lat
        ring = [[lon0, lat0], [lon0 + step_lon, lat0], [lon0 + step_lon, lat0 + step_lat],
                [lon0, lat0 + step_lat], [lon0, lat0]]  # fmt: skip
        grids.append(GridData(code, f"网格{i}", f"C{i // 20:02d}", (Staff("某人", "13900000000"),)))
        bounds.append(BoundaryData(code, {"type": "Polygon", "coordinates": [ring]}))
    codes = [g.code for g in grids]
    used: set[str] = set()
    places: list[PlaceRow] = []
    while len(places) < n_places:
        g = rng.randrange(len(codes))
        roll = rng.random()
        if roll < 0.15:  # a street split between two neighbouring grids by side
            name = _name(rng, used, _STREET)
            other = codes[min(g + 1, len(codes) - 1)]
            places.append(PlaceRow(codes[g], name, (), "街道", (NumberRange(1, 199, "odd"),)))
            places.append(PlaceRow(other, name, (), "街道", (NumberRange(2, 200, "even"),)))
        elif roll < 0.25:  # a compound split by building
            name = _name(rng, used, _COMPOUND)
            other = codes[min(g + cols, len(codes) - 1)]
            places.append(PlaceRow(codes[g], name, (), "小区", (NumberRange(1, 8),)))
            places.append(PlaceRow(other, name, (), "小区", (NumberRange(9, 16),)))
        else:
            name = _name(rng, used, _COMPOUND if roll < 0.8 else _OTHER)
            aliases = (_name(rng, used, ["小区"]),) if rng.random() < 0.3 else ()
            places.append(PlaceRow(codes[g], name, aliases, "小区"))
    county = CountyData("合成县", tuple(comms), tuple(grids), tuple(places[:n_places]),
                        tuple(bounds))  # fmt: skip
    return county


def _homophones() -> dict[str, list[str]]:
    """Characters of the generated names that share a toneless syllable with another one."""
    from bot.routing.phonetic import lazy_pinyin  # pypinyin as the router loads it

    by_sound: dict[str, list[str]] = {}
    for ch in _CHARS:
        by_sound.setdefault(lazy_pinyin(ch)[0], []).append(ch)
    return {ch: [o for o in chars if o != ch] for chars in by_sound.values() if len(chars) > 1
            for ch in chars}  # fmt: skip


def messages(county: Any, n: int, seed: int = 11) -> list[tuple[str, str | None, Any]]:
    from bot.messages import GeoPoint

    rng = random.Random(seed)
    names = [p.name for p in county.places]
    codes = [g.code for g in county.grids]
    alike = _homophones()
    out: list[tuple[str, str | None, Any]] = []
    for _ in range(n):
        roll = rng.random()
        problem = rng.choice(_PROBLEMS)
        chat = rng.choice(codes) if rng.random() < 0.5 else None
        loc = None
        if roll < 0.45:
            text = f"{rng.choice(names)}{rng.randint(1, 20)}号楼{problem}"
        elif roll < 0.72:
            text = f"你好，{rng.choice(names)}门口{problem}，麻烦尽快处理一下，谢谢"
        elif roll < 0.75:  # one character of the name swapped for one that sounds the same
            name = rng.choice(names)
            at = [i for i, ch in enumerate(name) if ch in alike]
            if at:
                i = rng.choice(at)
                name = name[:i] + rng.choice(alike[name[i]]) + name[i + 1 :]
            text = f"{name}门口{problem}"
        elif roll < 0.9:
            text = f"{problem}，已经好几天了"
        else:
            text = f"这里{problem}"
            datum = "gcj02" if rng.random() < 0.5 else "wgs84"
            loc = GeoPoint(35.8 + rng.random() * 0.2, 111.5 + rng.random() * 0.4, datum)
        out.append((text, chat, loc))
    return out


def scale(n_places: int, n_msgs: int) -> dict[str, float]:
    import ahocorasick

    from bot.routing import Router

    county = synthetic_county(n_places)
    msgs = messages(county, n_msgs)
    gc.collect()
    rss_before = _rss_mb()

    t = time.perf_counter()
    router = Router.build(county)
    build_s = time.perf_counter() - t

    t = time.perf_counter()
    for text, chat, loc in msgs:
        router.route(text, chat, loc)
    route_s = time.perf_counter() - t

    # baseline: the bare scan the router builds on (raw names, no normalising, no decisions)
    t = time.perf_counter()
    auto = ahocorasick.Automaton()
    for p in county.places:
        auto.add_word(p.name, p.name)
    auto.make_automaton()
    base_build = time.perf_counter() - t
    t = time.perf_counter()
    for text, _chat, _loc in msgs:
        list(auto.iter(text))
    base_s = time.perf_counter() - t

    text_only = [m for m in msgs if m[2] is None]
    t = time.perf_counter()
    for text, chat, _loc in text_only:
        router.route(text, chat)
    text_s = time.perf_counter() - t

    rss = _rss_mb()
    print(f"county: {len(county.grids):,} grids, {len(county.places):,} place rows; "
          f"{len(msgs):,} messages ({len(msgs) - len(text_only):,} with a location)")  # fmt: skip
    def rate(label: str, n: int, secs: float, note: str = "") -> None:
        print(f"  {label:<10} {n / secs:10,.0f} msg/s  {secs / n * 1e6:6.1f} µs/msg{note}")

    print(f"  build      {build_s:6.2f} s   (bare automaton over raw names: {base_build:.2f} s)")
    rate("route", len(msgs), route_s)
    rate("text only", len(text_only), text_s)
    rate("baseline", len(msgs), base_s, "  (bare Aho-Corasick scan, same messages)")
    print(f"  peak RSS   {rss:6.1f} MB  (before the build: {rss_before:.1f} MB)")
    return {"msgs_per_s": len(msgs) / route_s, "build_s": build_s, "rss_mb": rss}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--places", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=60_000)
    args = ap.parse_args()

    acc, misroutes, n, by_sound, beside_exact = accuracy()
    print(f"labelled cases: {n}, accuracy {acc:.1%}, misroutes {misroutes}")
    print(f"  answered by sound (phonetic path): {by_sound} of {n}, "
          f"{beside_exact} of them beside an exact shorter name (rule 1a)")  # fmt: skip
    s = scale(args.places, args.messages)
    ok = (
        s["msgs_per_s"] >= TARGET_MSGS_PER_S
        and s["build_s"] <= TARGET_BUILD_S
        and s["rss_mb"] <= TARGET_RSS_MB
    )
    print(f"targets: ≥{TARGET_MSGS_PER_S:,} msg/s, build ≤{TARGET_BUILD_S} s, "
          f"RSS ≤{TARGET_RSS_MB:.0f} MB: {'met' if ok else 'MISSED'}")  # fmt: skip
    print(json.dumps({
        "accuracy": round(acc, 4),
        "misroutes": misroutes,
        "msgs_per_s": round(s["msgs_per_s"]),
        "build_s": round(s["build_s"], 3),
        "rss_mb": round(s["rss_mb"], 1),
    }))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
