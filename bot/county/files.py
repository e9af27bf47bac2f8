"""Read and validate a county directory into plain dataclasses (no database, no routing).

The directory holds `grids.yaml`, `places.csv` or `places.xlsx`, and optionally
`boundaries.geojson`, `holidays.yaml` and `households.csv` (the call-back register)
(format: config/sample/README.md). Every problem found
is collected and raised together as one `CountyFileError`, each naming the file, the row
(CSV/XLSX row, YAML line, or GeoJSON feature number) and the reason, so an import either takes
everything or nothing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

import yaml

from bot.routing.datum import gcj02_to_wgs84
from bot.routing.normalize import normalize
from bot.routing.numbers import NumberRange, NumberSpecError, format_ranges, parse_ranges

GRIDS_FILE = "grids.yaml"
PLACES_CSV = "places.csv"
PLACES_XLSX = "places.xlsx"
BOUNDARIES_FILE = "boundaries.geojson"
HOLIDAYS_FILE = "holidays.yaml"
HOUSEHOLDS_CSV = "households.csv"

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_PHONE_STRIP = re.compile(r"[\s()+-]")
_MOBILE_LEN = 11
_PHONE_MIN, _PHONE_MAX = 7, 15
_COMMUNITY_KEYS = {"code", "name", "grids"}
_GRID_KEYS = {"code", "name", "workers", "leader", "micro_grids"}
_HEADERS = {
    "grid": "grid", "网格": "grid", "网格编码": "grid", "网格代码": "grid",
    "place": "place", "地点": "place", "地名": "place", "名称": "place",
    "aliases": "aliases", "别名": "aliases",
    "kind": "kind", "类型": "kind", "类别": "kind",
    "numbers": "numbers", "门牌": "numbers", "号段": "numbers", "楼号": "numbers",
}  # fmt: skip
MIN_KEY_LEN = 2  # a one-character name would match inside ordinary words


@dataclass(frozen=True)
class Staff:
    name: str
    phone: str = ""  # digits only, "" when not given


@dataclass(frozen=True)
class CommunityData:
    code: str
    name: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GridData:
    code: str
    name: str
    community: str  # community code
    workers: tuple[Staff, ...] = ()
    leader: Staff | None = None
    micro_grids: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PlaceRow:
    grid: str
    name: str
    aliases: tuple[str, ...] = ()
    kind: str = ""
    ranges: tuple[NumberRange, ...] = ()
    row: int = 0  # source row, 0 when loaded from the database

    @property
    def numbers(self) -> str:
        return format_ranges(self.ranges)


@dataclass(frozen=True)
class HouseholdRow:
    """A household the command centre may phone for a call-back (回访)."""

    grid: str
    address: str  # 门牌
    name: str = ""
    phone: str = ""  # digits only
    row: int = 0


@dataclass(frozen=True)
class BoundaryData:
    grid: str
    geometry: dict[str, Any]  # GeoJSON Polygon/MultiPolygon, WGS-84
    source_datum: str = "wgs84"


@dataclass(frozen=True)
class CountyData:
    name: str
    communities: tuple[CommunityData, ...]
    grids: tuple[GridData, ...]
    places: tuple[PlaceRow, ...]
    boundaries: tuple[BoundaryData, ...] = ()
    source: str = ""
    calendar: tuple[tuple[date, bool], ...] = ()  # (day, is it a workday), from holidays.yaml
    households: tuple[HouseholdRow, ...] = ()  # households.csv: call-backs only, never routing


@dataclass(frozen=True)
class Problem:
    file: str
    row: int | None
    reason: str

    def __str__(self) -> str:
        where = f" row {self.row}" if self.row else ""
        return f"{self.file}{where}: {self.reason}"


class CountyFileError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{len(problems)} problem(s) in county files:\n{shown}{more}")


# --- grids.yaml ---------------------------------------------------------------------------


class _LineDict(dict[str, Any]):
    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    # keys stay as YAML typed them (holidays.yaml has dates); the annotation says str
    d = _LineDict(cast(dict[str, Any], loader.construct_mapping(node, deep=True)))
    d.line = node.start_mark.line + 1
    return d


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line(obj: object) -> int | None:
    return obj.line if isinstance(obj, _LineDict) else None


def _text(v: object) -> str:
    return "" if v is None else str(v).strip()


def _yaml_problem(fname: str, e: yaml.YAMLError, text: str) -> Problem:
    """One line naming where the typo is, instead of PyYAML's multi-line report."""
    if not isinstance(e, yaml.MarkedYAMLError) or e.problem_mark is None:
        return Problem(fname, None, f"bad YAML: {e}")
    mark = e.problem_mark
    # a scanner error ("while scanning a simple key") starts where the token did, which is the
    # typo; the problem mark is wherever the scanner gave up, often the next line
    if e.context_mark is not None and (e.context or "").startswith("while scanning"):
        mark = e.context_mark
    lines = text.splitlines()
    where = ""
    if 0 <= mark.line < len(lines) and lines[mark.line].strip():
        where = f" in {lines[mark.line].strip()!r} (column {mark.column + 1})"
    context = f" ({e.context})" if e.context else ""
    return Problem(fname, mark.line + 1, f"bad YAML{where}: {e.problem}{context}")


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    # YAML may hold dates and other types the JSON column cannot store
    return json.loads(json.dumps(dict(d), ensure_ascii=False, default=str))


def _phone_problem(digits: str) -> str | None:
    """What is wrong with a phone (already stripped of spaces, '-', '+', brackets), if anything.

    Mobiles start with 1 and have 11 digits; landlines have 7-8, 10-12 with the area code
    (0...), and either may carry the country code 86 or 0086, hence up to 15."""
    if not digits:
        return None
    if not digits.isdigit():
        return "is not a number"
    n = len(digits)
    if digits.startswith("1") and n != _MOBILE_LEN:
        side = "short" if n < _MOBILE_LEN else "long"
        return f"is too {side}: {n} digits, a mobile number has {_MOBILE_LEN}"
    if n < _PHONE_MIN:
        return (f"is too short: {n} digits (a mobile number has {_MOBILE_LEN}, "
                f"a landline at least {_PHONE_MIN})")
    if n > _PHONE_MAX:
        return f"is too long: {n} digits (at most {_PHONE_MAX})"
    return None


class _Grids:
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.communities: list[CommunityData] = []
        self.grids: list[GridData] = []
        self._codes: dict[str, int | None] = {}
        self._phones: dict[str, tuple[str, str]] = {}  # phone -> (name, grid)

    def err(self, where: object, reason: str) -> None:
        self.problems.append(Problem(GRIDS_FILE, _line(where), reason))

    def code(self, obj: dict[str, Any], what: str) -> str | None:
        code = _text(obj.get("code"))
        if not code:
            self.err(obj, f"{what} without a code")
            return None
        if not _CODE.match(code):
            self.err(obj, f"{what} code {code!r}: use letters, digits, '-', '_' (at most 32)")
            return None
        if code.upper() in self._codes:
            first = self._codes[code.upper()]
            self.err(obj, f"{what} code {code!r} is used twice (first at line {first})")
            return None
        self._codes[code.upper()] = _line(obj)
        return code

    def staff(self, obj: object, grid: str, what: str) -> Staff | None:
        if not isinstance(obj, dict):
            self.err(obj, f"grid {grid}: {what} must be a mapping with name and phone")
            return None
        name = _text(obj.get("name"))
        if not name:
            self.err(obj, f"grid {grid}: {what} without a name")
            return None
        phone = _PHONE_STRIP.sub("", _text(obj.get("phone")))
        bad = _phone_problem(phone)
        if bad:
            self.err(obj, f"grid {grid}: {what} {name}: phone {obj.get('phone')!r} {bad}")
            return None
        if phone:
            # one phone is one person on import, so two names on it is a typo somewhere
            first = self._phones.setdefault(phone, (name, grid))
            if first[0] != name:
                self.err(obj, f"grid {grid}: {what} {name} has the phone of {first[0]} "
                         f"({first[1]})")
                return None
        return Staff(name=name, phone=phone)

    def grid(self, obj: object, community: str) -> None:
        if not isinstance(obj, dict):
            self.err(obj, f"community {community}: each grid must be a mapping")
            return
        code = self.code(obj, "grid")
        name = _text(obj.get("name"))
        if code and not name:
            self.err(obj, f"grid {code} without a name")
        if not code or not name:
            return
        workers_raw = obj.get("workers") or []
        if not isinstance(workers_raw, list):
            self.err(obj, f"grid {code}: workers must be a list")
            workers_raw = []
        workers: list[Staff] = []
        for w in workers_raw:
            s = self.staff(w, code, "worker")
            if s and s not in workers:
                workers.append(s)
        leader = None
        if obj.get("leader") is not None:
            leader = self.staff(obj["leader"], code, "leader")
        micro: list[str] = []
        micro_raw = obj.get("micro_grids") or []
        if not isinstance(micro_raw, list):
            self.err(obj, f"grid {code}: micro_grids must be a list")
            micro_raw = []
        for m in micro_raw:
            label = _text(m.get("name")) if isinstance(m, dict) else _text(m)
            if label:
                micro.append(label)
        extra = _jsonable({k: v for k, v in obj.items() if k not in _GRID_KEYS})
        self.grids.append(
            GridData(code, name, community, tuple(workers), leader, tuple(micro), extra)
        )

    def community(self, obj: object) -> None:
        if not isinstance(obj, dict):
            self.err(obj, "each community must be a mapping with code, name, grids")
            return
        code = self.code(obj, "community")
        name = _text(obj.get("name"))
        if code and not name:
            self.err(obj, f"community {code} without a name")
        if not code or not name:
            return
        extra = _jsonable({k: v for k, v in obj.items() if k not in _COMMUNITY_KEYS})
        self.communities.append(CommunityData(code, name, extra))
        grids = obj.get("grids") or []
        if not isinstance(grids, list):
            self.err(obj, f"community {code}: grids must be a list")
            return
        for g in grids:
            self.grid(g, code)


def _read_grids(path: Path, problems: list[Problem]) -> tuple[str, _Grids]:
    g = _Grids(problems)
    text = path.read_text(encoding="utf-8-sig")
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        problems.append(_yaml_problem(GRIDS_FILE, e, text))
        return "", g
    if not isinstance(doc, dict):
        problems.append(Problem(GRIDS_FILE, None, "expected a mapping with name and communities"))
        return "", g
    name = _text(doc.get("name"))
    if not name:
        g.err(doc, "the county has no name")
    communities = doc.get("communities")
    if not isinstance(communities, list) or not communities:
        g.err(doc, "communities must be a non-empty list")
        return name, g
    for c in communities:
        g.community(c)
    return name, g


@dataclass
class _GridRefs:
    """The grid codes places and boundaries may name.

    While grids.yaml has errors, a code missing from `codes` may belong to a grid that failed
    there (or to a file that did not parse at all), so it is counted rather than reported:
    otherwise one typo in grids.yaml comes back as an "unknown grid" on every dependent row.
    """

    codes: set[str]
    trusted: bool
    skipped: dict[str, int] = field(default_factory=dict)  # file -> rows not checked

    def problem(self, fname: str, grid: str) -> str | None:
        if grid in self.codes:
            return None
        if self.trusted:
            return f"unknown grid {grid!r} (not in {GRIDS_FILE})"
        self.skipped[fname] = self.skipped.get(fname, 0) + 1
        return None

    def summary(self) -> Problem | None:
        if not self.skipped:
            return None
        counts = [f"{n} {'feature' if f == BOUNDARIES_FILE else 'row'}{'s' * (n != 1)}"
                  for f, n in self.skipped.items()]
        return Problem(", ".join(self.skipped), None, (
            f"grid codes of {' and '.join(counts)} not checked because {GRIDS_FILE} has "
            f"errors; fix {GRIDS_FILE} first"))


# --- places.csv / places.xlsx -------------------------------------------------------------


def _csv_rows(path: Path) -> list[list[str]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")  # Excel on Chinese Windows saves CSV as GBK
    return list(csv.reader(io.StringIO(text, newline="")))


def _cell(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return _text(v)


def _xlsx_rows(path: Path) -> list[list[str]]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb["places"] if "places" in wb.sheetnames else wb.worksheets[0]
        return [[_cell(v) for v in row] for row in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def _split_aliases(cell: str) -> list[str]:
    return [a.strip() for a in re.split(r"[|｜]", cell) if a.strip()]


def _read_places(path: Path, refs: _GridRefs, problems: list[Problem]) -> list[PlaceRow]:
    fname = path.name
    is_csv = path.suffix != ".xlsx"
    try:
        rows = _csv_rows(path) if is_csv else _xlsx_rows(path)
    except Exception as e:  # a corrupt sheet can raise almost anything from openpyxl
        problems.append(Problem(fname, None, f"cannot read: {e}"))
        return []
    if not rows:
        problems.append(Problem(fname, None, "empty file"))
        return []
    header = [_HEADERS.get(h.strip().lower(), h.strip().lower()) for h in rows[0]]
    while header and not header[-1]:
        header.pop()  # trailing commas after the header name no column
    col = {h: i for i, h in enumerate(header) if h in _HEADERS.values()}
    missing = [c for c in ("grid", "place") if c not in col]
    if missing:
        problems.append(Problem(fname, 1, f"missing column(s): {', '.join(missing)}"))
        return []

    def get(r: list[str], key: str) -> str:
        i = col.get(key)
        return r[i].strip() if i is not None and i < len(r) and r[i] else ""

    out: list[PlaceRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for n, r in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in r if c):
            continue
        used = len(r)
        while used and not (r[used - 1] or "").strip():
            used -= 1
        if is_csv and (len(r) < len(header) or used > len(header)):
            # a lost or extra comma shifts every later cell into the wrong column
            problems.append(Problem(fname, n, (
                f"{len(r) if len(r) < len(header) else used} columns, but the header has "
                f"{len(header)} ({', '.join(rows[0][: len(header)])}); a missing or extra "
                "comma? (quote cells that contain a comma)")))
            continue
        grid, name = get(r, "grid"), get(r, "place")
        bad = len(problems)
        if not grid:
            problems.append(Problem(fname, n, "no grid"))
        elif unknown := refs.problem(fname, grid):
            problems.append(Problem(fname, n, unknown))
        if not name:
            problems.append(Problem(fname, n, "no place name"))
        elif len(normalize(name)) < MIN_KEY_LEN:
            problems.append(Problem(fname, n, f"place name {name!r} is too short to match"))
        aliases = []
        for a in _split_aliases(get(r, "aliases")):
            if len(normalize(a)) < MIN_KEY_LEN:
                problems.append(Problem(fname, n, f"alias {a!r} is too short to match"))
            elif normalize(a) != normalize(name) and a not in aliases:
                aliases.append(a)
        try:
            ranges = parse_ranges(get(r, "numbers"))
        except NumberSpecError as e:
            problems.append(Problem(fname, n, str(e)))
            ranges = ()
        if len(problems) > bad:
            continue
        key = (grid, normalize(name), format_ranges(ranges))
        if key in seen:
            problems.append(Problem(fname, n, f"duplicate of row {seen[key]}"))
            continue
        seen[key] = n
        out.append(PlaceRow(grid, name, tuple(aliases), get(r, "kind"), ranges, n))
    _check_overlaps(fname, out, problems)
    return out


_HOUSEHOLD_HEADERS = {
    "grid": "grid", "网格": "grid", "网格编码": "grid", "网格代码": "grid",
    "address": "address", "门牌": "address", "地址": "address", "住址": "address",
    "name": "name", "姓名": "name", "户主": "name", "联系人": "name",
    "phone": "phone", "电话": "phone", "手机": "phone", "联系电话": "phone",
}  # fmt: skip


def _read_households(path: Path, refs: _GridRefs, problems: list[Problem]) -> list[HouseholdRow]:
    fname = path.name
    try:
        rows = _csv_rows(path)
    except OSError as e:
        problems.append(Problem(fname, None, f"cannot read: {e}"))
        return []
    if not rows:
        return []
    header = [_HOUSEHOLD_HEADERS.get(h.strip().lower(), h.strip().lower()) for h in rows[0]]
    col = {h: i for i, h in enumerate(header) if h in _HOUSEHOLD_HEADERS.values()}
    missing = [c for c in ("grid", "address", "phone") if c not in col]
    if missing:
        problems.append(Problem(fname, 1, f"missing column(s): {', '.join(missing)}"))
        return []
    out: list[HouseholdRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for n, r in enumerate(rows[1:], start=2):
        cell = {k: (r[i].strip() if i < len(r) else "") for k, i in col.items()}
        if not any(cell.values()):
            continue
        bad = len(problems)
        grid, address = cell["grid"], cell["address"]
        phone = _PHONE_STRIP.sub("", cell["phone"])
        if not grid:
            problems.append(Problem(fname, n, "no grid"))
        elif unknown := refs.problem(fname, grid):
            problems.append(Problem(fname, n, unknown))
        if not address:
            problems.append(Problem(fname, n, "no address (门牌)"))
        if not phone:
            problems.append(Problem(fname, n, "no phone: a household nobody can call"))
        elif why := _phone_problem(phone):
            # the number itself is not repeated: it would land in logs and terminals
            problems.append(Problem(fname, n, f"phone {why}"))
        if len(problems) > bad:
            continue
        key = (grid, normalize(address), cell.get("name", ""))
        if key in seen:
            problems.append(Problem(fname, n, f"duplicate of row {seen[key]}"))
            continue
        seen[key] = n
        out.append(HouseholdRow(grid, address, cell.get("name", ""), phone, n))
    return out


def _check_overlaps(fname: str, rows: list[PlaceRow], problems: list[Problem]) -> None:
    by_place: dict[str, list[PlaceRow]] = {}
    for p in rows:
        by_place.setdefault(normalize(p.name), []).append(p)
    for group in by_place.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if a.grid == b.grid:
                    continue
                for ra in a.ranges:
                    clash = next((rb for rb in b.ranges if ra.overlaps(rb)), None)
                    if clash is not None:
                        problems.append(Problem(fname, b.row, (
                            f"{b.name} {clash} ({b.grid}) overlaps {ra} ({a.grid}) of row {a.row}"
                        )))
                        break


# --- boundaries.geojson -------------------------------------------------------------------


def _map_coords(coords: Any, fn: Any) -> Any:
    if coords and isinstance(coords[0], int | float):
        return fn(coords)
    return [_map_coords(c, fn) for c in coords]


def _points(coords: Any) -> list[list[float]]:
    if coords and isinstance(coords[0], int | float):
        return [coords]
    return [p for c in coords for p in _points(c)]


def _open_ring(kind: str, coords: Any) -> str | None:
    """The first ring whose last position does not repeat its first (RFC 7946 3.1.6).

    Checked on the raw coordinates: shapely closes an open ring silently, which would turn a
    ring whose last point was lost in copying into a different polygon."""
    polygons = coords if kind == "MultiPolygon" else [coords]
    for pi, rings in enumerate(polygons, start=1):
        for ri, ring in enumerate(rings, start=1):
            if len(ring) < 4 or list(ring[0]) != list(ring[-1]):
                where = "outer ring" if ri == 1 else f"hole {ri - 1}"
                if kind == "MultiPolygon":
                    where += f" of polygon {pi}"
                if len(ring) < 4:
                    return (f"{where} has {len(ring)} points; a ring needs at least 4, "
                            "the last repeating the first")
                return (f"{where} is not closed: the last point {list(ring[-1])} must repeat "
                        f"the first {list(ring[0])}")
    return None


def _gcj_to_wgs(pt: list[float]) -> list[float]:
    lat, lon = gcj02_to_wgs84(float(pt[1]), float(pt[0]))
    return [round(lon, 8), round(lat, 8)]


def _read_boundary(
    i: int, feat: object, refs: _GridRefs, seen: dict[str, int], problems: list[Problem]
) -> BoundaryData | None:
    from shapely.geometry import shape
    from shapely.validation import explain_validity

    def err(reason: str) -> None:
        problems.append(Problem(BOUNDARIES_FILE, i, reason))

    if not isinstance(feat, dict) or feat.get("type") != "Feature":
        err("not a GeoJSON Feature")
        return None
    props = feat.get("properties") or {}
    geom = feat.get("geometry") or {}
    grid = _text(props.get("grid"))
    datum = _text(props.get("datum") or "wgs84").lower().replace("-", "")
    if not grid:
        err("properties.grid missing")
        return None
    if unknown := refs.problem(BOUNDARIES_FILE, grid):
        err(unknown)
        return None
    if grid in seen:
        err(f"grid {grid} already has a boundary (feature {seen[grid]})")
        return None
    if datum not in ("wgs84", "gcj02"):
        err(f"datum {props.get('datum')!r}: expected wgs84 or gcj02")
        return None
    if geom.get("type") not in ("Polygon", "MultiPolygon"):
        err(f"grid {grid}: geometry must be Polygon or MultiPolygon, not {geom.get('type')}")
        return None
    try:
        pts = _points(geom["coordinates"])
        if not pts or any(len(p) < 2 for p in pts):
            raise ValueError("empty or short positions")
        if all(15 <= p[0] <= 56 and 70 <= p[1] <= 140 for p in pts):
            err(f"grid {grid}: coordinates look like [lat, lon]; GeoJSON wants [lon, lat]")
            return None
        if any(not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90) for p in pts):
            err(f"grid {grid}: coordinates out of range")
            return None
        if open_ring := _open_ring(geom["type"], geom["coordinates"]):
            err(f"grid {grid}: {open_ring}")
            return None
        coords = geom["coordinates"]
        if datum == "gcj02":
            coords = _map_coords(coords, _gcj_to_wgs)
        else:
            coords = _map_coords(coords, lambda p: [float(p[0]), float(p[1])])
        wgs = {"type": geom["type"], "coordinates": coords}
        s = shape(wgs)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        err(f"grid {grid}: malformed coordinates ({e})")
        return None
    if s.is_empty or not s.is_valid:
        err(f"grid {grid}: invalid polygon ({explain_validity(s)})")
        return None
    seen[grid] = i
    return BoundaryData(grid, wgs, datum)


def _read_boundaries(path: Path, refs: _GridRefs, problems: list[Problem]) -> list[BoundaryData]:
    import shapely
    from shapely.geometry import shape

    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        problems.append(Problem(BOUNDARIES_FILE, getattr(e, "lineno", None), f"bad JSON: {e}"))
        return []
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        problems.append(Problem(BOUNDARIES_FILE, None, "expected a GeoJSON FeatureCollection"))
        return []
    seen: dict[str, int] = {}
    shapes: dict[bytes, tuple[str, int]] = {}  # normalized polygon -> (grid, feature)
    out = []
    for i, feat in enumerate(doc.get("features") or [], start=1):
        b = _read_boundary(i, feat, refs, seen, problems)
        if not b:
            continue
        # normalized: the same polygon started at another corner or drawn the other way round
        key = shapely.normalize(shape(b.geometry)).wkb
        if key in shapes:
            other, j = shapes[key]
            problems.append(Problem(BOUNDARIES_FILE, i, (
                f"grid {b.grid} has the same polygon as grid {other} (feature {j}); "
                "copied by mistake?")))
            continue
        shapes[key] = (b.grid, i)
        out.append(b)
    return out


# --- holidays.yaml ------------------------------------------------------------------------

_SPAN = re.compile(r"\s*(?:~|～|至|\.\.)\s*")
_LONGEST_SPAN = 31


def _date_span(text: str) -> list[date]:
    parts = _SPAN.split(text.strip())
    if len(parts) > 2:
        raise ValueError(f"{text!r}: one date, or two joined by ~")
    try:
        first, last = date.fromisoformat(parts[0]), date.fromisoformat(parts[-1])
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date like 2027-02-06 or 2027-02-06 ~ 2027-02-12") from None
    if last < first:
        raise ValueError(f"{text!r} ends before it starts")
    if (last - first).days >= _LONGEST_SPAN:
        raise ValueError(f"{text!r} is longer than {_LONGEST_SPAN} days; a typo?")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _read_holidays(path: Path, problems: list[Problem]) -> tuple[tuple[date, bool], ...]:
    def err(node: yaml.Node | None, reason: str) -> None:
        problems.append(Problem(HOLIDAYS_FILE, node.start_mark.line + 1 if node else None, reason))

    text = path.read_text(encoding="utf-8-sig")
    try:
        # composed, not loaded: every date keeps its line for the error report
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        problems.append(_yaml_problem(HOLIDAYS_FILE, e, text))
        return ()
    if root is None:  # only comments: no days of its own
        return ()
    if not isinstance(root, yaml.MappingNode):
        err(root, "expected a mapping with off and work lists")
        return ()
    days: dict[date, bool] = {}
    for key, value in root.value:
        if key.value not in ("off", "work"):
            err(key, f"unknown key {key.value!r}: use off (days off) and work (days worked)")
            continue
        workday = key.value == "work"
        if isinstance(value, yaml.ScalarNode) and value.value in ("", "~", "null"):
            continue
        if not isinstance(value, yaml.SequenceNode):
            err(value, f"{key.value} must be a list of dates")
            continue
        for item in value.value:
            if not isinstance(item, yaml.ScalarNode):
                err(item, "expected a date like 2027-02-06 or 2027-02-06 ~ 2027-02-12")
                continue
            try:
                span = _date_span(item.value)
            except ValueError as e:
                err(item, str(e))
                continue
            for day in span:
                if days.get(day, workday) != workday:
                    err(item, f"{day} is listed both as off and as work")
                days[day] = workday
    return tuple(sorted(days.items()))


# --- the directory ------------------------------------------------------------------------


def load_county_dir(directory: Path | str) -> CountyData:
    """Parse and validate a county directory; raise CountyFileError listing every problem."""
    d = Path(directory)
    problems: list[Problem] = []
    if not (d / GRIDS_FILE).is_file():
        raise CountyFileError([Problem(GRIDS_FILE, None, f"not found in {d}")])
    name, g = _read_grids(d / GRIDS_FILE, problems)
    refs = _GridRefs({x.code for x in g.grids}, trusted=not problems)
    csv_p, xlsx_p = d / PLACES_CSV, d / PLACES_XLSX
    places: list[PlaceRow] = []
    if csv_p.is_file() and xlsx_p.is_file():
        problems.append(Problem(PLACES_CSV, None, f"both {PLACES_CSV} and {PLACES_XLSX}: keep one"))
    elif csv_p.is_file() or xlsx_p.is_file():
        places = _read_places(csv_p if csv_p.is_file() else xlsx_p, refs, problems)
    else:
        problems.append(Problem(PLACES_CSV, None, f"neither {PLACES_CSV} nor {PLACES_XLSX} found"))
    boundaries: list[BoundaryData] = []
    if (d / BOUNDARIES_FILE).is_file():
        boundaries = _read_boundaries(d / BOUNDARIES_FILE, refs, problems)
    households: list[HouseholdRow] = []
    if (d / HOUSEHOLDS_CSV).is_file():
        # its unchecked grid codes stay out of the summary line, which names what to fix
        # for routing; the register is checked in full once grids.yaml is
        households = _read_households(d / HOUSEHOLDS_CSV, _GridRefs(refs.codes, refs.trusted),
                                      problems)
    if summary := refs.summary():
        problems.append(summary)
    calendar: tuple[tuple[date, bool], ...] = ()
    if (d / HOLIDAYS_FILE).is_file():
        calendar = _read_holidays(d / HOLIDAYS_FILE, problems)
    if problems:
        raise CountyFileError(problems)
    return CountyData(
        name=name,
        communities=tuple(g.communities),
        grids=tuple(g.grids),
        places=tuple(places),
        boundaries=tuple(boundaries),
        source=str(d.resolve()),
        calendar=calendar,
        households=tuple(households),
    )
