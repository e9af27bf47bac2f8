"""Names for the groups a report shows: grids, communities, workers (small tables, read once)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from models.county import Community, Grid
from models.enums import StaffRole
from models.partners import Partner
from models.people import Person, StaffAssignment

NO_GRID = "（未定网格）"
NO_COMMUNITY = "（未定社区）"
NO_WORKER = "（未指派）"
PARTNER_KIND_LABELS = {"property": "物业公司", "committee": "业委会", "department": "部门"}


@dataclass(slots=True)
class Names:
    communities: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> code, name
    grids: dict[int, tuple[str, str, int]] = field(default_factory=dict)  # code, name, comm.
    people: dict[int, str] = field(default_factory=dict)
    worker_grids: dict[int, list[int]] = field(default_factory=dict)  # person -> grid ids
    partners: dict[int, tuple[str, str, str]] = field(default_factory=dict)  # code, name, kind

    def community(self, cid: int | None) -> tuple[str, str]:
        return self.communities.get(cid, ("", NO_COMMUNITY)) if cid is not None \
            else ("", NO_COMMUNITY)

    def grid(self, gid: int | None) -> tuple[str, str, str]:
        """Code, name, and the name of its community."""
        if gid is None or gid not in self.grids:
            return "", NO_GRID, ""
        code, name, cid = self.grids[gid]
        return code, name, self.community(cid)[1]

    def worker(self, pid: int | None) -> tuple[str, str]:
        """Name and the grids they work in."""
        if pid is None:
            return NO_WORKER, ""
        codes = (self.grids[g][0] for g in self.worker_grids.get(pid, []) if g in self.grids)
        return self.people.get(pid, f"（人员 {pid}）"), "、".join(codes)

    def partner(self, pid: int | None) -> tuple[str, str, str]:
        """Code, name and kind (物业公司, 业委会, 部门) of a partner unit."""
        code, name, kind = self.partners.get(pid or 0, ("", f"（单位 {pid}）", ""))
        return code, name, PARTNER_KIND_LABELS.get(kind, kind)

    def order(self, by: str, key: int) -> tuple[int, str]:
        """Where a group sorts: the county files' order (import order, so ids), by name last."""
        if by == "worker":
            return min(self.worker_grids.get(key, []), default=1 << 62), self.people.get(key, "")
        return key, ""

    def community_id(self, code: str) -> int | None:
        for cid, (c, _name) in self.communities.items():
            if c == code:
                return cid
        return None


def load_names(conn: Connection) -> Names:
    names = Names()
    for cid, code, name in conn.execute(select(Community.id, Community.code, Community.name)):
        names.communities[cid] = (code, name)
    for gid, code, name, cid in conn.execute(
            select(Grid.id, Grid.code, Grid.name, Grid.community_id)):
        names.grids[gid] = (code, name, cid)
    for pid, name in conn.execute(select(Person.id, Person.name)):
        names.people[pid] = name
    for worker, grid_id in conn.execute(
            select(StaffAssignment.person_id, StaffAssignment.grid_id)
            .where(StaffAssignment.role == StaffRole.WORKER.value,
                   StaffAssignment.active.is_(True), StaffAssignment.grid_id.is_not(None))
            .order_by(StaffAssignment.grid_id)):
        if grid_id is not None:
            names.worker_grids.setdefault(worker, []).append(grid_id)
    for pid, code, name, kind in conn.execute(
            select(Partner.id, Partner.code, Partner.name, Partner.kind)):
        names.partners[pid] = (code, name, kind)
    return names
