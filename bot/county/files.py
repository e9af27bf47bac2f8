"""Read and validate a county directory into plain dataclasses (no database, no routing).

The directory holds `grids.yaml`, `places.csv` or `places.xlsx`, and optionally
`boundaries.geojson`, `holidays.yaml`, `households.csv` (the call-back register) and
`partners.csv` (partner units for 转办: bot.county.partners)
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
from typing import TYPE_CHECKING, Any, cast

import yaml

from bot.county.texts import shown, t
from bot.routing.datum import gcj02_to_wgs84
from bot.routing.normalize import normalize
from bot.routing.numbers import NumberRange, NumberSpecError, format_ranges, parse_ranges

if TYPE_CHECKING:
    from bot.county.partners import PartnerRow

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
    partners: tuple[PartnerRow, ...] = ()  # partners.csv: 转办 only, never routing


@dataclass(frozen=True)
class Problem:
    file: str
    row: int | None
    reason: str

    def __str__(self) -> str:
        if not self.row:
            return t("county.at_file", file=self.file, reason=self.reason)
        key = "county.at_feature" if self.file == BOUNDARIES_FILE else "county.at_row"
        return t(key, file=self.file, row=self.row, reason=self.reason)


_LISTED = 50


class CountyFileError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = [t("county.problems", n=len(problems))]
        lines += [f"  {p}" for p in problems[:_LISTED]]
        if len(problems) > _LISTED:
            lines.append("  " + t("county.more", n=len(problems) - _LISTED))
        super().__init__("\n".join(lines))


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
        return Problem(fname, None, t("county.yaml_bad", detail=shown(e)))
    mark = e.problem_mark
    # a scanner error ("while scanning a simple key") starts where the token did, which is the
    # typo; the problem mark is wherever the scanner gave up, often the next line
    if e.context_mark is not None and (e.context or "").startswith("while scanning"):
        mark = e.context_mark
    lines = text.splitlines()
    detail = f"{e.problem} ({e.context})" if e.context else str(e.problem)
    if 0 <= mark.line < len(lines) and lines[mark.line].strip():
        reason = t("county.yaml_bad_at", text=shown(lines[mark.line].strip()),
                   column=mark.column + 1, detail=shown(detail))
    else:
        reason = t("county.yaml_bad", detail=shown(detail))
    return Problem(fname, mark.line + 1, reason)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    # YAML may hold dates and other types the JSON column cannot store
    return json.loads(json.dumps(dict(d), ensure_ascii=False, default=str))


def _phone_problem(digits: str) -> str | None:
    """What is wrong with a phone (already stripped of spaces, '-', '+', brackets), if anything,
    in words that never repeat the number.

    Mobiles start with 1 and have 11 digits; landlines have 7-8, 10-12 with the area code
    (0...), and either may carry the country code 86 or 0086, hence up to 15."""
    if not digits:
        return None
    if not digits.isdigit():
        return t("county.phone_not_number")
    n = len(digits)
    if digits.startswith("1") and n != _MOBILE_LEN:
        key = "county.phone_mobile_short" if n < _MOBILE_LEN else "county.phone_mobile_long"
        return t(key, n=n, mobile=_MOBILE_LEN)
    if n < _PHONE_MIN:
        return t("county.phone_short", n=n, mobile=_MOBILE_LEN, least=_PHONE_MIN)
    if n > _PHONE_MAX:
        return t("county.phone_long", n=n, most=_PHONE_MAX)
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

    def code(self, obj: dict[str, Any], kind: str) -> str | None:
        what = t(f"county.what_{kind}")
        code = _text(obj.get("code"))
        if not code:
            self.err(obj, t("county.code_missing", what=what))
            return None
        if not _CODE.match(code):
            self.err(obj, t("county.code_bad", what=what, code=shown(code)))
            return None
        if code.upper() in self._codes:
            first = self._codes[code.upper()]
            self.err(obj, t("county.code_twice", what=what, code=shown(code), first=first))
            return None
        self._codes[code.upper()] = _line(obj)
        return code

    def staff(self, obj: object, grid: str, role: str) -> Staff | None:
        what = t(f"county.{role}")
        if not isinstance(obj, dict):
            self.err(obj, t("county.staff_not_mapping", grid=grid, what=what))
            return None
        name = _text(obj.get("name"))
        if not name:
            self.err(obj, t("county.staff_no_name", grid=grid, what=what))
            return None
        phone = _PHONE_STRIP.sub("", _text(obj.get("phone")))
        bad = _phone_problem(phone)
        if bad:  # the number itself is not repeated: it would land in logs and terminals
            self.err(obj, t("county.staff_bad_phone", grid=grid, what=what, name=shown(name),
                            bad=bad))
            return None
        if phone:
            # one phone is one person on import, so two names on it is a typo somewhere
            first = self._phones.setdefault(phone, (name, grid))
            if first[0] != name:
                self.err(obj, t("county.staff_phone_shared", grid=grid, what=what,
                                name=shown(name), other=shown(first[0]), other_grid=first[1]))
                return None
        return Staff(name=name, phone=phone)

    def grid(self, obj: object, community: str) -> None:
        if not isinstance(obj, dict):
            self.err(obj, t("county.grid_not_mapping", community=community))
            return
        code = self.code(obj, "grid")
        name = _text(obj.get("name"))
        if code and not name:
            self.err(obj, t("county.grid_no_name", code=code))
        if not code or not name:
            return
        workers_raw = obj.get("workers") or []
        if not isinstance(workers_raw, list):
            self.err(obj, t("county.grid_not_list", code=code, field=t("county.field_workers")))
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
            self.err(obj, t("county.grid_not_list", code=code, field=t("county.field_micro_grids")))
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
            self.err(obj, t("county.community_not_mapping"))
            return
        code = self.code(obj, "community")
        name = _text(obj.get("name"))
        if code and not name:
            self.err(obj, t("county.community_no_name", code=code))
        if not code or not name:
            return
        extra = _jsonable({k: v for k, v in obj.items() if k not in _COMMUNITY_KEYS})
        self.communities.append(CommunityData(code, name, extra))
        grids = obj.get("grids") or []
        if not isinstance(grids, list):
            self.err(obj, t("county.community_not_list", code=code))
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
        problems.append(Problem(GRIDS_FILE, None, t("county.top_not_mapping")))
        return "", g
    name = _text(doc.get("name"))
    if not name:
        g.err(doc, t("county.county_no_name"))
    communities = doc.get("communities")
    if not isinstance(communities, list) or not communities:
        g.err(doc, t("county.no_communities"))
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
            return t("county.unknown_grid", grid=shown(grid))
        self.skipped[fname] = self.skipped.get(fname, 0) + 1
        return None

    def summary(self) -> Problem | None:
        if not self.skipped:
            return None
        counts = [t(("county.n_feature" if f == BOUNDARIES_FILE else "county.n_row")
                    + "s" * (n != 1), n=n) for f, n in self.skipped.items()]
        return Problem(t("county.file_sep").join(self.skipped), None,
                       t("county.not_checked", counts=t("county.and").join(counts)))


def missing_columns(fname: str, missing: list[str]) -> Problem:
    """The header (row 1) lacks these columns, named as the clerk's language heads them."""
    cols = t("county.col_sep").join(t(f"county.col_{c}") for c in missing)
    return Problem(fname, 1, t("county.missing_columns", cols=cols))


def _range_text(r: NumberRange) -> str:
    core = str(r.lo) if r.lo == r.hi else f"{r.lo}-{r.hi}"
    return f"{core} {t(f'county.{r.parity}')}" if r.parity else core


_WHY = (("Ring Self-intersection", "county.why_self_intersection"),
        ("Self-intersection", "county.why_self_intersection"),
        ("Too few points", "county.why_too_few_points"),
        ("Hole lies outside shell", "county.why_hole_outside"))
_AT = re.compile(r"\[([-\d.eE]+) ([-\d.eE]+)\]")


def _invalid_polygon(grid: str, validity: str) -> str:
    """shapely's explain_validity ("Self-intersection[111.8 35.9]") in the clerk's words."""
    why = t(next((key for prefix, key in _WHY if validity.startswith(prefix)), "county.why_other"))
    if at := _AT.search(validity):
        why += t("county.near", where=f"{at.group(1)}, {at.group(2)}")
    return t("county.invalid_polygon", grid=grid, why=why, detail=validity)


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
        problems.append(Problem(fname, None, t("county.cannot_read", detail=shown(e))))
        return []
    if not rows:
        problems.append(Problem(fname, None, t("county.empty_file")))
        return []
    header = [_HEADERS.get(h.strip().lower(), h.strip().lower()) for h in rows[0]]
    while header and not header[-1]:
        header.pop()  # trailing commas after the header name no column
    col = {h: i for i, h in enumerate(header) if h in _HEADERS.values()}
    missing = [c for c in ("grid", "place") if c not in col]
    if missing:
        problems.append(missing_columns(fname, missing))
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
            problems.append(Problem(fname, n, t(
                "county.column_count", got=len(r) if len(r) < len(header) else used,
                want=len(header), header=shown(t("county.col_sep").join(rows[0][: len(header)])))))
            continue
        grid, name = get(r, "grid"), get(r, "place")
        bad = len(problems)
        if not grid:
            problems.append(Problem(fname, n, t("county.no_grid")))
        elif unknown := refs.problem(fname, grid):
            problems.append(Problem(fname, n, unknown))
        if not name:
            problems.append(Problem(fname, n, t("county.no_place")))
        elif len(normalize(name)) < MIN_KEY_LEN:
            problems.append(Problem(fname, n, t("county.name_short", name=shown(name),
                                                least=MIN_KEY_LEN)))
        aliases = []
        for a in _split_aliases(get(r, "aliases")):
            if len(normalize(a)) < MIN_KEY_LEN:
                problems.append(Problem(fname, n, t("county.alias_short", alias=shown(a),
                                                    least=MIN_KEY_LEN)))
            elif normalize(a) != normalize(name) and a not in aliases:
                aliases.append(a)
        try:
            ranges = parse_ranges(get(r, "numbers"))
        except NumberSpecError as e:
            problems.append(Problem(fname, n, t("county.numbers_bad", cell=shown(get(r, "numbers")),
                                                detail=shown(e))))
            ranges = ()
        if len(problems) > bad:
            continue
        key = (grid, normalize(name), format_ranges(ranges))
        if key in seen:
            problems.append(Problem(fname, n, t("county.duplicate", first=seen[key])))
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


def csv_cells(path: Path, headers: dict[str, str], required: tuple[str, ...],
              problems: list[Problem]) -> list[tuple[int, dict[str, str]]]:
    """An optional CSV's non-empty rows as (row number, {column: cell}), its header read
    through `headers` (Chinese or English names); [] with a problem when it can't be used."""
    fname = path.name
    try:
        rows = _csv_rows(path)
    except OSError as e:
        problems.append(Problem(fname, None, t("county.cannot_read", detail=shown(e))))
        return []
    if not rows:
        return []
    header = [headers.get(h.strip().lower(), h.strip().lower()) for h in rows[0]]
    col = {h: i for i, h in enumerate(header) if h in headers.values()}
    missing = [c for c in required if c not in col]
    if missing:
        problems.append(missing_columns(fname, missing))
        return []
    out: list[tuple[int, dict[str, str]]] = []
    for n, r in enumerate(rows[1:], start=2):
        cell = {k: (r[i].strip() if i < len(r) else "") for k, i in col.items()}
        if any(cell.values()):
            out.append((n, cell))
    return out


def _read_households(path: Path, refs: _GridRefs, problems: list[Problem]) -> list[HouseholdRow]:
    fname = path.name
    out: list[HouseholdRow] = []
    seen: dict[tuple[str, str, str], int] = {}
    for n, cell in csv_cells(path, _HOUSEHOLD_HEADERS, ("grid", "address", "phone"),
                             problems):
        bad = len(problems)
        grid, address = cell["grid"], cell["address"]
        phone = _PHONE_STRIP.sub("", cell["phone"])
        if not grid:
            problems.append(Problem(fname, n, t("county.no_grid")))
        elif unknown := refs.problem(fname, grid):
            problems.append(Problem(fname, n, unknown))
        if not address:
            problems.append(Problem(fname, n, t("county.no_address")))
        if not phone:
            problems.append(Problem(fname, n, t("county.no_phone")))
        elif why := _phone_problem(phone):
            # the number itself is not repeated: it would land in logs and terminals
            problems.append(Problem(fname, n, why))
        if len(problems) > bad:
            continue
        key = (grid, normalize(address), cell.get("name", ""))
        if key in seen:
            problems.append(Problem(fname, n, t("county.duplicate", first=seen[key])))
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
                        problems.append(Problem(fname, b.row, t(
                            "county.overlap", name=shown(b.name), clash=_range_text(clash),
                            grid=b.grid, other=_range_text(ra), other_grid=a.grid, row=a.row)))
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


def _open_ring(grid: str, kind: str, coords: Any) -> str | None:
    """The first ring whose last position does not repeat its first (RFC 7946 3.1.6).

    Checked on the raw coordinates: shapely closes an open ring silently, which would turn a
    ring whose last point was lost in copying into a different polygon."""
    polygons = coords if kind == "MultiPolygon" else [coords]
    for pi, rings in enumerate(polygons, start=1):
        for ri, ring in enumerate(rings, start=1):
            if len(ring) < 4 or list(ring[0]) != list(ring[-1]):
                where = t("county.ring_outer") if ri == 1 else t("county.ring_hole", n=ri - 1)
                if kind == "MultiPolygon":
                    where = t("county.ring_of_polygon", where=where, polygon=pi)
                if len(ring) < 4:
                    return t("county.ring_short", grid=grid, where=where, n=len(ring))
                return t("county.ring_open", grid=grid, where=where, last=list(ring[-1]),
                         first=list(ring[0]))
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
        err(t("county.not_feature"))
        return None
    props = feat.get("properties") or {}
    geom = feat.get("geometry") or {}
    grid = _text(props.get("grid"))
    datum = _text(props.get("datum") or "wgs84").lower().replace("-", "")
    if not grid:
        err(t("county.no_grid_prop"))
        return None
    if unknown := refs.problem(BOUNDARIES_FILE, grid):
        err(unknown)
        return None
    if grid in seen:
        err(t("county.boundary_twice", grid=grid, first=seen[grid]))
        return None
    if datum not in ("wgs84", "gcj02"):
        err(t("county.datum_bad", datum=shown(props.get("datum"))))
        return None
    if geom.get("type") not in ("Polygon", "MultiPolygon"):
        err(t("county.geom_type", grid=grid, kind=shown(geom.get("type"))))
        return None
    try:
        pts = _points(geom["coordinates"])
        if not pts or any(len(p) < 2 for p in pts):
            raise ValueError("empty or short positions")
        if all(15 <= p[0] <= 56 and 70 <= p[1] <= 140 for p in pts):
            err(t("county.lat_lon", grid=grid))
            return None
        if any(not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90) for p in pts):
            err(t("county.out_of_range", grid=grid))
            return None
        if open_ring := _open_ring(grid, geom["type"], geom["coordinates"]):
            err(open_ring)
            return None
        coords = geom["coordinates"]
        if datum == "gcj02":
            coords = _map_coords(coords, _gcj_to_wgs)
        else:
            coords = _map_coords(coords, lambda p: [float(p[0]), float(p[1])])
        wgs = {"type": geom["type"], "coordinates": coords}
        s = shape(wgs)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        err(t("county.malformed", grid=grid, detail=e))
        return None
    if s.is_empty or not s.is_valid:
        err(_invalid_polygon(grid, explain_validity(s)))
        return None
    seen[grid] = i
    return BoundaryData(grid, wgs, datum)


def _read_boundaries(path: Path, refs: _GridRefs, problems: list[Problem]) -> list[BoundaryData]:
    import shapely
    from shapely.geometry import shape

    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        # no row: the file's rows are its features, and the reason names the line
        problems.append(Problem(BOUNDARIES_FILE, None, t(
            "county.bad_json", line=e.lineno, column=e.colno, detail=e)))
        return []
    except UnicodeDecodeError as e:
        problems.append(Problem(BOUNDARIES_FILE, None, t("county.bad_encoding", detail=e)))
        return []
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        problems.append(Problem(BOUNDARIES_FILE, None, t("county.not_collection")))
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
            problems.append(Problem(BOUNDARIES_FILE, i, t(
                "county.same_polygon", grid=b.grid, other=other, first=j)))
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
        raise ValueError(t("county.date_parts", text=shown(text)))
    try:
        first, last = date.fromisoformat(parts[0]), date.fromisoformat(parts[-1])
    except ValueError:
        raise ValueError(t("county.date_bad", text=shown(text))) from None
    if last < first:
        raise ValueError(t("county.date_backwards", text=shown(text)))
    if (last - first).days >= _LONGEST_SPAN:
        raise ValueError(t("county.date_too_long", text=shown(text), days=_LONGEST_SPAN))
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
        err(root, t("county.holidays_not_mapping"))
        return ()
    days: dict[date, bool] = {}
    for key, value in root.value:
        if key.value not in ("off", "work"):
            err(key, t("county.holidays_key", field=shown(key.value)))
            continue
        workday = key.value == "work"
        if isinstance(value, yaml.ScalarNode) and value.value in ("", "~", "null"):
            continue
        if not isinstance(value, yaml.SequenceNode):
            err(value, t("county.holidays_not_list", field=t(f"county.field_{key.value}")))
            continue
        for item in value.value:
            if not isinstance(item, yaml.ScalarNode):
                err(item, t("county.holidays_not_date"))
                continue
            try:
                span = _date_span(item.value)
            except ValueError as e:
                err(item, str(e))
                continue
            for day in span:
                if days.get(day, workday) != workday:
                    err(item, t("county.date_both", day=day))
                days[day] = workday
    return tuple(sorted(days.items()))


# --- the directory ------------------------------------------------------------------------


def load_county_dir(directory: Path | str) -> CountyData:
    """Parse and validate a county directory; raise CountyFileError listing every problem."""
    d = Path(directory)
    problems: list[Problem] = []
    if not (d / GRIDS_FILE).is_file():
        raise CountyFileError([Problem(GRIDS_FILE, None, t("county.not_found", dir=d))])
    name, g = _read_grids(d / GRIDS_FILE, problems)
    refs = _GridRefs({x.code for x in g.grids}, trusted=not problems)
    csv_p, xlsx_p = d / PLACES_CSV, d / PLACES_XLSX
    places: list[PlaceRow] = []
    if csv_p.is_file() and xlsx_p.is_file():
        problems.append(Problem(PLACES_CSV, None, t("county.both_places")))
    elif csv_p.is_file() or xlsx_p.is_file():
        places = _read_places(csv_p if csv_p.is_file() else xlsx_p, refs, problems)
    else:
        problems.append(Problem(PLACES_CSV, None, t("county.no_places")))
    areas_clean = not problems  # partners.csv names grids and places
    boundaries: list[BoundaryData] = []
    if (d / BOUNDARIES_FILE).is_file():
        boundaries = _read_boundaries(d / BOUNDARIES_FILE, refs, problems)
    households: list[HouseholdRow] = []
    if (d / HOUSEHOLDS_CSV).is_file():
        # its unchecked grid codes stay out of the summary line, which names what to fix
        # for routing; the register is checked in full once grids.yaml is
        households = _read_households(d / HOUSEHOLDS_CSV, _GridRefs(refs.codes, refs.trusted),
                                      problems)
    partners: list[PartnerRow] = []
    from bot.county.partners import PARTNERS_CSV, read_partners

    if (d / PARTNERS_CSV).is_file():
        # places are checked only when they and grids.yaml are clean, like the register
        partners = read_partners(d / PARTNERS_CSV, tuple(g.grids), tuple(places),
                                 areas_clean, problems)
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
        partners=tuple(partners),
    )
