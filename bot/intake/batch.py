"""One intake batch in one transaction: dedup, tickets, routing, first events, replies, cards.

Synchronous on a Core connection (models.db.TxRunner runs it): a batch is a dozen statements,
and on SQLite each one awaited through aiosqlite would cost more than the work itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table

from bot.county.index import CountyIndex
from bot.delivery.outbox import outbox_values
from bot.intake import coreports, lookups
from bot.intake.category import categorize
from bot.intake.classify import MAX_TEXT, clean_text, place_label
from bot.intake.phones import hide
from bot.intake.screen import Recent, Screen, screen
from bot.messages import Inbound, Outbound
from bot.notify import compose
from bot.notify.texts import t
from bot.people import directory
from bot.sqlutil import insert_for
from bot.tickets.lifecycle import co_report, opening, repeat
from bot.tickets.sla import SlaConfig, priority_for
from models.enums import ChatKind, RouteStatus, StaffRole
from models.tickets import (
    Attachment,
    InboundLog,
    NewTicket,
    Outbox,
    PendingInput,
    Ticket,
    TicketEvent,
)
from models.wecom import ResidentContact

# RETURNING the unique number with the id: asking SQLAlchemy to keep row order instead
# makes SQLite insert row by row
_TICKETS = cast(Table, Ticket.__table__)
_INSERT_TICKETS = _TICKETS.insert().returning(_TICKETS.c.number, _TICKETS.c.id)
_INSERT_EVENTS = cast(Table, TicketEvent.__table__).insert()
_INSERT_OUTBOX = cast(Table, Outbox.__table__).insert()
_INSERT_LOG = cast(Table, InboundLog.__table__).insert()
_INSERT_ATTACHMENTS = cast(Table, Attachment.__table__).insert()
_INSERT_CONTACTS = cast(Table, ResidentContact.__table__).insert()


@dataclass(slots=True)
class IntakeOutcome:
    duplicate: bool = False
    ticket_id: int | None = None
    number: str | None = None
    status: RouteStatus | None = None
    grid_code: str | None = None
    folded: bool = False  # a repeat, added to the sender's earlier ticket `number`
    held: bool = False  # over the per-minute limit: in the community's queue
    empty: bool = False  # nothing to act on; the sender was asked for details
    follows: str | None = None  # a co-report (附议): the open ticket it follows


@dataclass(slots=True)
class _Opened:
    tickets: dict[int, NewTicket]
    folded: dict[int, tuple[int, str]]  # batch index -> (ticket id, number) it was added to
    empty: set[int]
    follows: dict[int, str] = field(default_factory=dict)  # co-reports: the number followed


@dataclass(frozen=True, slots=True)
class Batch:
    """What one batch needs from the service, read once on the event loop's side."""

    index: CountyIndex
    sla: SlaConfig
    prefix: str
    window: timedelta
    follow: compose.FollowLink
    now: datetime
    items: list[tuple[Inbound, bool]]  # (message, is it a report)
    repeat_window: timedelta = timedelta(minutes=10)
    per_minute: int = 5
    radius_m: int = 150

    def write(self, conn: Connection) -> list[IntakeOutcome]:
        idx, now = self.index, self.now
        fresh = lookups.drop_seen(conn, [ib for ib, _ in self.items])
        outcomes: dict[int, IntakeOutcome] = {
            i: IntakeOutcome(duplicate=True) for i in range(len(self.items)) if i not in fresh
        }
        reports = {i: self.items[i][0] for i in fresh if self.items[i][1]}
        # a bare photo right after the sender's own report belongs to it, in a private chat too
        bare = self._media_after(conn, {
            i: ib for i, ib in reports.items() if ib.media and not ib.text.strip()
            and ib.location is None and not ib.media_group_id})
        for i in bare:
            del reports[i]
        album_tickets = lookups.album_tickets(conn, [self.items[i][0] for i in fresh])
        opened = self._open_tickets(conn, reports) if reports else _Opened({}, {}, set())
        tickets = opened.tickets
        if reports:
            for i, tk in tickets.items():
                if reports[i].media_group_id:
                    album_tickets.setdefault(reports[i].media_group_id or "", tk.id)
        late = bare | self._media_after(conn, {
            i: self.items[i][0] for i in fresh if not self.items[i][1] and self.items[i][0].media
            and album_tickets.get(self.items[i][0].media_group_id or "") is None})
        log_rows: list[dict[str, Any]] = []
        attach_rows: list[dict[str, Any]] = []
        for i in fresh:
            ib = self.items[i][0]
            ticket = tickets.get(i)
            tid = ticket.id if ticket else album_tickets.get(ib.media_group_id or "") \
                or late.get(i)
            if i in opened.folded:
                tid, number = opened.folded[i]
                outcomes[i] = IntakeOutcome(ticket_id=tid, number=number, folded=True)
            log_rows.append(dict(
                channel=ib.channel, external_id=ib.external_id, chat_id=ib.chat_id,
                sender_id=ib.sender_id, media_group_id=ib.media_group_id, ticket_id=tid,
                media=lookups.log_media(ib),
                has_media=(bool(ib.media) or ib.location is not None) and tid is None,
                received_at=ib.received_at,
            ))
            if i in opened.folded:
                continue
            if tid is not None:
                attach_rows += lookups.attachments(tid, ib.channel, ib.media, now)
            outcomes[i] = IntakeOutcome(
                ticket_id=tid, number=ticket.number if ticket else None,
                status=RouteStatus(ticket.route_status) if ticket else None,
                grid_code=idx.grids_by_id[ticket.grid_id].code
                if ticket and ticket.grid_id in idx.grids_by_id else None,
                held=bool(ticket and ticket.unrouted), empty=i in opened.empty,
                follows=opened.follows.get(i),
            )
        if log_rows:
            conn.execute(_INSERT_LOG, log_rows)
        if attach_rows:
            conn.execute(_INSERT_ATTACHMENTS, attach_rows)
        return [outcomes[i] for i in range(len(self.items))]

    def _media_after(self, conn: Connection, items: dict[int, Inbound]) -> dict[int, int]:
        """Photos sent right after a report belong to it; the sender is told where they went."""
        if not items:
            return {}
        found = lookups.open_lately(conn, items, self.now - self.window)
        told: set[int] = set()
        out: list[Outbound] = []
        for i, (tid, number) in sorted(found.items()):
            if tid in told:
                continue  # an album: one answer
            told.add(tid)
            ib = items[i]
            out.append(Outbound(channel=ib.channel, chat_id=ib.chat_id, chat_kind=ib.chat_kind,
                                text=t("ticket.duplicate_media", number=number),
                                reply_to=ib.message_id))
        if out:
            conn.execute(_INSERT_OUTBOX, [outbox_values(m, self.now) for m in out])
        return {i: tid for i, (tid, _n) in found.items()}

    def _open_tickets(self, conn: Connection, reports: dict[int, Inbound]) -> _Opened:
        idx, now = self.index, self.now
        reporters = lookups.private_chats(conn, reports.values())
        lookups.remember_private_chats(conn, reports, reporters, now)
        earlier = lookups.sent_before(conn, reports, self.window)
        recent = lookups.recent_tickets(
            conn, reports, now - max(self.repeat_window, timedelta(minutes=1)))
        scr = screen(reports, recent, set(earlier), now, repeat_window=self.repeat_window,
                     per_minute=self.per_minute)
        out: list[Outbound] = [self._ask_details(reports[i]) for i in sorted(scr.empty)]
        if not scr.opens:
            folded = self._fold(conn, reports, scr, {}, out)
            if out:
                conn.execute(_INSERT_OUTBOX, [outbox_values(m, now) for m in out])
            return _Opened({}, folded, scr.empty)
        reports_all, reports = reports, {i: reports[i] for i in scr.opens}
        earlier = {i: e for i, e in earlier.items() if i in reports}
        bindings = lookups.bindings(conn, reports.values())
        numbers = lookups.allocate_numbers(conn, self.prefix, now, len(reports), self.sla)
        tickets: dict[int, NewTicket] = {}
        candidates: dict[int, list[str]] = {}
        phones: dict[int, list[str]] = {}
        for (i, ib), number in zip(reports.items(), numbers, strict=True):
            bound_grid, bound_comm = bindings.get(ib.chat_id, (None, None))
            # a location shared just before the words counts as shared with them
            loc = ib.location or (earlier[i].location if i in earlier else None)
            text, phones[i] = hide(clean_text(ib.text))
            text = text or ("[位置]" if loc else "[图片]")
            res = idx.router.route(text, chat_grid=bound_grid, location=loc)
            candidates[i] = [] if i in scr.held else list(res.candidates)
            grid = idx.grids.get(res.grid or "") \
                if res.status == RouteStatus.ROUTED and i not in scr.held else None
            routed_to = idx.grids.get(res.grid or "")  # held: still its community's to see
            community_id = grid.community_id if grid else \
                routed_to.community_id if routed_to and i in scr.held else _community_of(
                    idx, bound_grid, bound_comm, res.candidates)
            tickets[i] = NewTicket(
                number=number, category=categorize(text).value, text=text,
                place_text=place_label(text, res.matched),
                lat=loc.lat if loc else None,
                lon=loc.lon if loc else None,
                datum=loc.datum if loc else None,
                route_status=res.status.value, candidates=candidates[i],
                grid_id=grid.id if grid else None, community_id=community_id,
                channel=ib.channel, chat_id=ib.chat_id,
                chat_kind=ib.chat_kind.value, reporter_user_id=ib.sender_id,
                reporter_name=ib.sender_name[:128], source_message_id=ib.message_id,
            )
        links = self._links(conn, tickets, scr.held)
        grid_ids = {tk.grid_id for tk in tickets.values() if tk.grid_id}
        first_worker: dict[int, directory.Contact] = {}
        for post, c in directory.staff_on(conn, StaffRole.WORKER, "grid", grid_ids) \
                if grid_ids else []:
            if post.grid_id is not None:
                first_worker.setdefault(post.grid_id, c)
        events: dict[int, list[dict[str, Any]]] = {}
        for i, ticket in tickets.items():
            if i in links:
                continue
            worker = first_worker.get(ticket.grid_id or 0)
            events[i] = opening(ticket, routed=ticket.grid_id is not None, now=now, cfg=self.sla,
                                held=f"一分钟内超过 {self.per_minute} 条" if i in scr.held else "",
                                assignee_id=worker.person_id if worker else None)
        # leaders first: a co-report may follow one of this batch, known by its id after
        self._insert(conn, [tk for i, tk in tickets.items() if i not in links])
        for i, ld in links.items():
            lead = tickets[-1 - ld.id] if ld.id < 0 else None
            events[i] = co_report(tickets[i], lead.id if lead else ld.id,
                                  lead.number if lead else ld.number, now)
        self._insert(conn, [tk for i, tk in tickets.items() if i in links])
        conn.execute(_INSERT_EVENTS, [
            {**ev, "ticket_id": tickets[i].id} for i, evs in events.items() for ev in evs
        ])
        contacts = [dict(ticket_id=tickets[i].id, name=tickets[i].reporter_name,
                         mobile=found[0][:32], source="chat", created_at=now)
                    for i, found in phones.items() if found]
        if contacts:
            conn.execute(_INSERT_CONTACTS, contacts)
        out += self._co_reported(conn, tickets, links)
        lookups.claim(conn, earlier, tickets, next(iter(reports.values())).channel, now)
        folded = self._fold(conn, reports_all, scr, tickets, out)
        pending: list[dict[str, Any]] = []
        out += self._held_notices(conn, reports, scr, tickets, recent)
        told, alerts = self._no_worker_ladder(
            conn, {i: tk for i, tk in tickets.items() if i not in scr.held | set(links)},
            first_worker)
        out += alerts
        for i, ticket in tickets.items():
            ib = reports[i]
            if i in scr.held or i in links:
                continue
            before = earlier[i].media if i in earlier else []
            photos = [m.ref(ib.channel) for m in [*before, *ib.media] if m.kind == "photo"]
            out += self._replies(ticket, ib, reporters.get(ib.sender_id),
                                 first_worker.get(ticket.grid_id or 0), candidates[i], photos,
                                 told.get(i))
            if ticket.grid_id is None:
                pending.append(dict(channel=ib.channel, user_id=ib.sender_id,
                                    ticket_id=ticket.id, action="place",
                                    expires_at=ticket.route_due_at))
        if pending:
            stmt = insert_for(conn, PendingInput)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=["channel", "user_id"],
                set_={"ticket_id": stmt.excluded.ticket_id, "action": stmt.excluded.action,
                      "expires_at": stmt.excluded.expires_at},
            ), pending)
        if out:
            conn.execute(_INSERT_OUTBOX, [outbox_values(m, now) for m in out])
        return _Opened(tickets, folded, scr.empty,
                       {i: tickets[-1 - ld.id].number if ld.id < 0 else ld.number
                        for i, ld in links.items()})

    @staticmethod
    def _insert(conn: Connection, tickets: list[NewTicket]) -> None:
        if tickets:
            ids = {number: tid for number, tid in conn.execute(
                _INSERT_TICKETS, [tk.values() for tk in tickets])}
            for tk in tickets:
                tk.id = ids[tk.number]

    def _links(self, conn: Connection, tickets: dict[int, NewTicket], held: set[int]
               ) -> dict[int, coreports.Lead]:
        """Which new reports follow an open ticket at the same place (附议)."""
        opened = {i: tk for i, tk in tickets.items() if i not in held}
        leads = coreports.open_leads(conn, list(opened.values()), self.radius_m)
        links: dict[int, coreports.Lead] = {}
        for i, tk in opened.items():
            lead = coreports.lead_for(tk, leads, self.radius_m)
            if lead is not None:
                links[i] = lead
            elif coreports.linkable(tk):
                leads.append(coreports.as_lead(i, tk))
        return links

    def _co_reported(self, conn: Connection, tickets: dict[int, NewTicket],
                     links: dict[int, coreports.Lead]) -> list[Outbound]:
        """The co-reporter hears which ticket they follow; the leading ticket's timeline gets
        the co-report, and its worker hears of the first few and then of every tenth."""
        if not links:
            return []
        out: list[Outbound] = []
        leads = {i: tickets[i].merged_into_id or 0 for i in links}  # ids, all inserted now
        counts = coreports.followers(conn, list(set(leads.values())))
        workers = {c.person_id: c for _post, c in directory.staff_on(
            conn, StaffRole.WORKER, "grid", {tickets[i].grid_id or 0 for i in links})}
        assignees = coreports.assignees(conn, list(set(leads.values())))
        rows: list[dict[str, Any]] = []
        noted: set[int] = set()
        for i in sorted(links):
            tk = tickets[i]
            lead_number = tickets[-1 - links[i].id].number if links[i].id < 0 \
                else links[i].number
            out.append(compose.to_resident(tk, None, t(
                "ticket.co_report", number=lead_number)))
            rows.append(repeat(leads[i], tk.reporter_name, self.now,
                               f"{tk.number} {tk.text[:100]}", kind="co_report"))
            # this batch's co-reports are counted already: one note per leading ticket
            n = 1 + counts.get(leads[i], 0)  # the first reporter and everyone following
            worker = workers.get(assignees.get(leads[i]) or 0)
            if worker is not None and leads[i] not in noted and (n <= 3 or n % 10 == 0):
                noted.add(leads[i])
                msg = compose.staff_note(worker, t("worker.co_report", worker.lang,
                                                   number=lead_number, n=n,
                                                   text=tk.text[:100]), leads[i])
                if msg:
                    # the leading ticket's: the same category at the same place
                    out.append(self._quietly(msg, priority_for(tk.category, self.sla)))
        conn.execute(_INSERT_EVENTS, rows)
        return out

    def _quietly(self, msg: Outbound, priority: str) -> Outbound:
        return compose.quietly(msg, priority, self.now, self.sla)

    def _ask_details(self, ib: Inbound) -> Outbound:
        return Outbound(channel=ib.channel, chat_id=ib.chat_id, chat_kind=ib.chat_kind,
                        text=t("ticket.ask_details"), reply_to=ib.message_id)

    def _fold(self, conn: Connection, reports: dict[int, Inbound], scr: Screen,
              tickets: dict[int, NewTicket], out: list[Outbound]) -> dict[int, tuple[int, str]]:
        """Repeats become a "+1" on the first ticket; the sender hears so once a minute."""
        folded: dict[int, tuple[int, str]] = {}
        for i, first in scr.folded.items():
            tk = tickets[-1 - first.id] if first.id < 0 else None
            folded[i] = (tk.id, tk.number) if tk else (first.id, first.number)
        if not folded:
            return folded
        last = lookups.last_repeats(conn, [tid for tid, _n in folded.values()
                                          if tid not in {tk.id for tk in tickets.values()}])
        conn.execute(_INSERT_EVENTS, [
            repeat(tid, reports[i].sender_name[:128], self.now, reports[i].text)
            for i, (tid, _n) in folded.items()])
        told: set[int] = set()
        for i, (tid, number) in sorted(folded.items()):
            if tid in told or last.get(tid, datetime.min.replace(tzinfo=self.now.tzinfo)) \
                    > self.now - timedelta(minutes=1):
                continue
            told.add(tid)
            ib = reports[i]
            out.append(Outbound(channel=ib.channel, chat_id=ib.chat_id, chat_kind=ib.chat_kind,
                                text=t("ticket.repeat", number=number),
                                reply_to=ib.message_id))
        return folded

    def _held_notices(self, conn: Connection, reports: dict[int, Inbound], scr: Screen,
                      tickets: dict[int, NewTicket], recent: list[Recent]) -> list[Outbound]:
        """The sender, and their community's staff, hear once a minute that reports are held."""
        held_lately = {r.reporter for r in recent
                       if r.held and r.created_at >= self.now - timedelta(minutes=1)}
        first: dict[str, int] = {}
        for i in sorted(scr.held):
            if reports[i].sender_id not in held_lately:
                first.setdefault(reports[i].sender_id, i)
        if not first:
            return []
        out: list[Outbound] = []
        coordinators = directory.staff_on(
            conn, StaffRole.COORDINATOR, "community",
            {cid for i in first.values() if (cid := tickets[i].community_id) is not None})
        for i in first.values():
            ib, tk = reports[i], tickets[i]
            out.append(Outbound(channel=ib.channel, chat_id=ib.chat_id, chat_kind=ib.chat_kind,
                                text=t("ticket.held", number=tk.number),
                                reply_to=ib.message_id))
            for post, c in coordinators:
                if post.community_id != tk.community_id:
                    continue
                msg = compose.staff_note(c, t("coord.held", c.lang, name=tk.reporter_name,
                                             n=self.per_minute, number=tk.number,
                                             text=tk.text[:100]), tk.id)
                if msg:
                    out.append(self._quietly(msg, tk.priority))
        return out

    def _replies(
        self, ticket: NewTicket, ib: Inbound, private_chat: str | None,
        worker: directory.Contact | None, candidates: list[str], photos: list[str],
        told: StaffRole | None,
    ) -> list[Outbound]:
        idx, lang = self.index, ""
        msgs: list[Outbound] = []
        if ticket.grid_id is not None:
            grid = idx.grid_name(ticket.grid_id)
            # say who really has it: the worker only if the card can reach them
            text = t("ticket.received", lang, number=ticket.number, grid=grid) \
                if (worker is not None and worker.chat_id is not None) or told is None \
                else t("ticket.received_no_worker", lang, number=ticket.number, grid=grid,
                       who=t(f"who.{told.value}", lang))
            if private_chat is None and ib.chat_kind == ChatKind.GROUP:
                link = self.follow(ib.channel, ticket.number)
                if link:
                    text += "\n" + t("ticket.received_follow", lang, link=link)
            if len(ib.text) > MAX_TEXT:
                text += "\n" + t("error.too_long", lang, limit=MAX_TEXT)
            msgs.append(compose.to_resident(ticket, None, text))  # where they reported
            if worker is not None:
                card = compose.worker_card(ticket, worker, idx.label(
                    idx.grids_by_id[ticket.grid_id].code), self.sla.tz, photos=photos)
                if card is not None:
                    msgs.append(self._quietly(card, ticket.priority))
        else:
            key = "ticket.ask_place" if candidates else "ticket.ask_place_unknown"
            buttons = compose.place_buttons(
                ticket.id, [(c, idx.place_choice(c, ticket.text)) for c in candidates], lang
            ) if candidates else []
            # remembered even without buttons: the resident answers by replying to it
            msgs.append(compose.to_resident(ticket, None, t(key, lang, number=ticket.number),
                                           buttons, remember=True))
            if ib.chat_kind == ChatKind.PRIVATE:
                msgs.append(compose.location_request(ticket, ib.chat_id, lang))
        return msgs

    def _no_worker_ladder(
        self, conn: Connection, tickets: dict[int, NewTicket],
        first_worker: dict[int, directory.Contact],
    ) -> tuple[dict[int, StaffRole], list[Outbound]]:
        """A grid whose worker can't be reached: its community's staff, else the centre.

        The same ladder as bot.notify.tell.tell_up (which the batch can't await); returns who was
        told per ticket, for the resident's receipt, and the alerts.
        """
        lonely = {i: tk for i, tk in tickets.items()
                  if tk.grid_id is not None and (tk.grid_id not in first_worker
                                                 or first_worker[tk.grid_id].chat_id is None)}
        if not lonely:
            return {}, []
        coordinators = directory.staff_on(
            conn, StaffRole.COORDINATOR, "community",
            {tk.community_id for tk in lonely.values() if tk.community_id is not None})
        centre: list[tuple[directory.Post, directory.Contact]] | None = None
        told: dict[int, StaffRole] = {}
        out: list[Outbound] = []
        for i, tk in lonely.items():
            grid = self.index.grid_name(tk.grid_id)
            for role in (StaffRole.COORDINATOR, StaffRole.CENTRE):
                if role == StaffRole.COORDINATOR:
                    people = [c for post, c in coordinators
                              if post.community_id == tk.community_id]
                else:
                    if centre is None:
                        centre = directory.staff_on(conn, StaffRole.CENTRE, "all", ())
                    people = [c for _post, c in centre]
                msgs = [self._quietly(m, tk.priority) for c in people if (m := compose.staff_note(
                    c, t("coord.no_worker", c.lang, number=tk.number, grid=grid), tk.id))]
                if msgs:
                    out += msgs
                    told[i] = role
                    break
        return told, out


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
