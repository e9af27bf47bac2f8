"""Is this a report? -> ticket -> route -> assign, written in group commits.

Concurrent reports are queued and written by one task, many per transaction: the storage
floor is a commit, not a row, so batching is what lets intake keep up with the platform.
Each caller awaits its own result, which resolves only after the commit (persist before act).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import directory, notify
from bot import intake_lookups as lookups
from bot.category import categorize
from bot.county_index import CountyHolder, CountyIndex
from bot.lifecycle import opening
from bot.messages import Inbound, Outbound
from bot.outbox import outbox_values
from bot.report_text import MAX_TEXT, clean_text
from bot.sla import SlaConfig
from bot.sqlutil import insert_for
from bot.texts import t
from models.enums import ChatKind, RouteStatus, StaffRole
from models.tickets import Attachment, InboundLog, PendingInput, Ticket, TicketEvent

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IntakeOutcome:
    duplicate: bool = False
    ticket_id: int | None = None
    number: str | None = None
    status: RouteStatus | None = None
    grid_code: str | None = None


@dataclass(slots=True)
class _Job:
    inbound: Inbound
    report: bool
    future: asyncio.Future[IntakeOutcome] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class IntakeWriter:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        county: CountyHolder,
        sla: SlaConfig,
        *,
        prefix: str,
        media_window: timedelta,
        clock: Callable[[], datetime],
        follow_link: notify.FollowLink,
        on_commit: Callable[[], None] = lambda: None,
        batch_max: int = 64,
    ) -> None:
        self._sm = sessionmaker
        self._county = county
        self._sla = sla
        self._prefix = prefix
        self._window = media_window
        self._clock = clock
        self._follow = follow_link
        self._on_commit = on_commit
        self._batch_max = batch_max
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="intake-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, inbound: Inbound, *, report: bool) -> IntakeOutcome:
        await self.start()
        job = _Job(inbound, report)
        await self._queue.put(job)
        return await job.future

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write_safely(batch)

    async def _write_safely(self, batch: list[_Job]) -> None:
        try:
            outcomes = await self._write(batch)
        except Exception as exc:
            if len(batch) > 1:
                # one bad item (or a race with another instance) must not fail the others
                for job in batch:
                    await self._write_safely([job])
                return
            log.exception("intake failed for %s", batch[0].inbound.external_id)
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        for job, out in zip(batch, outcomes, strict=True):
            if not job.future.done():
                job.future.set_result(out)
        self._on_commit()

    async def _write(self, batch: list[_Job]) -> list[IntakeOutcome]:
        now = self._clock()
        idx = self._county.index
        async with self._sm() as s, s.begin():
            fresh = await lookups.drop_seen(s, [j.inbound for j in batch])
            outcomes: dict[int, IntakeOutcome] = {
                i: IntakeOutcome(duplicate=True) for i in range(len(batch)) if i not in fresh
            }
            reports = [i for i in fresh if batch[i].report]
            album_tickets = await lookups.album_tickets(s, [batch[i].inbound for i in fresh])
            tickets: dict[int, Ticket] = {}
            if reports:
                tickets = await self._open_tickets(s, idx, {i: batch[i].inbound for i in reports},
                                                   now)
                for i, tk in tickets.items():
                    if batch[i].inbound.media_group_id:
                        album_tickets.setdefault(batch[i].inbound.media_group_id or "", tk.id)
            log_rows: list[dict[str, Any]] = []
            attach_rows: list[dict[str, Any]] = []
            for i in fresh:
                ib = batch[i].inbound
                ticket = tickets.get(i)
                tid = ticket.id if ticket else album_tickets.get(ib.media_group_id or "")
                log_rows.append(dict(
                    channel=ib.channel, external_id=ib.external_id, chat_id=ib.chat_id,
                    sender_id=ib.sender_id, media_group_id=ib.media_group_id, ticket_id=tid,
                    media=lookups.log_media(ib),
                    has_media=(bool(ib.media) or ib.location is not None) and tid is None,
                    received_at=ib.received_at,
                ))
                if tid is not None:
                    attach_rows += lookups.attachments(tid, ib.channel, ib.media, now)
                outcomes[i] = IntakeOutcome(
                    ticket_id=tid, number=ticket.number if ticket else None,
                    status=RouteStatus(ticket.route_status) if ticket else None,
                    grid_code=idx.grids_by_id[ticket.grid_id].code
                    if ticket and ticket.grid_id in idx.grids_by_id else None,
                )
            if log_rows:
                await s.execute(InboundLog.__table__.insert(), log_rows)
            if attach_rows:
                await s.execute(Attachment.__table__.insert(), attach_rows)
        return [outcomes[i] for i in range(len(batch))]

    async def _open_tickets(
        self, s: AsyncSession, idx: CountyIndex, reports: dict[int, Inbound], now: datetime
    ) -> dict[int, Ticket]:
        bindings = await lookups.bindings(s, reports.values())
        reporters = await lookups.private_chats(s, reports.values())
        numbers = await lookups.allocate_numbers(s, self._prefix, now, len(reports), self._sla)
        earlier = await lookups.sent_before(s, reports, self._window)
        tickets: dict[int, Ticket] = {}
        routes = {}
        for (i, ib), number in zip(reports.items(), numbers, strict=True):
            bound_grid, bound_comm = bindings.get(ib.chat_id, (None, None))
            # a location shared just before the words counts as shared with them
            loc = ib.location or (earlier[i].location if i in earlier else None)
            text = clean_text(ib.text) or ("[位置]" if loc else "[图片]")
            res = idx.router.route(text, chat_grid=bound_grid, location=loc)
            routes[i] = res
            grid = idx.grids.get(res.grid or "") if res.status == RouteStatus.ROUTED else None
            community_id = grid.community_id if grid else _community_of(
                idx, bound_grid, bound_comm, res.candidates)
            ticket = Ticket(
                number=number, category=categorize(text).value, text=text,
                place_text="、".join(m for m in res.matched if m not in ("chat", "location")),
                lat=loc.lat if loc else None,
                lon=loc.lon if loc else None,
                datum=loc.datum if loc else None,
                route_status=res.status.value, candidates=list(res.candidates),
                grid_id=grid.id if grid else None, community_id=community_id,
                unrouted=False, channel=ib.channel, chat_id=ib.chat_id,
                chat_kind=ib.chat_kind.value, reporter_user_id=ib.sender_id,
                reporter_name=ib.sender_name[:128], source_message_id=ib.message_id,
                escalation_level=0,
            )
            tickets[i] = ticket
        workers = await directory.staff(
            s, StaffRole.WORKER, grid_ids={t.grid_id for t in tickets.values() if t.grid_id},
        ) if any(t.grid_id for t in tickets.values()) else []
        first_worker: dict[int, directory.Contact] = {}
        for a, c in workers:
            if a.grid_id is not None:
                first_worker.setdefault(a.grid_id, c)
        events: dict[int, list[dict[str, Any]]] = {}
        for i, ticket in tickets.items():
            worker = first_worker.get(ticket.grid_id or 0)
            ticket.assignee_id = worker.person_id if worker else None
            events[i] = opening(ticket, routed=ticket.grid_id is not None, now=now, cfg=self._sla)
        cols = [c.key for c in Ticket.__table__.columns if c.key != "id"]
        # RETURNING the unique number with the id: asking SQLAlchemy to keep row order
        # instead makes SQLite insert row by row
        table = Ticket.__table__
        ids = dict((await s.execute(
            table.insert().returning(table.c.number, table.c.id),
            [{k: getattr(tk, k) for k in cols} for tk in tickets.values()])).all())
        for ticket in tickets.values():
            ticket.id = ids[ticket.number]
        await s.execute(TicketEvent.__table__.insert(), [
            {**ev, "ticket_id": tickets[i].id} for i, evs in events.items() for ev in evs
        ])
        await lookups.claim(s, earlier, tickets, next(iter(reports.values())).channel, now)
        out: list[Outbound] = []
        pending: list[dict[str, Any]] = []
        for i, ticket in tickets.items():
            ib = reports[i]
            private = reporters.get(ib.sender_id)
            before = earlier[i].media if i in earlier else []
            photos = [m.file_id for m in [*before, *ib.media] if m.kind == "photo"]
            out += self._replies(idx, ticket, ib, private, first_worker.get(ticket.grid_id or 0),
                                 routes[i].candidates, photos)
            if ticket.grid_id is None:
                pending.append(dict(channel=ib.channel, user_id=ib.sender_id,
                                    ticket_id=ticket.id, action="place",
                                    expires_at=ticket.route_due_at))
        if pending:
            stmt = insert_for(s, PendingInput)
            await s.execute(stmt.on_conflict_do_update(
                index_elements=["channel", "user_id"],
                set_={"ticket_id": stmt.excluded.ticket_id, "action": stmt.excluded.action,
                      "expires_at": stmt.excluded.expires_at},
            ), pending)
        await self._coordinators_for_no_worker(s, idx, tickets, first_worker, out)
        if out:
            from models.tickets import Outbox
            await s.execute(Outbox.__table__.insert(), [outbox_values(m, now) for m in out])
        return tickets

    def _replies(
        self, idx: CountyIndex, ticket: Ticket, ib: Inbound, private_chat: str | None,
        worker: directory.Contact | None, candidates: list[str], photos: list[str],
    ) -> list[Outbound]:
        lang = "zh"
        msgs: list[Outbound] = []
        if ticket.grid_id is not None:
            text = t("ticket.received", lang, number=ticket.number,
                     grid=idx.grid_name(ticket.grid_id))
            if private_chat is None and ib.chat_kind == ChatKind.GROUP:
                link = self._follow(ib.channel, ticket.number)
                if link:
                    text += "\n" + t("ticket.received_follow", lang, link=link)
            if len(ib.text) > MAX_TEXT:
                text += "\n" + t("error.too_long", lang, limit=MAX_TEXT)
            msgs.append(notify.to_resident(ticket, None, text))  # where they reported
            if worker is not None:
                card = notify.worker_card(ticket, worker, idx.label(
                    idx.grids_by_id[ticket.grid_id].code), self._sla.tz, photos=photos)
                if card is not None:
                    msgs.append(card)
        else:
            key = "ticket.ask_place" if candidates else "ticket.ask_place_unknown"
            buttons = notify.place_buttons(
                ticket.id, [(c, idx.label(c)) for c in candidates], lang) if candidates else []
            # remembered even without buttons: the resident answers by replying to it
            msgs.append(notify.to_resident(ticket, None, t(key, lang, number=ticket.number),
                                           buttons, remember=True))
            if ib.chat_kind == ChatKind.PRIVATE:
                msgs.append(notify.location_request(ticket, ib.chat_id, lang))
        return msgs

    async def _coordinators_for_no_worker(
        self, s: AsyncSession, idx: CountyIndex, tickets: dict[int, Ticket],
        first_worker: dict[int, directory.Contact], out: list[Outbound],
    ) -> None:
        lonely = [tk for tk in tickets.values()
                  if tk.grid_id is not None and (tk.grid_id not in first_worker
                                                 or first_worker[tk.grid_id].chat_id is None)]
        if not lonely:
            return
        coordinators = await directory.staff(
            s, StaffRole.COORDINATOR, community_ids={tk.community_id for tk in lonely
                                                     if tk.community_id is not None})
        for tk in lonely:
            for a, c in coordinators:
                if a.community_id != tk.community_id:
                    continue
                msg = notify.staff_note(c, t("coord.no_worker", c.lang, number=tk.number,
                                             grid=idx.grid_name(tk.grid_id)), tk.id)
                if msg:
                    out.append(msg)


def _community_of(idx: CountyIndex, grid_code: str | None, community_id: int | None,
                  candidates: list[str]) -> int | None:
    if grid_code and grid_code in idx.grids:
        return idx.grids[grid_code].community_id
    if community_id is None:
        # candidates all in one community: its staff can route it (and may, by the table)
        found = {idx.grids[c].community_id for c in candidates if c in idx.grids}
        if len(found) == 1:
            return found.pop()
    return community_id


