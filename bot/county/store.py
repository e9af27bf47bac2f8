"""County data in the database: an idempotent import, and loading it back for the Router.

Import is an upsert keyed on codes (communities, grids), on (grid, name, numbers) for places,
and on the grid for boundaries. Rows missing from the files are set inactive, never deleted,
so tickets keep their history. Workers and leaders become `Person` rows (matched by phone,
else by name among the grid's staff) with a `StaffAssignment`. Only assignments the import
itself made (`StaffAssignment.source == "import"`) are deactivated when they leave the files,
so staff added through invites are left alone.

The county version moves only when an import changed something: every running instance
rebuilds its router when it moves, so a re-import of the same files must leave it alone.

`import_county` flushes but does not commit: the caller owns the transaction, which keeps
an import all-or-nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.county.files import (
    BoundaryData,
    CommunityData,
    CountyData,
    GridData,
    HouseholdRow,
    PlaceRow,
    Staff,
)
from bot.county.texts import ZH, t
from bot.routing.numbers import format_ranges, parse_ranges
from models.callbacks import CallbackHousehold
from models.county import Boundary, CalendarDay, Community, CountyMeta, Grid, Place
from models.people import Person, StaffAssignment

STAFF_ROLES = ("worker", "leader")
META_ID = 1


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    removed: int = 0  # only calendar days: nothing refers to them

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deactivated or self.removed)

    def __str__(self) -> str:
        text = t("county.counts", created=self.created, updated=self.updated,
                 deactivated=self.deactivated, unchanged=self.unchanged)
        return text + (t("county.counts_removed", removed=self.removed) if self.removed else "")


@dataclass
class ImportReport:
    county: str
    version: int
    source: str = ""
    tables: dict[str, Counts] = field(default_factory=dict)
    changed: bool = True  # False: nothing changed, the version was left as it was

    def counts(self, table: str) -> Counts:
        return self.tables.setdefault(table, Counts())

    def summary(self) -> str:
        kept = "" if self.changed else t("county.report_kept")
        lines = [t("county.report_head", county=self.county, version=self.version) + kept]
        lines += [t("county.report_line", table=_table_label(name), counts=c)
                  for name, c in self.tables.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _table_label(name: str) -> str:
    key = f"county.tbl_{name}"
    return t(key) if key in ZH else name  # a table added later shows its own name


def _assign(obj: Any, values: dict[str, Any]) -> bool:
    """Set attributes; True when anything changed."""
    changed = False
    for k, v in values.items():
        if getattr(obj, k) != v:
            setattr(obj, k, v)
            changed = True
    return changed


def _tally(c: Counts, created: bool, changed: bool) -> None:
    if created:
        c.created += 1
    elif changed:
        c.updated += 1
    else:
        c.unchanged += 1


def _public_extra(extra: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (extra or {}).items() if not k.startswith("_")}


async def _communities(
    session: AsyncSession, data: tuple[CommunityData, ...], c: Counts
) -> dict[str, Community]:
    existing = {x.code: x for x in (await session.scalars(select(Community))).all()}
    for d in data:
        row = existing.get(d.code)
        created = row is None
        if row is None:
            row = Community(code=d.code)
            session.add(row)
            existing[d.code] = row
        changed = _assign(row, {"name": d.name, "extra": dict(d.extra), "active": True})
        _tally(c, created, changed)
    _deactivate_missing(existing, {d.code for d in data}, c)
    await session.flush()
    return existing


def _deactivate_missing(existing: dict[str, Any], wanted: set[str], c: Counts) -> None:
    """Rows gone from the files stay (tickets point at them) but stop being used."""
    for code, row in existing.items():
        if code not in wanted and row.active:
            row.active = False
            c.deactivated += 1


async def _grids(
    session: AsyncSession, data: tuple[GridData, ...], comms: dict[str, Community], c: Counts
) -> dict[str, Grid]:
    existing = {x.code: x for x in (await session.scalars(select(Grid))).all()}
    for d in data:
        row = existing.get(d.code)
        created = row is None
        if row is None:
            row = Grid(code=d.code, extra={})
            session.add(row)
            existing[d.code] = row
        extra = dict(d.extra)
        changed = _assign(row, {
            "name": d.name,
            "community_id": comms[d.community].id,
            "micro_grids": list(d.micro_grids),
            "extra": extra,
            "active": True,
        })  # fmt: skip
        _tally(c, created, changed)
    _deactivate_missing(existing, {d.code for d in data}, c)
    await session.flush()
    return existing


async def _places(
    session: AsyncSession, data: tuple[PlaceRow, ...], grids: dict[str, Grid], c: Counts
) -> None:
    existing: dict[tuple[int, str, str], Place] = {}
    extras: list[Place] = []
    for p in (await session.scalars(select(Place).order_by(Place.id))).all():
        key = (p.grid_id, p.name, p.numbers)
        if key in existing:
            extras.append(p)  # only possible if rows were added by hand
        else:
            existing[key] = p
    seen: set[int] = set()
    for d in data:
        grid_id = grids[d.grid].id
        key = (grid_id, d.name, format_ranges(d.ranges))
        row = existing.get(key)
        created = row is None
        if row is None:
            row = Place(grid_id=grid_id, name=d.name, numbers=key[2])
            session.add(row)
            existing[key] = row
        changed = _assign(row, {"aliases": list(d.aliases), "kind": d.kind, "active": True})
        _tally(c, created, changed)
        seen.add(id(row))
    for row in [*existing.values(), *extras]:
        if id(row) not in seen and row.active:
            row.active = False
            c.deactivated += 1


async def _boundaries(
    session: AsyncSession, data: tuple[BoundaryData, ...], grids: dict[str, Grid], c: Counts
) -> None:
    existing = {b.grid_id: b for b in (await session.scalars(select(Boundary))).all()}
    wanted: set[int] = set()
    for d in data:
        grid_id = grids[d.grid].id
        wanted.add(grid_id)
        row = existing.get(grid_id)
        created = row is None
        if row is None:
            row = Boundary(grid_id=grid_id)
            session.add(row)
            existing[grid_id] = row
        changed = _assign(
            row, {"geometry": d.geometry, "source_datum": d.source_datum, "active": True}
        )
        _tally(c, created, changed)
    for grid_id, row in existing.items():
        if grid_id not in wanted and row.active:
            row.active = False
            c.deactivated += 1


async def _staff(
    session: AsyncSession,
    data: tuple[GridData, ...],
    grids: dict[str, Grid],
    people_c: Counts,
    assign_c: Counts,
) -> None:
    people = {p.id: p for p in (await session.scalars(select(Person).order_by(Person.id))).all()}
    by_phone: dict[str, Person] = {}
    for p in people.values():
        if p.phone and (p.phone not in by_phone or (p.active and not by_phone[p.phone].active)):
            by_phone[p.phone] = p
    assigns = (
        await session.scalars(select(StaffAssignment).where(StaffAssignment.role.in_(STAFF_ROLES)))
    ).all()
    by_key = {(a.person_id, a.role, a.grid_id): a for a in assigns if a.community_id is None}
    names_in_grid: dict[tuple[int | None, str], Person] = {}
    for a in assigns:
        person = people.get(a.person_id)
        if person is not None:
            names_in_grid.setdefault((a.grid_id, person.name), person)

    previously = {(a.person_id, a.role, a.grid_id) for a in assigns
                  if a.source == "import" and a.grid_id is not None}

    touched_people: set[int] = set()
    now: set[tuple[int, str, int]] = set()
    for d in data:
        grid = grids[d.code]
        members: list[tuple[Staff, str]] = [(w, "worker") for w in d.workers]
        if d.leader is not None:
            members.append((d.leader, "leader"))
        for staff, role in members:
            person = by_phone.get(staff.phone) if staff.phone else None
            if person is None:
                person = names_in_grid.get((grid.id, staff.name))
                if person is not None and staff.phone and person.phone not in ("", staff.phone):
                    person = None  # same name, different phone: another person
            created = person is None
            if person is None:
                person = Person(name=staff.name, phone=staff.phone, active=True)
                session.add(person)
                await session.flush()
                people[person.id] = person
            if staff.phone:
                by_phone[staff.phone] = person
            names_in_grid[(grid.id, staff.name)] = person
            if person.id not in touched_people:
                changed = _assign(person, {"name": staff.name, "active": True})
                if staff.phone and person.phone != staff.phone:
                    person.phone = staff.phone
                    changed = True
                _tally(people_c, created, changed)
                touched_people.add(person.id)
            key = (person.id, role, grid.id)
            found = by_key.get(key)
            a_created = found is None
            if found is None:
                found = StaffAssignment(person_id=person.id, role=role, grid_id=grid.id,
                                        source="import")
                session.add(found)
                by_key[key] = found
            _tally(assign_c, a_created, _assign(found, {"active": True, "source": "import"}))
            now.add(key)

    gone_people: set[int] = set()
    for key in previously - now:
        gone = by_key.get(key)
        if gone is not None and gone.active:
            gone.active = False
            assign_c.deactivated += 1
            gone_people.add(key[0])
    await session.flush()
    for pid in gone_people - touched_people:
        left = await session.scalar(
            select(StaffAssignment.id).where(
                StaffAssignment.person_id == pid, StaffAssignment.active.is_(True)
            )
        )
        person = people.get(pid)
        if left is None and person is not None and person.active:
            person.active = False
            people_c.deactivated += 1


async def _calendar(session: AsyncSession, days: tuple[tuple[date, bool], ...],
                    c: Counts) -> None:
    """holidays.yaml is the whole truth about the county's own days: rows not in it go."""
    existing = {d.day: d for d in (await session.scalars(select(CalendarDay))).all()}
    wanted = dict(days)
    for day, row in existing.items():
        if day not in wanted:
            await session.delete(row)
            c.removed += 1
    for day, workday in wanted.items():
        have = existing.get(day)
        if have is None:
            session.add(CalendarDay(day=day, workday=workday))
            c.created += 1
        elif have.workday != workday:
            have.workday = workday
            c.updated += 1
        else:
            c.unchanged += 1


async def _households(session: AsyncSession, data: tuple[HouseholdRow, ...],
                      grids: dict[str, Grid], c: Counts) -> None:
    """The call-back register, keyed on the phone (one phone, one household). A resident
    drawn from a ticket earlier becomes the register's household when the phones match."""
    existing = {h.key: h for h in (await session.scalars(select(CallbackHousehold))).all()}
    seen: set[str] = set()
    for d in data:
        key = f"tel:{d.phone}"
        row = existing.get(key)
        created = row is None
        if row is None:
            row = CallbackHousehold(key=key)
            session.add(row)
            existing[key] = row
        changed = _assign(row, {"grid_id": grids[d.grid].id, "address": d.address,
                                "name": d.name, "phone": d.phone, "source": "register",
                                "active": True})
        _tally(c, created, changed)
        seen.add(key)
    for key, row in existing.items():
        if key not in seen and row.source == "register" and row.active:
            row.active = False
            c.deactivated += 1


async def load_calendar(session: AsyncSession) -> dict[date, bool]:
    return {d.day: d.workday for d in (await session.scalars(select(CalendarDay))).all()}


async def import_county(session: AsyncSession, data: CountyData) -> ImportReport:
    """Upsert `data` into the database; bump the county version if anything changed. The
    caller commits."""
    meta = await session.get(CountyMeta, META_ID)
    first = meta is None
    if meta is None:
        meta = CountyMeta(id=META_ID, name=data.name, version=0, source="")
        session.add(meta)
    report = ImportReport(county=data.name, version=0, source=data.source)
    comms = await _communities(session, data.communities, report.counts("communities"))
    grids = await _grids(session, data.grids, comms, report.counts("grids"))
    await _places(session, data.places, grids, report.counts("places"))
    await _boundaries(session, data.boundaries, grids, report.counts("boundaries"))
    await _staff(session, data.grids, grids, report.counts("people"), report.counts("assignments"))
    await _calendar(session, data.calendar, report.counts("calendar"))
    await _households(session, data.households, grids, report.counts("households"))
    from bot.county.partners import import_partners  # it builds on this module's helpers

    await import_partners(session, data.partners, grids, report.counts)
    report.changed = (first or meta.name != data.name
                      or any(c.changed for c in report.tables.values()))
    meta.name = data.name
    meta.source = data.source  # where it came from; not a change of the county itself
    if report.changed:
        meta.version = (meta.version or 0) + 1
    await session.flush()
    report.version = meta.version
    return report


async def county_version(session: AsyncSession) -> int:
    meta = await session.get(CountyMeta, META_ID)
    return meta.version if meta is not None else 0


async def load_county(session: AsyncSession) -> CountyData:
    """The active county back out of the database (for `Router.build` at service start)."""
    meta = await session.get(CountyMeta, META_ID)
    comms = (
        await session.scalars(
            select(Community).where(Community.active.is_(True)).order_by(Community.id)
        )
    ).all()
    comm_code = {c.id: c.code for c in comms}
    grids = [
        g
        for g in (
            await session.scalars(select(Grid).where(Grid.active.is_(True)).order_by(Grid.id))
        ).all()
        if g.community_id in comm_code
    ]
    grid_code = {g.id: g.code for g in grids}

    people = {p.id: p for p in (await session.scalars(select(Person))).all()}
    assigns = (
        await session.scalars(
            select(StaffAssignment)
            .where(StaffAssignment.active.is_(True), StaffAssignment.role.in_(STAFF_ROLES))
            .order_by(StaffAssignment.id)
        )
    ).all()
    workers: dict[int, list[Staff]] = {}
    leaders: dict[int, Staff] = {}
    for a in assigns:
        p = people.get(a.person_id)
        if p is None or not p.active or a.grid_id not in grid_code:
            continue
        s = Staff(p.name, p.phone or "")
        if a.role == "leader":
            leaders.setdefault(a.grid_id, s)
        elif s not in workers.setdefault(a.grid_id, []):
            workers[a.grid_id].append(s)

    places = (
        await session.scalars(select(Place).where(Place.active.is_(True)).order_by(Place.id))
    ).all()
    bounds = (
        await session.scalars(
            select(Boundary).where(Boundary.active.is_(True)).order_by(Boundary.id)
        )
    ).all()
    return CountyData(
        name=meta.name if meta else "",
        communities=tuple(
            CommunityData(c.code, c.name, _public_extra(c.extra)) for c in comms
        ),
        grids=tuple(
            GridData(
                code=g.code,
                name=g.name,
                community=comm_code[g.community_id],
                workers=tuple(workers.get(g.id, [])),
                leader=leaders.get(g.id),
                micro_grids=tuple(g.micro_grids or ()),
                extra=_public_extra(g.extra),
            )
            for g in grids
        ),
        places=tuple(
            PlaceRow(
                grid=grid_code[p.grid_id],
                name=p.name,
                aliases=tuple(p.aliases or ()),
                kind=p.kind or "",
                ranges=parse_ranges(p.numbers or ""),
            )
            for p in places
            if p.grid_id in grid_code
        ),
        boundaries=tuple(
            BoundaryData(grid_code[b.grid_id], b.geometry, b.source_datum)
            for b in bounds
            if b.grid_id in grid_code
        ),
        source=meta.source if meta else "",
    )
