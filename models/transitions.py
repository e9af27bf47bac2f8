"""The one table of allowed ticket state changes: (from, to) -> roles allowed."""

from __future__ import annotations

from models.enums import Role
from models.enums import TicketState as S

R = Role
STAFF = frozenset({R.WORKER, R.LEADER, R.COORDINATOR, R.CENTRE})
MANAGERS = frozenset({R.LEADER, R.COORDINATOR, R.CENTRE})

TRANSITIONS: dict[tuple[S, S], frozenset[Role]] = {
    # routing
    (S.REPORTED, S.ASSIGNED): frozenset({R.SYSTEM, R.RESIDENT, R.COORDINATOR, R.CENTRE}),
    (S.REPORTED, S.REJECTED): frozenset({R.COORDINATOR, R.CENTRE}),
    # the worker's part
    # a partner unit's contact (转办) acts on the ticket too; its worker stays responsible
    (S.ASSIGNED, S.ACKNOWLEDGED): frozenset({R.WORKER, R.LEADER, R.PARTNER}),
    (S.ASSIGNED, S.RETURNED): STAFF,
    (S.ASSIGNED, S.ASSIGNED): STAFF,  # transfer to another grid / worker
    (S.ASSIGNED, S.RESOLVED): frozenset({R.WORKER, R.LEADER, R.PARTNER}),
    (S.ACKNOWLEDGED, S.IN_PROGRESS): frozenset({R.WORKER, R.LEADER, R.PARTNER}),
    (S.ACKNOWLEDGED, S.RESOLVED): frozenset({R.WORKER, R.LEADER, R.PARTNER}),
    (S.ACKNOWLEDGED, S.RETURNED): STAFF,
    (S.ACKNOWLEDGED, S.ASSIGNED): STAFF,
    (S.IN_PROGRESS, S.RESOLVED): frozenset({R.WORKER, R.LEADER, R.PARTNER}),
    (S.IN_PROGRESS, S.RETURNED): STAFF,
    (S.IN_PROGRESS, S.ASSIGNED): STAFF,
    # back to routing / the coordinators
    (S.RETURNED, S.ASSIGNED): frozenset({R.COORDINATOR, R.CENTRE, R.LEADER}),
    (S.RETURNED, S.REJECTED): frozenset({R.COORDINATOR, R.CENTRE}),
    # the resident's verdict (the grid leader's, on a ticket staff reported: actions._check_rater)
    (S.RESOLVED, S.CLOSED): frozenset({R.RESIDENT, R.SYSTEM, R.LEADER, R.COORDINATOR, R.CENTRE}),
    # a call-back (回访) found the resident not satisfied after all
    (S.CLOSED, S.REOPENED): frozenset({R.CENTRE}),
    (S.RESOLVED, S.REOPENED): frozenset({R.RESIDENT, R.LEADER, R.COORDINATOR, R.CENTRE}),
    (S.REOPENED, S.ASSIGNED): frozenset({R.SYSTEM, R.LEADER, R.COORDINATOR, R.CENTRE}),
    (S.REOPENED, S.ACKNOWLEDGED): frozenset({R.WORKER, R.LEADER}),
    (S.REOPENED, S.RETURNED): STAFF,
    # managers may close or reject what no longer needs work
    (S.ASSIGNED, S.REJECTED): frozenset({R.COORDINATOR, R.CENTRE}),
    # co-reports (附议): intake links a report to an open one at the same place (system);
    # managers merge by hand (合并) and split one off again (拆分), back to routing
    **{(frm, S.MERGED): frozenset({R.SYSTEM, R.COORDINATOR, R.CENTRE}) for frm in (
        S.REPORTED, S.ASSIGNED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.RETURNED, S.REOPENED)},
    (S.MERGED, S.REPORTED): frozenset({R.COORDINATOR, R.CENTRE}),
}


def allowed(frm: S, to: S, roles: frozenset[Role] | set[Role]) -> bool:
    return bool(TRANSITIONS.get((frm, to), frozenset()) & set(roles))
