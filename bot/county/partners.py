"""partners.csv: the partner units (协同单位) a ticket can be handed to (转办), where each
serves, and who acts for it. Read into dataclasses and validated like the rest of the county
directory (bot.county.files): every problem names its row and is reported at once.

Columns (any order; Chinese headers too): code 编号, name 名称/单位, kind 类型 (物业公司,
业委会, 部门), serves 服务范围 (grid codes, 「…网格」, place names from places.csv, or 全县,
separated by |), aliases 简称 (|), contact 联系人, phone 电话.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.county.store import Counts, _assign, _deactivate_missing, _tally
from bot.county.texts import shown, t
from bot.routing.normalize import normalize
from models.county import Grid
from models.partners import PARTNER_KINDS, Partner, PartnerArea, PartnerContact
from models.people import Person

if TYPE_CHECKING:
    from bot.county.files import GridData, PlaceRow, Problem

PARTNERS_CSV = "partners.csv"
WHOLE_COUNTY = ("全县", "*")

_HEADERS = {
    "code": "code", "编号": "code", "单位编号": "code", "代码": "code",
    "name": "name", "名称": "name", "单位": "name", "单位名称": "name",
    "kind": "kind", "类型": "kind", "类别": "kind",
    "serves": "serves", "服务范围": "serves", "范围": "serves", "网格或地点": "serves",
    "aliases": "aliases", "简称": "aliases", "别名": "aliases",
    "contact": "contact", "联系人": "contact",
    "phone": "phone", "电话": "phone", "手机": "phone", "联系电话": "phone",
}  # fmt: skip
_KINDS = {
    "property": "property", "物业": "property", "物业公司": "property",
    "committee": "committee", "业委会": "committee", "业主委员会": "committee",
    "department": "department", "部门": "department", "职能部门": "department",
    "单位": "department",
}  # fmt: skip
_SPLIT = re.compile(r"[|｜、;；]")


@dataclass(frozen=True)
class PartnerRow:
    code: str
    name: str
    kind: str  # models.partners.PARTNER_KINDS
    grids: tuple[str, ...] = ()  # grid codes
    places: tuple[str, ...] = ()  # place names as places.csv spells them
    county: bool = False  # serves the whole county
    aliases: tuple[str, ...] = ()
    contact: str = ""
    phone: str = ""  # digits only
    row: int = 0


def _items(cell: str) -> list[str]:
    return [x.strip() for x in _SPLIT.split(cell) if x.strip()]


class _Serves:
    """What a `serves` item names: a grid (code or 「name网格」), a place, or the county."""

    def __init__(self, grids: tuple[GridData, ...], places: Iterable[PlaceRow]) -> None:
        self.codes = {g.code.upper(): g.code for g in grids}
        self.grid_names = {normalize(g.name + "网格"): g.code for g in grids}
        self.places: dict[str, str] = {}
        for p in places:
            for spelled in (p.name, *p.aliases):
                self.places.setdefault(normalize(spelled), p.name)

    def grid(self, item: str) -> str | None:
        return self.codes.get(item.upper()) or self.grid_names.get(normalize(item))

    def place(self, item: str) -> str | None:
        return self.places.get(normalize(item))


def read_partners(path: Path, grids: tuple[GridData, ...], places: tuple[PlaceRow, ...],
                  trusted: bool, problems: list[Problem]) -> list[PartnerRow]:
    """`trusted`: grids.yaml and places parsed cleanly, so an unknown area is a real typo
    (otherwise it is left unreported: the file it names already has its own problem)."""
    from bot.county.files import (
        _CODE,
        _PHONE_STRIP,
        Problem,
        _phone_problem,
        csv_cells,
    )

    fname = path.name
    serves = _Serves(grids, places)
    out: list[PartnerRow] = []
    codes: dict[str, int] = {}
    names: dict[str, int] = {}
    for n, cell in csv_cells(path, _HEADERS, ("code", "name", "kind", "serves"), problems):
        bad = len(problems)

        def err(reason: str, n: int = n) -> None:
            problems.append(Problem(fname, n, reason))

        code, name = cell["code"], cell["name"]
        kind = _KINDS.get(cell["kind"].lower())
        if not code:
            err(t("county.partner_no_code"))
        elif not _CODE.match(code):
            err(t("county.partner_code_bad", code=shown(code)))
        elif code.upper() in codes:
            err(t("county.partner_code_twice", code=shown(code), first=codes[code.upper()]))
        else:  # taken even when the row has other problems: a repeat is a problem of its own
            codes[code.upper()] = n
        if not name:
            err(t("county.partner_no_name"))
        elif normalize(name) in names:
            err(t("county.partner_name_twice", name=shown(name), first=names[normalize(name)]))
        else:
            names[normalize(name)] = n
        if kind is None:
            err(t("county.partner_kind_bad", kind=shown(cell["kind"]),
                  kinds=", ".join(PARTNER_KINDS)))
        grid_codes: list[str] = []
        place_names: list[str] = []
        county = False
        areas = _items(cell["serves"])
        if not areas:
            err(t("county.partner_serves_nothing"))
        for item in areas:
            if item in WHOLE_COUNTY:
                county = True
            elif (g := serves.grid(item)) is not None:
                if g not in grid_codes:
                    grid_codes.append(g)
            elif (p := serves.place(item)) is not None:
                if p not in place_names:
                    place_names.append(p)
            elif trusted:
                err(t("county.partner_serves_unknown", item=shown(item)))
        phone = _PHONE_STRIP.sub("", cell.get("phone", ""))
        contact = cell.get("contact", "")
        if phone and not contact:
            err(t("county.partner_phone_no_contact"))
        elif why := _phone_problem(phone):
            err(why)  # the number is not repeated: it would land in logs
        aliases = [a for a in _items(cell.get("aliases", "")) if normalize(a) != normalize(name)]
        if len(problems) > bad or kind is None:
            continue
        out.append(PartnerRow(code, name, kind, tuple(grid_codes), tuple(place_names), county,
                              tuple(aliases), contact, phone, n))
    return out


async def import_partners(session: AsyncSession, data: tuple[PartnerRow, ...],
                          grids: dict[str, Grid], counts: Callable[[str], Counts]) -> None:
    """Upsert partners by code, their areas and their listed contacts; what left the file is
    deactivated, never deleted (tickets point at partners). Contacts added by invite stay."""
    existing = {p.code: p for p in (await session.scalars(select(Partner))).all()}
    c = counts("partners")
    for d in data:
        row = existing.get(d.code)
        created = row is None
        if row is None:
            row = Partner(code=d.code)
            session.add(row)
            existing[d.code] = row
        changed = _assign(row, {"name": d.name, "kind": d.kind, "aliases": list(d.aliases),
                                "active": True})
        _tally(c, created, changed)
    _deactivate_missing(existing, {d.code for d in data}, c)
    await session.flush()
    await _areas(session, data, existing, grids, counts("partner areas"))
    await _contacts(session, data, existing, counts("partner contacts"))


async def _areas(session: AsyncSession, data: tuple[PartnerRow, ...],
                 partners: dict[str, Partner], grids: dict[str, Grid], c: Counts) -> None:
    existing = {(a.partner_id, a.grid_id, a.place): a
                for a in (await session.scalars(select(PartnerArea))).all()}
    wanted: set[tuple[int, int | None, str]] = set()
    for d in data:
        pid = partners[d.code].id
        keys: list[tuple[int, int | None, str]] = [(pid, grids[g].id, "") for g in d.grids]
        keys += [(pid, None, p) for p in d.places]
        if d.county:
            keys.append((pid, None, ""))
        for key in keys:
            wanted.add(key)
            row = existing.get(key)
            created = row is None
            if row is None:
                row = PartnerArea(partner_id=key[0], grid_id=key[1], place=key[2])
                session.add(row)
                existing[key] = row
            _tally(c, created, _assign(row, {"active": True}))
    for key, row in existing.items():
        if key not in wanted and row.active:
            row.active = False
            c.deactivated += 1


async def _contacts(session: AsyncSession, data: tuple[PartnerRow, ...],
                    partners: dict[str, Partner], c: Counts) -> None:
    people = list((await session.scalars(select(Person).order_by(Person.id))).all())
    by_phone: dict[str, Person] = {}
    for p in people:
        if p.phone and (p.phone not in by_phone or (p.active and not by_phone[p.phone].active)):
            by_phone[p.phone] = p
    by_id = {p.id: p for p in people}
    rows = (await session.scalars(select(PartnerContact))).all()
    existing = {(r.partner_id, r.person_id): r for r in rows}
    wanted: set[tuple[int, int]] = set()
    for d in data:
        if not d.contact:
            continue
        pid = partners[d.code].id
        person = by_phone.get(d.phone) if d.phone else None
        if person is None:  # the same name among this partner's contacts: that person
            person = next((by_id[r.person_id] for r in rows if r.partner_id == pid
                           and r.person_id in by_id and by_id[r.person_id].name == d.contact
                           and (not d.phone or not by_id[r.person_id].phone)), None)
        if person is None:
            person = Person(name=d.contact, phone=d.phone, active=True)
            session.add(person)
            await session.flush()
            by_id[person.id] = person
        else:
            _assign(person, {"name": d.contact, "active": True})
            if d.phone and person.phone != d.phone:
                person.phone = d.phone
        if d.phone:
            by_phone[d.phone] = person
        key = (pid, person.id)
        wanted.add(key)
        row = existing.get(key)
        created = row is None
        if row is None:
            row = PartnerContact(partner_id=pid, person_id=person.id, source="import")
            session.add(row)
            existing[key] = row
        _tally(c, created, _assign(row, {"active": True, "source": "import"}))
    for key, row in existing.items():
        if key not in wanted and row.source == "import" and row.active:
            row.active = False
            c.deactivated += 1
    await session.flush()
