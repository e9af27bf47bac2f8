"""lifecycle is the only writer of a ticket's state, placement and deadlines.

Read from the source: any assignment to one of these attributes, and any UPDATE of the
tickets table, outside bot/tickets/lifecycle.py fails this test. Creating a ticket (NewTicket(...)
keyword arguments) is not an assignment: its state and deadlines still come from
lifecycle.opening.
"""

from __future__ import annotations

import ast
from pathlib import Path

from models.tickets import Ticket

REPO = Path(__file__).resolve().parent.parent
OWNER = REPO / "bot" / "tickets" / "lifecycle.py"
GUARDED = {
    "state", "grid_id", "community_id", "assignee_id", "unrouted", "route_status",
    "escalation_at", "escalation_level", "last_escalated_at", "route_due_at", "ack_due_at",
    "resolve_due_at", "confirm_due_at", "assigned_at", "acknowledged_at", "resolved_at",
    "closed_at", "priority", "merged_into_id",
}


def _sources() -> list[Path]:
    return [p for d in ("bot", "handlers") for p in (REPO / d).rglob("*.py") if p != OWNER]


def _writes(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        for tgt in targets:
            for sub in ast.walk(tgt):
                if isinstance(sub, ast.Attribute) and sub.attr in GUARDED \
                        and isinstance(sub.ctx, ast.Store) \
                        and not (isinstance(sub.value, ast.Name) and sub.value.id == "self"):
                    found.append((node.lineno, sub.attr))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "update" and node.args \
                and isinstance(node.args[0], ast.Name) and node.args[0].id == "Ticket":
            found.append((node.lineno, "update(Ticket)"))
    return found


def test_the_guarded_columns_exist() -> None:
    assert set(Ticket.__table__.columns.keys()) >= GUARDED


def test_nothing_outside_lifecycle_writes_state_placement_or_deadlines() -> None:
    offenders = [f"{p.relative_to(REPO)}:{line}: {what}" for p in _sources()
                 for line, what in _writes(ast.parse(p.read_text(encoding="utf-8")))]
    assert offenders == []


def test_the_check_sees_a_write() -> None:
    sample = "def f(ticket):\n    ticket.escalation_at = None\n    update(Ticket).values()\n"
    assert _writes(ast.parse(sample)) == [(2, "escalation_at"), (3, "update(Ticket)")]
