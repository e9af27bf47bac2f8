"""转办: a ticket handed to a partner unit (物业公司, 业委会, 部门), and that unit's steps.

`转办 NUM 单位 [说明]` by the ticket's worker, its grid's leader, its community's coordinators
or the centre records a `transfer_partner` event, sets `tickets.partner_id` and sends the
unit's contacts a card. The unit's contacts then act with the same words as a worker (接单,
进展, 办结; models.enums.Role.PARTNER in the transition table); the grid worker stays
responsible: each of their steps is told to him in one short note, and deadlines and
escalation run as before (nothing here touches them).
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.outbox import enqueue
from bot.deps import Ctx, Deps
from bot.messages import Inbound, Outbound
from bot.notify import compose
from bot.notify.compose import local
from bot.notify.tell import NO_CHAT_BACK, tell_resident
from bot.notify.texts import category_label, register, t
from bot.people import directory
from bot.reports.brief import mask_phones
from bot.routing.normalize import normalize
from bot.tickets import actions
from bot.tickets.asking import check
from bot.tickets.lifecycle import Actor, Refused, record, transition
from bot.tickets.words import Said
from models.county import Place
from models.enums import ACTIVE, ChatKind, Role
from models.enums import TicketState as S
from models.partners import Partner, PartnerArea, PartnerContact
from models.tickets import Attachment, Ticket
from models.transitions import STAFF

HANDOVER = "handover"  # the verb bot.tickets.words gives 转办
STEPS = frozenset({"ack", "progress", "resolve"})  # what a partner's contact does in words
EVENT = "transfer_partner"

ZH = {
    "coord.handover_usage": "请写上工单号和单位，例如：转办 7 宏达物业 楼道灯坏了请维修",
    "partner.not_allowed": "只有这张工单的网格员、网格长、社区工作人员和县指挥中心可以转办。"
                           "未作改动。",
    "partner.not_open": "工单 {number} 现在是“{state}”，只能转办还在处理中的工单。未作改动。",
    "partner.unknown": "没有找到“{name}”这个单位。{serving}",
    "partner.which": "“{name}”可能是：{units}。请写全名或编号。未作改动。",
    "partner.not_serving": "{unit}不负责工单 {number} 所在的地方。{serving}未作改动。",
    "partner.serving": "能接工单 {number} 的单位有：{units}。",
    "partner.serving_none": "工单 {number} 所在的地方还没有协同单位。",
    "partner.same": "工单 {number} 已经转办给{unit}，未作改动。",
    "partner.handed": "已转办：{number} → {unit}，已发给{contacts}。对方接单、进展、办结都会"
                      "告诉网格员；办理时限不变。",
    "partner.handed_unreached": "已记下转办：{number} → {unit}。但该单位还没有人接入，工单没能"
                                "发给对方，请电话联系{unit}。办理时限不变。",
    "partner.card_title": "【转办工单】{number}",
    "partner.card_from": "{grid}网格（网格员{worker}）转来，请协助办理。",
    "partner.card_body": "类别：{category}\n地点：{place}\n内容：{text}",
    "partner.card_note": "说明：{note}",
    "partner.card_due": "办结时限：{resolve_due}",
    "partner.card_hint": "请回复：接单 {number}；进展 {number} 内容；办结 {number} 办理结果",
    "partner.worker_handed": "工单 {number} 已由{actor}转办给{unit}。对方接单、进展、办结都会"
                             "告诉您，这张工单仍由您负责跟进。",
    "partner.moved_away": "工单 {number} 已改由{unit}办理，您不用再处理了。",
    "partner.acked": "已接单：{number}。有进展请回复：进展 {number} 内容；办好后回复：办结 "
                     "{number} 办理结果",
    "partner.resolve_usage": "请在工单号后写上办理结果，例如：办结 {number} 路灯已换好",
    "partner.resident_acked": "您的工单 {number} 已由{unit}接单。",
    "partner.worker_acked": "工单 {number}：{unit}{name}已接单。",
    "partner.worker_progress": "工单 {number}：{unit}{name}报进展：{note}",
    "partner.worker_resolved": "工单 {number}：{unit}{name}已办结：{note}。等待居民评价。",
    "partner.worker_resolved_no_chat": "工单 {number}：{unit}{name}已办结：{note}。"
                                       "报事人无法在线确认，{days} 天后自动结案。",
    "partner.photo": "[图片]",
}
EN = {
    "coord.handover_usage": "Please give the ticket number and the unit, "
                            "e.g. 转办 7 宏达物业 please fix the stairway light",
    "partner.not_allowed": "Only this ticket's worker, grid leader, community staff and the "
                           "command centre can hand it over. Nothing was changed.",
    "partner.not_open": "Ticket {number} is \"{state}\"; only a ticket still being worked on "
                        "can be handed over. Nothing was changed.",
    "partner.unknown": "No unit called \"{name}\". {serving}",
    "partner.which": "\"{name}\" could be: {units}. Give the full name or the code. "
                     "Nothing was changed.",
    "partner.not_serving": "{unit} does not serve where ticket {number} is. {serving}"
                           "Nothing was changed.",
    "partner.serving": "Units that can take ticket {number}: {units}. ",
    "partner.serving_none": "No partner unit serves where ticket {number} is. ",
    "partner.same": "Ticket {number} is already with {unit}; nothing was changed.",
    "partner.handed": "Handed over: {number} → {unit}, sent to {contacts}. Their steps will be "
                      "told to the grid worker; the deadlines stay as they were.",
    "partner.handed_unreached": "Hand-over recorded: {number} → {unit}, but nobody from that "
                                "unit has joined yet, so the ticket could not be sent to them. "
                                "Please phone {unit}. The deadlines stay as they were.",
    "partner.card_title": "[Handed over] {number}",
    "partner.card_from": "From the {grid} grid (worker {worker}); please help.",
    "partner.card_body": "Category: {category}\nPlace: {place}\nIssue: {text}",
    "partner.card_note": "Note: {note}",
    "partner.card_due": "Resolve by: {resolve_due}",
    "partner.card_hint": "Reply 接单 {number}; 进展 {number} progress; 办结 {number} result",
    "partner.worker_handed": "Ticket {number} was handed to {unit} by {actor}. You will hear "
                             "each of their steps; the ticket stays yours to follow up.",
    "partner.moved_away": "Ticket {number} is now with {unit}; you need not act on it.",
    "partner.acked": "Acknowledged: {number}. Reply 进展 {number} with progress, and 办结 "
                     "{number} with the result when done.",
    "partner.resolve_usage": "Please write the result after the number, "
                             "e.g. 办结 {number} light replaced",
    "partner.resident_acked": "Your ticket {number} was acknowledged by {unit}.",
    "partner.worker_acked": "Ticket {number}: {name} of {unit} acknowledged it.",
    "partner.worker_progress": "Ticket {number}: progress from {name} of {unit}: {note}",
    "partner.worker_resolved": "Ticket {number}: {name} of {unit} resolved it: {note}. "
                               "Waiting for the resident's rating.",
    "partner.worker_resolved_no_chat": "Ticket {number}: {name} of {unit} resolved it: "
                                       "{note}. The reporter cannot confirm online; it "
                                       "closes by itself in {days} days.",
    "partner.photo": "[photo]",
}
register(ZH, EN)


def handed_to(person_id: int | None) -> ColumnElement[bool]:
    """Tickets handed to a partner this person acts for (their 接单 / 办结 without a number)."""
    if person_id is None:
        return false()
    return Ticket.partner_id.in_(select(PartnerContact.partner_id).where(
        PartnerContact.person_id == person_id, PartnerContact.active.is_(True)))


# --- which unit -----------------------------------------------------------------------------

_SUFFIXES = ("有限责任公司", "股份有限公司", "有限公司", "公司")


def _keys(p: Partner) -> set[str]:
    """How people type a unit: its code, name, 简称, and the name without the county in front
    or the company form behind (浮山县宏达物业有限公司 -> 宏达物业, 县住建局 -> 住建局)."""
    keys = {normalize(p.code)}
    for spelled in (p.name, *(p.aliases or ())):
        k = normalize(spelled)
        keys.add(k)
        for suffix in _SUFFIXES:
            k = k.removesuffix(suffix)
        cut = max(k.find("县"), k.find("市"))
        if 0 <= cut <= 3 and len(k) - cut > 2:
            k = k[cut + 1:]
        keys.add(k)
    return {k for k in keys if len(k) >= 2}


@dataclass(frozen=True, slots=True)
class Named:
    partners: list[Partner]  # one: found; several: which one?; none: unknown
    word: str  # what the person typed for the unit
    note: str  # what followed it


def name_unit(units: list[Partner], rest: str) -> Named:
    """The unit `rest` starts with: a whole key, a key with the note glued on, or the start of
    a key (宏达 for 宏达物业); the best of these tiers wins."""
    word, _, after = rest.strip().partition(" ")
    typed = normalize(word)
    exact, glued, prefix = [], [], []
    cut = 0
    for p in units:
        keys = _keys(p)
        if typed in keys:
            exact.append(p)
            continue
        starts = [k for k in keys if typed.startswith(k)]
        if starts:
            glued.append((max(len(k) for k in starts), p))
        elif len(typed) >= 2 and any(k.startswith(typed) for k in keys):
            prefix.append(p)
    if exact:
        return Named(exact, word, after.strip())
    if glued:
        cut = max(n for n, _p in glued)
        best = [p for n, p in glued if n == cut]
        return Named(best, word[:cut], (word[cut:] + " " + after).strip())
    return Named(prefix, word, after.strip())


async def serving(s: AsyncSession, ticket: Ticket) -> list[Partner]:
    """Active units whose areas cover the ticket: the county, its grid, or a place named in it."""
    rows = (await s.execute(
        select(Partner, PartnerArea.grid_id, PartnerArea.place)
        .join(PartnerArea, PartnerArea.partner_id == Partner.id)
        .where(Partner.active.is_(True), PartnerArea.active.is_(True))
        .order_by(Partner.id))).all()
    places = {place for _p, _g, place in rows if place}
    spellings: dict[str, list[str]] = {name: [name] for name in places}
    if places:
        for name, aliases in await s.execute(
                select(Place.name, Place.aliases).where(Place.name.in_(places),
                                                        Place.active.is_(True))):
            spellings[name] += list(aliases or ())
    said = normalize(f"{ticket.place_text} {ticket.text}")
    out: dict[int, Partner] = {}
    for p, grid_id, place in rows:
        if (grid_id is None and not place) or (grid_id is not None and grid_id == ticket.grid_id) \
                or (place and any(normalize(x) in said for x in spellings[place])):
            out.setdefault(p.id, p)
    return list(out.values())


# --- 转办 ------------------------------------------------------------------------------------


async def hand_over(s: AsyncSession, deps: Deps, ctx: Ctx, ticket: Ticket, rest: str) -> str:
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    lang = actor.lang
    if not actor.roles & STAFF:
        raise Refused(t("partner.not_allowed", lang))
    if S(ticket.state) not in ACTIVE:
        raise Refused(t("partner.not_open", lang, number=ticket.number,
                        state=t(f"state.{ticket.state}", lang)))
    if not rest.strip():
        raise Refused(t("coord.handover_usage", lang))
    near = await serving(s, ticket)
    units = list((await s.scalars(select(Partner).where(Partner.active.is_(True))
                                  .order_by(Partner.id))).all())
    named = name_unit(units, rest)
    found = named.partners
    if len(found) > 1:
        found = [p for p in found if p in near] or found
    if len(found) > 1:
        raise Refused(t("partner.which", lang, name=named.word,
                        units="、".join(p.name for p in found)))
    if not found:
        raise Refused(t("partner.unknown", lang, name=named.word[:20],
                        serving=_serving_text(near, ticket, lang)))
    unit = found[0]
    if unit not in near:
        raise Refused(t("partner.not_serving", lang, unit=unit.name, number=ticket.number,
                        serving=_serving_text(near, ticket, lang)))
    if ticket.partner_id == unit.id:
        raise Refused(t("partner.same", lang, number=ticket.number, unit=unit.name))
    before = ticket.partner_id
    note = named.note[:500]
    record(s, ticket, actor, EVENT, now=deps.clock(),
           note=f"{unit.name}：{note}" if note else unit.name)
    ticket.partner_id = unit.id
    if before is not None:
        for c in await contacts(s, before, ticket.channel):
            enqueue_note(s, c, t("partner.moved_away", c.lang, number=ticket.number,
                                 unit=unit.name), ticket.id)
    worker = await directory.contact(s, ticket.assignee_id, ticket.channel) \
        if ticket.assignee_id is not None else None
    told = [c.name for c in await contacts(s, unit.id, ticket.channel)
            if enqueue_card(s, deps, ticket, c, worker, note)]
    if worker is not None and worker.person_id != actor.person_id:
        enqueue_note(s, worker, t("partner.worker_handed", worker.lang, number=ticket.number,
                                  actor=actor.name or "—", unit=unit.name), ticket.id)
    if not told:
        return t("partner.handed_unreached", lang, number=ticket.number, unit=unit.name)
    return t("partner.handed", lang, number=ticket.number, unit=unit.name,
             contacts="、".join(told))


def _serving_text(near: list[Partner], ticket: Ticket, lang: str) -> str:
    if not near:
        return t("partner.serving_none", lang, number=ticket.number)
    return t("partner.serving", lang, number=ticket.number,
             units="、".join(p.name for p in near))


async def contacts(s: AsyncSession, partner_id: int, prefer: str | None
                   ) -> list[directory.Contact]:
    """The unit's active contacts, each with the account to reach them on (if any)."""
    ids = (await s.scalars(select(PartnerContact.person_id).where(
        PartnerContact.partner_id == partner_id, PartnerContact.active.is_(True))
        .order_by(PartnerContact.id))).all()
    found = [await directory.contact(s, pid, prefer) for pid in ids]
    return [c for c in found if c is not None]


def enqueue_note(s: AsyncSession, to: directory.Contact, text: str, ticket_id: int) -> bool:
    msg = compose.staff_note(to, text, ticket_id)
    if msg is not None:
        enqueue(s, msg)
    return msg is not None


def partner_card(ticket: Ticket, to: directory.Contact, grid: str, worker: str, note: str,
                 tz: ZoneInfo) -> Outbound | None:
    """What the unit's contact reads: the problem and where, never who reported it or how to
    reach them (the worker is the unit's way back; a number typed into the report is masked)."""
    if to.chat_id is None or to.channel is None:
        return None
    lang, n = to.lang, ticket.number
    lines = [t("partner.card_title", lang, number=n),
             t("partner.card_from", lang, grid=grid, worker=worker),
             t("partner.card_body", lang, category=category_label(ticket.category, lang),
               place=ticket.place_text or grid, text=mask_phones(ticket.text))]
    if note:
        lines.append(t("partner.card_note", lang, note=mask_phones(note)))
    lines += [t("partner.card_due", lang, resolve_due=local(ticket.resolve_due_at, tz)),
              t("partner.card_hint", lang, number=n)]
    if ticket.priority == "urgent":
        lines[0] = t("card.urgent", lang) + lines[0]
    return Outbound(channel=to.channel, chat_id=to.chat_id, chat_kind=ChatKind.PRIVATE,
                    text="\n".join(lines), ticket_id=ticket.id)


def enqueue_card(s: AsyncSession, deps: Deps, ticket: Ticket, to: directory.Contact,
                 worker: directory.Contact | None, note: str) -> bool:
    card = partner_card(ticket, to, deps.county.index.grid_name(ticket.grid_id),
                        worker.name if worker else "—", note, deps.sla.tz)
    if card is not None:
        enqueue(s, card)
    return card is not None


# --- the unit's steps -----------------------------------------------------------------------


async def step(s: AsyncSession, deps: Deps, ctx: Ctx, ib: Inbound, ticket: Ticket,
               said: Said) -> str | None:
    """接单 / 进展 / 办结 by the unit's contact; None when the person is not acting as one
    (staff of the ticket act as staff, everyone else is refused by the usual handlers)."""
    actor = await directory.actor_for(s, ctx.channel, ctx.user_id, ctx.user_name, ticket)
    if Role.PARTNER not in actor.roles or actor.roles & STAFF or ticket.partner_id is None:
        return None
    unit = await s.get(Partner, ticket.partner_id)
    name = unit.name if unit else "—"
    if said.verb == "ack":
        check(ticket, S.ACKNOWLEDGED, actor, {S.ASSIGNED, S.REOPENED})
        transition(s, ticket, S.ACKNOWLEDGED, actor, now=deps.clock(), cfg=deps.sla)
        await tell_resident(s, ticket, "partner.resident_acked", unit=name)
        await _tell_worker(s, ticket, "partner.worker_acked", actor, name)
        return t("partner.acked", actor.lang, number=ticket.number)
    if said.verb == "progress":
        if not said.rest and not ib.media:
            raise Refused(t("words.progress_usage", actor.lang, number=ticket.number))
        return await _progress(s, deps, ctx, ib, ticket, actor, name, said.rest)
    if not said.rest and not ib.media:
        raise Refused(t("partner.resolve_usage", actor.lang, number=ticket.number))
    done = await actions.finish_resolve(s, deps, ctx, ticket, said.rest, ib.media)
    no_chat = ticket.channel in NO_CHAT_BACK  # 代报: nobody rates it in a chat
    await _tell_worker(s, ticket, "partner.worker_resolved_no_chat" if no_chat
                       else "partner.worker_resolved", actor, name, note=said.rest,
                       days=deps.sla.confirm_days)
    return done


async def _progress(s: AsyncSession, deps: Deps, ctx: Ctx, ib: Inbound, ticket: Ticket,
                    actor: Actor, unit: str, note: str) -> str:
    """What a worker's 进展 does (actions.progress_note), for the unit's contact."""
    if S(ticket.state) not in ACTIVE:
        raise Refused(t("worker.stale", actor.lang, state=t(f"state.{ticket.state}", actor.lang)))
    now = deps.clock()
    if S(ticket.state) == S.ACKNOWLEDGED:
        ev = transition(s, ticket, S.IN_PROGRESS, actor, now=now, cfg=deps.sla, note=note)
    else:
        ev = record(s, ticket, actor, "note", now=now, note=note)
    await s.flush()
    for m in ib.media:
        s.add(Attachment(ticket_id=ticket.id, event_id=ev.id, channel=ctx.channel, kind=m.kind,
                         file_id=m.file_id, media_sha=m.sha256, role="progress",
                         created_at=now))
    await tell_resident(s, ticket, "resident.progress", note=note or "[图片]",
                        photos=[m.ref(ctx.channel) for m in ib.media if m.kind == "photo"][:1])
    await _tell_worker(s, ticket, "partner.worker_progress", actor, unit, note=note)
    return t("worker.progress_saved", actor.lang, number=ticket.number)


async def _tell_worker(s: AsyncSession, ticket: Ticket, key: str, actor: Actor, unit: str,
                       note: str = "", **kw: object) -> None:
    """One short note to the worker who stays responsible (a photo alone reads as [图片])."""
    if ticket.assignee_id is None:
        return
    c = await directory.contact(s, ticket.assignee_id, ticket.channel)
    if c is not None:
        enqueue_note(s, c, t(key, c.lang, number=ticket.number, unit=unit,
                             name=actor.name or "", note=note or t("partner.photo", c.lang),
                             **kw),
                     ticket.id)
