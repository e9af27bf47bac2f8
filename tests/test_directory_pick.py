"""Which of a person's accounts the service writes to first: never one that can only answer."""

from __future__ import annotations

from bot.people.directory import _pick


def _choose(accounts: list[tuple[str, str | None]], prefer: str | None) -> str | None:
    best = None
    for channel, chat in accounts:
        best = _pick(best, 1, "王建军", channel, chat, None, prefer)
    assert best is not None
    return best.channel


def test_the_preferred_reachable_account_wins() -> None:
    assert _choose([("telegram", "1"), ("wecom", "wjj")], "wecom") == "wecom"
    assert _choose([("wecom", "wjj"), ("telegram", "1")], "wecom") == "wecom"
    assert _choose([("wecom", None), ("telegram", "1")], "wecom") == "telegram"


def test_a_reply_only_account_is_used_only_when_there_is_no_other() -> None:
    # a staff member who redeemed a code in the smart robot's single chat, and has the app
    assert _choose([("wecom_robot", "wjj"), ("wecom", "wjj")], "wecom_robot") == "wecom"
    assert _choose([("wecom", "wjj"), ("wecom_robot", "wjj")], "wecom_robot") == "wecom"
    assert _choose([("wecom_robot", "wjj")], "wecom") == "wecom_robot"


def test_oversight_is_community_for_a_coordinator_grid_for_a_leader_all_for_the_centre() -> None:
    from bot.people.directory import Oversight
    from models.enums import StaffRole
    from models.people import StaffAssignment
    from models.tickets import Ticket

    def post(role: StaffRole, grid: int | None = None, community: int | None = None
             ) -> StaffAssignment:
        return StaffAssignment(person_id=1, role=role.value, grid_id=grid,
                               community_id=community, active=True)

    here, elsewhere = Ticket(community_id=1, grid_id=11), Ticket(community_id=2, grid_id=21)
    coord = Oversight.of([post(StaffRole.COORDINATOR, community=1)])
    leader = Oversight.of([post(StaffRole.LEADER, grid=21)])
    worker = Oversight.of([post(StaffRole.WORKER, grid=11)])
    centre = Oversight.of([post(StaffRole.CENTRE)])
    assert (coord.covers(here), coord.covers(elsewhere)) == (True, False)
    assert (leader.covers(here), leader.covers(elsewhere)) == (False, True)
    assert not worker.any() and not worker.covers(here)
    assert centre.covers(here) and centre.covers(elsewhere)
