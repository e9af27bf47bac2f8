"""Compose the outgoing messages a ticket change causes (rows for the outbox)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from bot.messages import Action, Button, Outbound
from bot.notify.texts import category_label, t
from bot.people.directory import Contact
from bot.tickets.sla import URGENT, SlaConfig, quiet_until
from models.enums import ACTIVE, ChatKind, TicketState
from models.tickets import NewTicket, Ticket

FollowLink = Callable[[str, str], str | None]  # (channel, ticket number) -> deep link


@lru_cache(maxsize=1024)  # a batch's cards share their deadlines
def local(dt: datetime | None, tz: ZoneInfo) -> str:
    return dt.astimezone(tz).strftime("%m-%d %H:%M") if dt else "—"


def worker_buttons(ticket_id: int, lang: str, state: str) -> list[list[Button]]:
    if state not in ACTIVE:
        return []
    first = [Button(t("btn.resolve", lang), Action("resolve", ticket_id))]
    if state in (TicketState.ASSIGNED, TicketState.REOPENED):
        first.insert(0, Button(t("btn.ack", lang), Action("ack", ticket_id)))
    return [first, [
        Button(t("btn.return", lang), Action("return", ticket_id)),
        Button(t("btn.transfer", lang), Action("transfer", ticket_id)),
        Button(t("btn.category", lang), Action("cat", ticket_id)),
    ]]


def worker_card(
    ticket: Ticket | NewTicket, to: Contact, grid_label: str, tz: ZoneInfo,
    title_key: str = "card.title",
    photos: list[str] | None = None,
) -> Outbound | None:
    if to.chat_id is None or to.channel is None:
        return None
    lang = to.lang
    title = t(title_key, lang, number=ticket.number)
    if getattr(ticket, "priority", "normal") == "urgent":
        title = t("card.urgent", lang) + title
    text = "\n".join([
        title,
        t("card.body", lang,
          category=category_label(ticket.category, lang),
          place=ticket.place_text or grid_label,
          text=ticket.text,
          reporter=ticket.reporter_name or "—",
          ack_due=local(ticket.ack_due_at, tz),
          resolve_due=local(ticket.resolve_due_at, tz)),
    ])
    if photos and len(photos) > 1:
        text += "\n" + t("card.photos", lang, n=len(photos))
    return Outbound(
        channel=to.channel, chat_id=to.chat_id, chat_kind=ChatKind.PRIVATE, text=text,
        buttons=worker_buttons(ticket.id, lang, ticket.state), photos=list(photos or []),
        ticket_id=ticket.id, remember=True,
    )


def quietly(msg: Outbound, priority: str, now: datetime, cfg: SlaConfig) -> Outbound:
    """A notice to staff about a normal ticket waits out the quiet hours (QUIET_HOURS);
    urgent ones wake them."""
    if priority != URGENT:
        msg.hold_until = quiet_until(now, cfg)
    return msg


def staff_note(to: Contact, text: str, ticket_id: int | None,
               buttons: list[list[Button]] | None = None) -> Outbound | None:
    if to.chat_id is None or to.channel is None:
        return None
    return Outbound(channel=to.channel, chat_id=to.chat_id, chat_kind=ChatKind.PRIVATE,
                    text=text, ticket_id=ticket_id, buttons=buttons or [])


def to_resident(
    ticket: Ticket | NewTicket, private_chat_id: str | None, text: str,
    buttons: list[list[Button]] | None = None, remember: bool = False,
) -> Outbound:
    """Privately once the resident has started the bot; otherwise a reply in their group."""
    if private_chat_id is not None:
        return Outbound(channel=ticket.channel, chat_id=private_chat_id,
                        chat_kind=ChatKind.PRIVATE, text=text, buttons=buttons or [],
                        ticket_id=ticket.id, remember=remember)
    kind = ChatKind(ticket.chat_kind)
    return Outbound(
        channel=ticket.channel, chat_id=ticket.chat_id, chat_kind=kind, text=text,
        buttons=buttons or [], reply_to=ticket.source_message_id, ticket_id=ticket.id,
        mention_user_id=ticket.reporter_user_id if kind == ChatKind.GROUP else None,
        mention_name=ticket.reporter_name if kind == ChatKind.GROUP else None,
        remember=remember,
    )


def rating_buttons(ticket_id: int, lang: str) -> list[list[Button]]:
    return [[
        Button(t("btn.satisfied", lang), Action("rate", ticket_id, "satisfied")),
        Button(t("btn.fairly", lang), Action("rate", ticket_id, "fairly")),
        Button(t("btn.unsatisfied", lang), Action("rate", ticket_id, "unsatisfied")),
    ]]


def place_buttons(ticket_id: int, candidates: list[tuple[str, str]], lang: str
                  ) -> list[list[Button]]:
    rows = [[Button(label, Action("place", ticket_id, code))] for code, label in candidates[:8]]
    rows.append([Button(t("btn.other_place", lang), Action("place", ticket_id, "-"))])
    return rows


def location_request(ticket: Ticket | NewTicket, private_chat_id: str, lang: str) -> Outbound:
    """Platforms can ask for a location only in a private chat, and only as its own keyboard."""
    return Outbound(channel=ticket.channel, chat_id=private_chat_id, chat_kind=ChatKind.PRIVATE,
                    text=t("ticket.share_location_hint", lang),
                    buttons=[[Button(t("btn.share_location", lang), request_location=True)]],
                    ticket_id=ticket.id)
