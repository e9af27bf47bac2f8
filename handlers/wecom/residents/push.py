"""`wecom grids push`: the plan carried out against WeCom, every created id stored at once.

Calls: report/grid/list (the root), add, update, delete
(https://developer.work.weixin.qq.com/document/path/97139, .../94479, .../97138). A grid is
emptied of members before it is deleted: WeCom deletes only grids without members.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.wecom.api import WeComClient
from handlers.wecom.residents.plan import Key, Node, Op, Pushed, cut
from handlers.wecom.residents.retry import PATIENT, Backoff, retrying
from models.base import utcnow
from models.county import Community, Grid
from models.enums import StaffRole
from models.people import Identity, Person, StaffAssignment
from models.wecom import WeComGrid

GRID_LIST = "/cgi-bin/report/grid/list"
GRID_ADD = "/cgi-bin/report/grid/add"
GRID_UPDATE = "/cgi-bin/report/grid/update"
GRID_DELETE = "/cgi-bin/report/grid/delete"
WECOM = "wecom"  # the channel WeCom userids are stored under (identities)


@dataclass(slots=True)
class PushResult:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    invalid: set[str] = field(default_factory=set)


async def desired(s: AsyncSession) -> tuple[list[Node], dict[str, str]]:
    """The county as WeCom nodes: grid leaders are a grid's admins, its workers its members; a
    community's admins are its coordinators, else its grid leaders. Also userid -> name."""
    rows = (await s.execute(
        select(StaffAssignment.role, StaffAssignment.grid_id, StaffAssignment.community_id,
               Identity.user_id, Person.name)
        .join(Person, Person.id == StaffAssignment.person_id)
        .join(Identity, (Identity.person_id == Person.id) & (Identity.channel == WECOM))
        .where(StaffAssignment.active.is_(True), Person.active.is_(True))
        .order_by(StaffAssignment.id, Identity.id))).all()
    by: dict[tuple[str, int], list[str]] = defaultdict(list)
    names: dict[str, str] = {}
    for role, grid_id, community_id, userid, name in rows:
        names.setdefault(userid, name)
        place = grid_id if grid_id is not None else community_id
        if place is not None and userid not in by[(role, place)]:
            by[(role, place)].append(userid)
    comms = (await s.scalars(select(Community).where(Community.active.is_(True))
                             .order_by(Community.id))).all()
    grids = (await s.scalars(select(Grid).where(Grid.active.is_(True))
                             .order_by(Grid.id))).all()
    live = {c.id for c in comms}
    nodes: list[Node] = []
    for c in comms:
        admins = by[(StaffRole.COORDINATOR.value, c.id)] or _unique(
            u for g in grids if g.community_id == c.id
            for u in by[(StaffRole.LEADER.value, g.id)])
        nodes.append(Node("community", c.id, cut(c.name), None, tuple(admins)))
    for g in grids:
        leaders = tuple(by[(StaffRole.LEADER.value, g.id)])
        members = tuple(u for u in by[(StaffRole.WORKER.value, g.id)] if u not in leaders)
        parent: Key | None = ("community", g.community_id) if g.community_id in live else None
        nodes.append(Node("grid", g.id, cut(g.name), parent, leaders, members))
    return nodes, names


def _unique(items: Any) -> list[str]:
    return list(dict.fromkeys(items))


async def pushed(s: AsyncSession) -> list[Pushed]:
    return [Pushed(r.kind, r.our_id, r.wecom_id, r.name, r.parent_wecom_id,  # type: ignore[arg-type]
                   tuple(r.admins), tuple(r.members))
            for r in (await s.scalars(select(WeComGrid).order_by(WeComGrid.id))).all()]


async def find_root(client: WeComClient, backoff: Backoff = PATIENT) -> str | None:
    """WeCom's root grid: the listed node without a parent among those listed."""
    listed = await retrying(partial(client.call, GRID_LIST, {}), backoff)
    grids = [g for g in listed.get("grid_list") or []
             if isinstance(g, dict) and g.get("grid_id")]
    ids = {str(g["grid_id"]) for g in grids}
    for g in grids:
        if str(g.get("grid_parent_id") or "") not in ids:
            return str(g["grid_id"])
    return None


async def execute(client: WeComClient, sm: async_sessionmaker[AsyncSession], ops: list[Op],
                  have: list[Pushed], root: str, backoff: Backoff = PATIENT) -> PushResult:
    """Carry out `ops` in order, each call retried with backoff while WeCom is unreachable;
    each change is stored as soon as WeCom has made it, so an interrupted push resumes where
    it stopped."""
    ids: dict[Key, str] = {p.key: p.wecom_id for p in have}
    out = PushResult()

    async def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await retrying(partial(client.call, path, body), backoff)

    for op in ops:
        node = op.node
        if op.action == "delete":
            old = next(p for p in have if p.key == (op.kind, op.our_id))
            await call(GRID_UPDATE, {
                "grid_id": op.wecom_id, "grid_name": old.name,
                "grid_parent_id": old.parent_wecom_id, "grid_admin": list(old.admins),
                "grid_member": []})
            await call(GRID_DELETE, {"grid_id": op.wecom_id})
            async with sm() as s, s.begin():
                await s.execute(delete(WeComGrid).where(WeComGrid.wecom_id == op.wecom_id))
            out.deleted += 1
            continue
        assert node is not None
        parent = ids[node.parent] if node.parent else root
        body: dict[str, Any] = {"grid_name": node.name, "grid_parent_id": parent,
                                "grid_admin": list(node.admins),
                                "grid_member": list(node.members)}
        if op.action == "add":
            got = await call(GRID_ADD, body)
            wecom_id = str(got.get("grid_id") or "")
            if not wecom_id:
                raise ValueError("report/grid/add answered without grid_id")
        else:
            wecom_id = op.wecom_id
            got = await call(GRID_UPDATE, {"grid_id": wecom_id, **body})
        out.invalid.update(str(u) for u in got.get("invalid_userids") or [])
        ids[node.key] = wecom_id
        await _store(sm, node, wecom_id, parent)
        if op.action == "add":
            out.added += 1
        else:
            out.updated += 1
    return out


async def _store(sm: async_sessionmaker[AsyncSession], node: Node, wecom_id: str,
                 parent: str) -> None:
    async with sm() as s, s.begin():
        row = await s.scalar(select(WeComGrid).where(WeComGrid.kind == node.kind,
                                                     WeComGrid.our_id == node.our_id))
        if row is None:
            row = WeComGrid(kind=node.kind, our_id=node.our_id, wecom_id=wecom_id)
            s.add(row)
        row.name, row.parent_wecom_id = node.name, parent
        row.admins, row.members = list(node.admins), list(node.members)
        row.updated_at = utcnow()
