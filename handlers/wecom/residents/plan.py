"""The push plan: the county's communities and grids as WeCom's grid structure (pure).

WeCom's rules (report/grid/add, update: https://developer.work.weixin.qq.com/document/path/94479):
a name of at most 30 characters, at most 10 levels, 1 to 20 admins (grid_admin), at most 100
members (grid_member), and one person admin of at most 10 grids. They are checked here, before
any call, so a push either fits or changes nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from bot.notify.texts import t
from handlers.wecom.residents import texts as _texts  # noqa: F401  (registers the keys)

MAX_NAME, MAX_LEVELS, MAX_ADMINS, MAX_MEMBERS, MAX_ADMIN_OF = 30, 10, 20, 100, 10

Kind = Literal["community", "grid"]
Key = tuple[str, int]  # (kind, our id)


def cut(name: str) -> str:
    return name.strip()[:MAX_NAME]


@dataclass(frozen=True, slots=True)
class Node:
    """One node as the county wants it."""

    kind: Kind
    our_id: int
    name: str
    parent: Key | None  # None: directly under WeCom's root
    admins: tuple[str, ...]
    members: tuple[str, ...] = ()

    @property
    def key(self) -> Key:
        return (self.kind, self.our_id)


@dataclass(frozen=True, slots=True)
class Pushed:
    """One node as we last pushed it (a wecom_grids row)."""

    kind: Kind
    our_id: int
    wecom_id: str
    name: str
    parent_wecom_id: str
    admins: tuple[str, ...]
    members: tuple[str, ...]

    @property
    def key(self) -> Key:
        return (self.kind, self.our_id)


@dataclass(frozen=True, slots=True)
class Op:
    action: Literal["add", "update", "delete"]
    kind: Kind
    our_id: int
    name: str
    node: Node | None = None  # add, update
    wecom_id: str = ""  # update, delete
    changes: tuple[str, ...] = ()  # update: name | parent | admins | members

    def describe(self, lang: str = "") -> str:
        kind = t(f"wecom.kind.{self.kind}", lang)
        if self.action == "update":
            what = "、".join(t(f"wecom.change.{c}", lang) for c in self.changes)
            return t("wecom.push.update", lang, kind=kind, name=self.name, what=what)
        return t(f"wecom.push.{self.action}", lang, kind=kind, name=self.name)


def _depths(nodes: list[Node]) -> dict[Key, int]:
    """Level of each node, WeCom's root being level 1."""
    by_key = {n.key: n for n in nodes}
    out: dict[Key, int] = {}
    for n in nodes:
        depth, cur, seen = 2, n, {n.key}
        while cur.parent is not None and cur.parent in by_key and cur.parent not in seen:
            seen.add(cur.parent)
            cur = by_key[cur.parent]
            depth += 1
        out[n.key] = depth
    return out


def check(nodes: list[Node], names: dict[str, str], lang: str = "") -> list[str]:
    """Every way `nodes` breaks WeCom's limits, as lines for the operator (empty: fits)."""
    problems: list[str] = []
    depths = _depths(nodes)
    for n in nodes:
        if not n.admins:
            problems.append(t("wecom.limit.no_admin", lang, name=n.name))
        elif len(n.admins) > MAX_ADMINS:
            problems.append(t("wecom.limit.admins", lang, name=n.name, n=len(n.admins)))
        if len(n.members) > MAX_MEMBERS:
            problems.append(t("wecom.limit.members", lang, name=n.name, n=len(n.members)))
        if depths[n.key] > MAX_LEVELS:
            problems.append(t("wecom.limit.depth", lang, name=n.name, n=depths[n.key]))
    admin_of = Counter(u for n in nodes for u in set(n.admins))
    for userid, count in sorted(admin_of.items()):
        if count > MAX_ADMIN_OF:
            problems.append(t("wecom.limit.admin_of", lang, person=names.get(userid, userid),
                              n=count))
    return problems


def plan(nodes: list[Node], pushed: list[Pushed]) -> list[Op]:
    """What to add, update and delete so that WeCom holds `nodes`: parents are added before
    their children and children deleted before their parents; what is already so is left."""
    depths = _depths(nodes)
    have = {p.key: p for p in pushed}
    want = {n.key: n for n in nodes}
    ops: list[Op] = []
    for n in sorted(nodes, key=lambda n: (depths[n.key], n.kind, n.our_id)):
        old = have.get(n.key)
        if old is None:
            ops.append(Op("add", n.kind, n.our_id, n.name, node=n))
            continue
        parent = have.get(n.parent) if n.parent else None
        changes = tuple(c for c, differs in (
            ("name", old.name != n.name),
            # a parent added in this run has no id yet: the child moves under it
            ("parent", n.parent is not None and (parent is None
                                                 or parent.wecom_id != old.parent_wecom_id)),
            ("admins", old.admins != n.admins),
            ("members", old.members != n.members)) if differs)
        if changes:
            ops.append(Op("update", n.kind, n.our_id, n.name, node=n, wecom_id=old.wecom_id,
                          changes=changes))
    gone = [p for p in pushed if p.key not in want]
    for p in sorted(gone, key=lambda p: (p.kind != "grid", p.our_id)):
        ops.append(Op("delete", p.kind, p.our_id, p.name, wecom_id=p.wecom_id))
    return ops
