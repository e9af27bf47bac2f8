"""One page of WeCom reports in one transaction: new tickets, new steps, call-back contacts.

Every report is one ticket (wecom_orders.order_id is unique) and every process step is applied
once (wecom_order_steps (order_id, seq) is unique); both are read and written inside the
page's transaction, so a page committed twice, or a report seen again on a later page, adds
nothing it already added. The ticket's state moves only through lifecycle.mirror, as WeCom
reports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.county.index import CountyIndex, GridInfo
from bot.delivery.outbox import outbox_values
from bot.intake.category import categorize
from bot.intake.classify import MAX_TEXT
from bot.intake.lookups import allocate_numbers
from bot.messages import GeoPoint, Outbound
from bot.notify import compose
from bot.notify.texts import t
from bot.people import directory
from bot.tickets.lifecycle import mirror, opening
from bot.tickets.sla import SlaConfig
from handlers.wecom.residents.orders import Order
from handlers.wecom.residents.states import step_label, step_state
from models.enums import Channel, ChatKind, Role, RouteStatus, StaffRole
from models.people import Identity, Person
from models.tickets import Attachment, NewTicket, Outbox, Ticket, TicketEvent
from models.wecom import ResidentContact, WeComGrid, WeComOrder, WeComOrderStep

CHANNEL = Channel.WECOM_RESIDENT.value
_TICKETS = cast(Table, Ticket.__table__)
_INSERT_TICKETS = _TICKETS.insert().returning(_TICKETS.c.number, _TICKETS.c.id)
_INSERT_EVENTS = cast(Table, TicketEvent.__table__).insert()
_INSERT_OUTBOX = cast(Table, Outbox.__table__).insert()
_INSERT_ATTACHMENTS = cast(Table, Attachment.__table__).insert()
_INSERT_ORDERS = cast(Table, WeComOrder.__table__).insert()
_INSERT_STEPS = cast(Table, WeComOrderStep.__table__).insert()
_INSERT_CONTACTS = cast(Table, ResidentContact.__table__).insert()


@dataclass(frozen=True, slots=True)
class PageContext:
    index: CountyIndex
    sla: SlaConfig
    prefix: str
    now: datetime
    media: Mapping[str, str] = field(default_factory=dict)  # photo url / video id -> sha256


@dataclass(slots=True)
class PageResult:
    orders: int = 0
    new: int = 0
    steps: int = 0
    conflicts: int = 0


@dataclass(frozen=True, slots=True)
class _Staff:
    person_id: int
    name: str


async def unknown(s: AsyncSession, orders: list[Order]) -> list[Order]:
    """The reports of `orders` that have no ticket yet (their media are fetched first)."""
    seen = set((await s.scalars(select(WeComOrder.order_id).where(
        WeComOrder.order_id.in_([o.order_id for o in orders])))).all())
    return [o for o in orders if o.order_id not in seen]


async def write_page(s: AsyncSession, orders: list[Order], ctx: PageContext) -> PageResult:
    """Write one page inside the caller's transaction (the caller saves the cursor in it too)."""
    latest = {o.order_id: o for o in orders}  # a page may carry a report twice: the last wins
    result = PageResult(orders=len(latest))
    if not latest:
        return result
    known = {oid: (tid, steps) for oid, tid, steps in (await s.execute(
        select(WeComOrder.order_id, WeComOrder.ticket_id, WeComOrder.steps)
        .where(WeComOrder.order_id.in_(list(latest))))).all()}
    staff = await _wecom_staff(s, {u for o in latest.values()
                                   for u in (*o.processors, *(st.solve_userid for st in o.steps))})
    out: list[Outbound] = []
    fresh = [o for o in latest.values() if o.order_id not in known]
    if fresh:
        await _open(s, fresh, ctx, staff, out, result)
    moved = {oid: (tid, done) for oid, (tid, done) in known.items()
             if len(latest[oid].steps) > done}
    if moved:
        await _advance(s, [latest[oid] for oid in moved], moved, ctx, staff, result)
    if out:
        await s.execute(_INSERT_OUTBOX, [outbox_values(m, ctx.now) for m in out])
    return result


async def _wecom_staff(s: AsyncSession, userids: set[str]) -> dict[str, _Staff]:
    userids.discard("")
    if not userids:
        return {}
    rows = (await s.execute(
        select(Identity.user_id, Person.id, Person.name)
        .join(Person, Person.id == Identity.person_id)
        .where(Identity.channel == "wecom", Identity.user_id.in_(list(userids))))).all()
    return {u: _Staff(pid, name) for u, pid, name in rows}


def _step_events(order: Order, ticket: Ticket | NewTicket, start: int, ctx: PageContext,
                 staff: dict[str, _Staff]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events and wecom_order_steps rows for the steps from `start` on."""
    events: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for seq, step in enumerate(order.steps[start:], start):
        who = staff.get(step.solve_userid)
        role = Role.WORKER if who else Role.SYSTEM
        name = who.name if who else (step.solve_userid or "企业微信")
        note = f"{step_label(step)}：{step.desc}" if step.desc else step_label(step)
        events.append(dict(at=ctx.now, kind="wecom_step", from_state=None, to_state=None,
                           actor_role=role.value, actor_person_id=who.person_id if who else None,
                           actor_name=name[:128], note=note[:200]))
        target = step_state(step)
        if target is not None:
            events += mirror(ticket, target, actor_role=role, actor_name=name, now=ctx.now,
                             cfg=ctx.sla, note="企业微信",
                             actor_person_id=who.person_id if who else None)
        rows.append(dict(order_id=order.order_id, seq=seq, process_type=step.process_type,
                         status=step.status, solved_time=step.solved_time))
    return events, rows


async def _open(s: AsyncSession, fresh: list[Order], ctx: PageContext,
                staff: dict[str, _Staff], out: list[Outbound], result: PageResult) -> None:
    idx, now = ctx.index, ctx.now
    grid_map: dict[str, int] = dict((await s.execute(
        select(WeComGrid.wecom_id, WeComGrid.our_id).where(WeComGrid.kind == "grid"))).all())
    numbers = await s.run_sync(lambda ss: allocate_numbers(
        ss.connection(), ctx.prefix, now, len(fresh), ctx.sla))
    tickets: list[NewTicket] = []
    opened: list[tuple[Order, NewTicket, GridInfo | None, GridInfo | None]] = []
    for order, number in zip(fresh, numbers, strict=True):
        ours = idx.grids_by_id.get(grid_map.get(order.grid_id, 0))
        place = order.place
        loc = GeoPoint(place.lat, place.lon, "gcj02") \
            if place and place.lat is not None and place.lon is not None else None
        said = " ".join(x for x in (order.desc, place.name if place else "",
                                    place.address if place else "") if x)
        res = idx.router.route(said, location=loc)
        by_place = idx.grids.get(res.grid or "") if res.status == RouteStatus.ROUTED else None
        grid = ours or by_place
        text = (order.desc or order.case_name or "[居民上报]")[:MAX_TEXT]
        ticket = NewTicket(
            number=number, category=categorize(f"{order.case_name} {text}").value, text=text,
            route_status=RouteStatus.ROUTED.value if grid else res.status.value,
            channel=CHANNEL, chat_id=f"order:{order.order_id}"[:64],
            chat_kind=ChatKind.PRIVATE.value, reporter_user_id=f"order:{order.order_id}"[:64],
            source_message_id=order.order_id[:64],
            place_text=" ".join(x for x in (place.name, place.address) if x)[:256]
            if place else "",
            lat=loc.lat if loc else None, lon=loc.lon if loc else None,
            datum=loc.datum if loc else None,
            candidates=list(dict.fromkeys(g.code for g in (ours, by_place) if g)),
            grid_id=grid.id if grid else None, community_id=grid.community_id if grid else None)
        tickets.append(ticket)
        opened.append((order, ticket, ours, by_place))
    workers = await _first_workers(s, {tk.grid_id for tk in tickets if tk.grid_id})
    events: list[list[dict[str, Any]]] = []
    steps: list[dict[str, Any]] = []
    for order, ticket, ours, by_place in opened:
        doer = next((staff[u] for u in order.processors if u in staff), None)
        evs = opening(ticket, routed=ticket.grid_id is not None, now=now, cfg=ctx.sla,
                      held="" if ticket.grid_id else t("wecom.held"),
                      assignee_id=doer.person_id if doer else workers.get(ticket.grid_id or 0))
        if ours and by_place and ours.id != by_place.id:
            result.conflicts += 1
            evs.append(dict(at=now, kind="route_conflict", from_state=None, to_state=None,
                            actor_role=Role.SYSTEM.value, actor_person_id=None,
                            actor_name="system", note=t("wecom.conflict", wecom=idx.label(
                                ours.code), ours=idx.label(by_place.code))[:200]))
        step_evs, step_rows = _step_events(order, ticket, 0, ctx, staff)
        events.append(evs + step_evs)
        steps += step_rows
    ids: dict[str, int] = dict((await s.execute(
        _INSERT_TICKETS, [tk.values() for tk in tickets])).all())
    for ticket in tickets:
        ticket.id = ids[ticket.number]
    await s.execute(_INSERT_EVENTS, [{**ev, "ticket_id": tk.id}
                                     for tk, evs in zip(tickets, events, strict=True)
                                     for ev in evs])
    await s.execute(_INSERT_ORDERS, [dict(
        order_id=o.order_id, ticket_id=tk.id, wecom_grid_id=o.grid_id[:64],
        created_time=o.create_time, steps=len(o.steps), created_at=now)
        for o, tk, _a, _b in opened])
    if steps:
        await s.execute(_INSERT_STEPS, steps)
    await s.execute(_INSERT_CONTACTS, [dict(
        ticket_id=tk.id, name=o.reporter_name, mobile=o.reporter_mobile, source=CHANNEL,
        created_at=now) for o, tk, _a, _b in opened])
    media = [dict(ticket_id=tk.id, channel=CHANNEL, kind=kind, file_id=ref[:256],
                  media_sha=ctx.media.get(ref), role="report", created_at=now)
             for o, tk, _a, _b in opened
             for kind, refs in (("photo", o.image_urls), ("video", o.video_media_ids))
             for ref in refs]
    if media:
        await s.execute(_INSERT_ATTACHMENTS, media)
    out += await _tell_coordinators(s, opened, idx)
    result.new += len(tickets)
    result.steps += len(steps)


async def _first_workers(s: AsyncSession, grid_ids: set[int | None]) -> dict[int, int]:
    ids = {g for g in grid_ids if g}
    if not ids:
        return {}

    def read(conn: Connection) -> dict[int, int]:
        first: dict[int, int] = {}
        for post, c in directory.staff_on(conn, StaffRole.WORKER, "grid", ids):
            if post.grid_id is not None:
                first.setdefault(post.grid_id, c.person_id)
        return first

    return await s.run_sync(lambda ss: read(ss.connection()))


async def _tell_coordinators(
    s: AsyncSession, opened: list[tuple[Order, NewTicket, GridInfo | None, GridInfo | None]],
    idx: CountyIndex,
) -> list[Outbound]:
    """A grid disagreement or an unknown grid is the coordinators' (else the centre's) to
    decide. Their note names the ticket and the place, never the reporter."""
    cases = [(tk, ours, by_place) for _o, tk, ours, by_place in opened
             if tk.grid_id is None or (ours and by_place and ours.id != by_place.id)]
    if not cases:
        return []

    def read(conn: Connection) -> tuple[list[tuple[directory.Post, directory.Contact]],
                                        list[tuple[directory.Post, directory.Contact]]]:
        comms = {tk.community_id for tk, _a, _b in cases if tk.community_id is not None}
        return (directory.staff_on(conn, StaffRole.COORDINATOR, "community", comms)
                if comms else [], directory.staff_on(conn, StaffRole.CENTRE, "all", ()))

    coordinators, centre = await s.run_sync(lambda ss: read(ss.connection()))
    out: list[Outbound] = []
    for tk, ours, by_place in cases:
        people = [c for post, c in coordinators if post.community_id == tk.community_id] \
            or [c for _post, c in centre]
        for c in people:
            if ours and by_place:
                text = t("wecom.coord.conflict", c.lang, number=tk.number,
                         wecom=idx.label(ours.code), ours=idx.label(by_place.code))
            else:
                text = t("wecom.coord.unmapped", c.lang, number=tk.number, text=tk.text[:100])
            msg = compose.staff_note(c, text, tk.id)
            if msg is not None:
                out.append(msg)
    return out


async def _advance(s: AsyncSession, orders: list[Order], known: dict[str, tuple[int, int]],
                   ctx: PageContext, staff: dict[str, _Staff], result: PageResult) -> None:
    """New steps of reports we already hold: their events, and the state WeCom reports."""
    q = select(Ticket).where(Ticket.id.in_([tid for tid, _done in known.values()]))
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    tickets = {tk.id: tk for tk in (await s.scalars(q)).all()}
    events: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    for order in orders:
        tid, done = known[order.order_id]
        ticket = tickets[tid]
        evs, rows = _step_events(order, ticket, done, ctx, staff)
        events += [{**ev, "ticket_id": tid} for ev in evs]
        steps += rows
    if steps:
        await s.execute(_INSERT_STEPS, steps)
        await s.execute(_INSERT_EVENTS, events)
        for order in orders:
            await s.execute(update(WeComOrder).where(WeComOrder.order_id == order.order_id)
                            .values(steps=len(order.steps)))
    result.steps += len(steps)
