"""The three rates by partner unit (转办): only tickets handed to a partner, each counted under
the partner it is with now. One `rates.compute` per partner with a handed ticket in the period,
narrowed by `Scope.partner_id` (tickets.partner_id is indexed), so the figures are the same
definitions as every other grouping."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from bot.reports.period import Period
from bot.reports.rates import Counts, compute, total
from bot.reports.ratings import SOURCES, TICKETS, RatingSource
from bot.reports.scope import Scope


def by_partner(conn: Connection, period: Period, as_of: datetime,
               sources: Sequence[RatingSource] = SOURCES) -> dict[int | None, Counts]:
    t = TICKETS.c
    ids = conn.execute(select(t.partner_id).where(t.partner_id.is_not(None),
                                                  *Scope(period).where(TICKETS))
                       .distinct().order_by(t.partner_id)).scalars().all()
    return {pid: total(compute(conn, Scope(period, partner_id=pid), as_of, sources).values())
            for pid in ids}
