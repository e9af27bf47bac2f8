"""WeCom's 居民上报 on the fake WeCom API: the grid structure (report/grid/*) and residents'
reports (report/resident/*), served from fixtures, with WeCom's documented limits.

Reports are listed by modify time, then order_id; a page's cursor is its offset in that list
as it is when the next page is asked for, so a report modified between pages moves to the end
and is served again (as WeCom's own listing by modify time would). ``page_delay`` slows given
pages (``release`` ends the wait), ``redeliver`` repeats the previous page's last report at
the head of each page, ``before_page`` runs a hook (change a report) before a page is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.wecom_api import FakeWeCom

GRID_LIST = "/cgi-bin/report/grid/list"
GRID_ADD = "/cgi-bin/report/grid/add"
GRID_UPDATE = "/cgi-bin/report/grid/update"
GRID_DELETE = "/cgi-bin/report/grid/delete"
GRID_INFO = "/cgi-bin/report/resident/get_grid_info"
ORDER_LIST = "/cgi-bin/report/resident/get_order_list"
ORDER_INFO = "/cgi-bin/report/resident/get_order_info"
ROOT = "ROOTGRID"
WRITES = (GRID_ADD, GRID_UPDATE, GRID_DELETE)


def order(order_id: str, desc: str, grid_id: str, *, name: str = "居民甲",
          mobile: str = "13900000000", place: tuple[str, str, float, float] | None = None,
          steps: list[dict[str, Any]] | None = None, case_name: str = "市容环境",
          images: list[str] | None = None, processors: list[str] | None = None,
          created: int = 0) -> dict[str, Any]:
    """A report as get_order_list returns it."""
    loc = {"name": place[0], "address": place[1], "latitude": place[2],
           "longitude": place[3]} if place else {"name": "", "address": "", "latitude": 0,
                                                 "longitude": 0}
    return {"order_id": order_id, "desc": desc, "urge_type": 1, "case_name": case_name,
            "grid_name": "", "grid_id": grid_id, "create_time": created or int(time.time()),
            "reporter_name": name, "reporter_mobile": mobile, "unionid": f"u-{order_id}",
            "image_urls": images or [], "video_media_ids": [], "location": loc,
            "processor_userids": processors or [], "process_list": steps or []}


def step(process_type: int, userid: str = "", desc: str = "", status: int = 1) -> dict[str, Any]:
    return {"process_type": process_type, "solve_userid": userid, "process_desc": desc,
            "status": status, "solved_time": int(time.time()), "image_urls": []}


@dataclass
class FakeResidentWeCom(FakeWeCom):
    known_users: set[str] = field(default_factory=set)  # empty: any userid is valid
    grids: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        ROOT: {"grid_id": ROOT, "grid_name": "浮山县", "grid_parent_id": "",
               "grid_admin": ["root_admin"], "grid_member": []}})
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    modified: dict[str, int] = field(default_factory=dict)
    page_delay: dict[int, float] = field(default_factory=dict)
    redeliver: bool = False
    before_page: Callable[[int], None] | None = None
    pictures: dict[str, bytes] = field(default_factory=dict)  # served at /pic/<name>
    pages_asked: int = 0  # counted before a page's delay
    pages_served: int = 0
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _grid_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(GRID_LIST, self._grid_list)
        app.router.add_post(GRID_ADD, self._grid_add)
        app.router.add_post(GRID_UPDATE, self._grid_update)
        app.router.add_post(GRID_DELETE, self._grid_delete)
        app.router.add_get(GRID_INFO, self._grid_info)
        app.router.add_post(ORDER_LIST, self._order_list)
        app.router.add_post(ORDER_INFO, self._order_info)
        app.router.add_get("/pic/{name}", self._picture)

    # -- fixtures -------------------------------------------------------------------------

    def put_order(self, data: dict[str, Any], modified: int | None = None) -> None:
        self.orders[data["order_id"]] = data
        self.modified[data["order_id"]] = modified if modified is not None else int(time.time())

    def add_step(self, order_id: str, data: dict[str, Any], modified: int | None = None) -> None:
        self.orders[order_id]["process_list"].append(data)
        self.modified[order_id] = modified if modified is not None else int(time.time())

    def picture(self, name: str, data: bytes) -> str:
        """A photo a resident attached, as the URL WeCom lists it under."""
        self.pictures[name] = data
        return f"{self.base_url}/pic/{name}"

    async def _picture(self, request: web.Request) -> web.Response:
        data = self.pictures.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/jpeg")

    def release(self) -> None:
        """Let every delayed page answer now (and later ones go undelayed)."""
        self.page_delay.clear()
        self._release.set()

    def writes(self) -> list[str]:
        return [c.path for c in self.calls if c.path in WRITES and not c.errcode]

    def children(self, grid_id: str) -> list[dict[str, Any]]:
        return [g for g in self.grids.values() if g["grid_parent_id"] == grid_id]

    def by_name(self, name: str) -> dict[str, Any]:
        return next(g for g in self.grids.values() if g["grid_name"] == name)

    # -- grids ----------------------------------------------------------------------------

    def _depth(self, grid_id: str) -> int:
        depth = 1
        while self.grids[grid_id]["grid_parent_id"]:
            grid_id = self.grids[grid_id]["grid_parent_id"]
            depth += 1
        return depth

    def _refuse(self, body: dict[str, Any], grid_id: str | None) -> tuple[int, str] | None:
        name, parent = str(body.get("grid_name", "")), str(body.get("grid_parent_id", ""))
        admins, members = body.get("grid_admin") or [], body.get("grid_member") or []
        if not name or len(name) > 30:
            return 40058, "invalid grid_name"
        if parent not in self.grids or parent == grid_id:
            return 40058, "invalid grid_parent_id"
        if any(g["grid_name"] == name and g["grid_id"] != grid_id
               for g in self.children(parent)):
            return 40058, "duplicate grid_name"
        if not 1 <= len(admins) <= 20 or len(members) > 100:
            return 40058, "too many or too few users"
        if self._depth(parent) + 1 > 10:
            return 40058, "too deep"
        for userid in admins:
            if sum(userid in g["grid_admin"] for g in self.grids.values()
                   if g["grid_id"] != grid_id) >= 10:
                return 40058, "admin of too many grids"
        return None

    def _split_users(self, users: list[str]) -> tuple[list[str], list[str]]:
        if not self.known_users:
            return list(users), []
        return ([u for u in users if u in self.known_users],
                [u for u in users if u not in self.known_users])

    async def _grid_list(self, request: web.Request) -> web.Response:
        call, refused = await self.guard(request, GRID_LIST)
        if refused is not None:
            return refused
        wanted = str((call.body or {}).get("grid_id") or "")
        if wanted:
            nodes = [self.grids[wanted], *self.children(wanted)] if wanted in self.grids else []
        else:
            nodes = [self.grids[ROOT], *self.children(ROOT)]
        return web.json_response({"errcode": 0, "errmsg": "ok", "grid_list": nodes})

    async def _grid_add(self, request: web.Request) -> web.Response:
        call, refused = await self.guard(request, GRID_ADD)
        if refused is not None:
            return refused
        body = call.body or {}
        problem = self._refuse(body, None)
        if problem:
            call.errcode = problem[0]
            return web.json_response({"errcode": problem[0], "errmsg": problem[1]})
        admins, bad_a = self._split_users(body.get("grid_admin") or [])
        members, bad_m = self._split_users(body.get("grid_member") or [])
        grid_id = f"G{next(self._grid_ids):05d}"
        self.grids[grid_id] = {"grid_id": grid_id, "grid_name": body["grid_name"],
                               "grid_parent_id": body["grid_parent_id"],
                               "grid_admin": admins, "grid_member": members}
        return web.json_response({"errcode": 0, "errmsg": "ok", "grid_id": grid_id,
                                  "invalid_userids": bad_a + bad_m})

    async def _grid_update(self, request: web.Request) -> web.Response:
        call, refused = await self.guard(request, GRID_UPDATE)
        if refused is not None:
            return refused
        body = call.body or {}
        grid_id = str(body.get("grid_id", ""))
        problem = (40058, "invalid grid_id") if grid_id not in self.grids or grid_id == ROOT \
            else self._refuse(body, grid_id)
        if problem:
            call.errcode = problem[0]
            return web.json_response({"errcode": problem[0], "errmsg": problem[1]})
        admins, bad_a = self._split_users(body.get("grid_admin") or [])
        members, bad_m = self._split_users(body.get("grid_member") or [])
        self.grids[grid_id].update(grid_name=body["grid_name"],
                                   grid_parent_id=body["grid_parent_id"], grid_admin=admins,
                                   grid_member=members)
        return web.json_response({"errcode": 0, "errmsg": "ok", "invalid_userids": bad_a + bad_m})

    def _subtree(self, grid_id: str) -> list[str]:
        out = [grid_id]
        for child in self.children(grid_id):
            out += self._subtree(child["grid_id"])
        return out

    async def _grid_delete(self, request: web.Request) -> web.Response:
        call, refused = await self.guard(request, GRID_DELETE)
        if refused is not None:
            return refused
        grid_id = str((call.body or {}).get("grid_id", ""))
        if grid_id not in self.grids or grid_id == ROOT:
            call.errcode = 40058
            return web.json_response({"errcode": 40058, "errmsg": "invalid grid_id"})
        subtree = self._subtree(grid_id)
        if any(self.grids[g]["grid_member"] for g in subtree):
            call.errcode = 40058  # WeCom deletes only grids without members
            return web.json_response({"errcode": 40058, "errmsg": "grid has members"})
        for g in subtree:
            del self.grids[g]
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def _grid_info(self, request: web.Request) -> web.Response:
        _call, refused = await self.guard(request, GRID_INFO)
        if refused is not None:
            return refused
        return web.json_response({"errcode": 0, "errmsg": "ok", "grid_list": [
            {"grid_id": g["grid_id"], "grid_name": g["grid_name"],
             "grid_admin": g["grid_admin"]} for g in self.grids.values() if g["grid_id"] != ROOT]})

    # -- reports --------------------------------------------------------------------------

    def _listed(self, since: int) -> list[str]:
        return sorted((oid for oid, m in self.modified.items() if m >= since),
                      key=lambda oid: (self.modified[oid], oid))

    async def _order_list(self, request: web.Request) -> web.Response:
        call, refused = await self.guard(request, ORDER_LIST)
        if refused is not None:
            return refused
        body = call.body or {}
        limit = min(int(body.get("limit") or 20), 50)
        raw = str(body.get("cursor") or "")
        if raw and not raw.startswith("C"):
            call.errcode = 40058
            return web.json_response({"errcode": 40058, "errmsg": "invalid cursor"})
        offset = int(raw[1:]) if raw else 0
        page = offset // limit if limit else 0
        self.pages_asked += 1
        if self.before_page is not None:
            self.before_page(page)
        delay = self.page_delay.get(page)
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), timeout=delay)
        listed = self._listed(int(body.get("begin_modify_time") or 0))
        ids = listed[offset:offset + limit]
        if self.redeliver and offset and offset - 1 < len(listed):
            ids = [listed[offset - 1], *ids]
        self.pages_served += 1
        nxt = f"C{offset + limit}" if offset + limit < len(listed) else ""
        return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": nxt,
                                  "order_list": [self.orders[i] for i in ids]})

    async def _order_info(self, request: web.Request) -> web.Response:
        call, refused = await self.guard(request, ORDER_INFO)
        if refused is not None:
            return refused
        found = self.orders.get(str((call.body or {}).get("order_id", "")))
        if found is None:
            call.errcode = 40058
            return web.json_response({"errcode": 40058, "errmsg": "invalid order_id"})
        return web.json_response({"errcode": 0, "errmsg": "ok", "order_info": found})
