"""The morning digest: once a day from DIGEST_AT, one message per coordinator and centre
person, with yesterday's counts per community."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.notify import digest
from models.enums import StaffRole
from tests.conftest import SHANGHAI
from tests.test_telegram_flow import (
    CENTRE,
    COORD,
    GROUP,
    RESIDENT,
    WORKER,
    Flow,
    invite,
    report,
)
from tests.test_telegram_flow import flow as flow  # fixtures
from tests.test_telegram_flow import staffed as staffed

BOTH = 530  # coordinates 府南 and 西城
HINT = "发送“超时”查看超时工单，发送“待分派”查看待分派工单。"


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
async def crew(staffed: Flow) -> Flow:
    for user, role, community in ((BOTH, StaffRole.COORDINATOR, "FN"),
                                  (BOTH, StaffRole.COORDINATOR, "XC"),
                                  (CENTRE, StaffRole.CENTRE, None)):
        code = await invite(staffed.tg, role, community=community)
        await staffed.say(user, f"/start {code}")
    await staffed.deliver()
    staffed.clear()
    return staffed


def digests(flow: Flow, user: int) -> list[str]:
    return [x for x in flow.texts(user) if x.startswith("【每日简报】")]


async def a_tuesday(flow: Flow) -> None:
    """Tuesday 3 March: 府南 gets four reports (one acknowledged in time, one late, one
    resolved and rated 满意, one at 23:50), 西城 one; a 府南 ticket from Monday is still
    unacknowledged; one more 府南 report comes ten minutes into Wednesday."""
    late = await report(flow, "报事 南关农贸市场门口垃圾堆了三天没人清运")
    rated = await report(flow, "报事 南关农贸市场门口路灯坏了")
    on_time = await report(flow, "报事 南关农贸市场门口摊位占道")
    await report(flow, "报事 西关小区门口垃圾没人清运")
    await flow.say(WORKER, f"接单 {on_time.number}")
    await flow.say(WORKER, f"办结 {rated.number} 路灯已换")
    await flow.deliver()
    await flow.press(RESIDENT, GROUP, "满意", f"工单 {rated.number} 已办结")
    flow.tg.clock.now = sh(2026, 3, 3, 12, 30)  # the 2 working hours ran out at 12:00
    await flow.say(WORKER, f"接单 {late.number}")
    await flow.deliver()
    flow.tg.clock.now = sh(2026, 3, 3, 23, 50)  # still Tuesday, local time
    await report(flow, "报事 南关农贸市场门口的路面塌了一块")
    flow.tg.clock.now = sh(2026, 3, 4, 0, 10)  # Wednesday already
    await report(flow, "报事 南关农贸市场门口水管漏水")


async def test_once_a_day_one_message_each_with_the_right_counts(crew: Flow) -> None:
    flow = crew
    flow.tg.clock.now = sh(2026, 3, 2, 9, 0)  # Monday: a ticket left unacknowledged
    await report(flow, "报事 南关农贸市场门口下水道堵了")
    flow.tg.clock.now = sh(2026, 3, 3, 10, 0)
    await a_tuesday(flow)
    deps = flow.tg.app.deps

    flow.tg.clock.now = sh(2026, 3, 4, 8, 29)
    assert await digest.send_if_due(deps) == 0  # not yet
    flow.tg.clock.now = sh(2026, 3, 4, 8, 31)
    # two processes at once: one of them sends
    sent = await asyncio.gather(digest.send_if_due(deps), digest.send_if_due(deps))
    assert sorted(sent) == [0, 3]  # 周主任, the coordinator of both, the centre
    assert await digest.send_if_due(deps) == 0
    await flow.deliver()

    fn = ("府南社区：新报 4，接单超时 1，超时未办 1，办结 1，评价 1"
          "（满意 1、基本满意 0、不满意 0）")
    xc = "西城社区：新报 1，接单超时 0，超时未办 1，办结 0，评价 0（满意 0、基本满意 0、不满意 0）"
    assert digests(flow, COORD) == [f"【每日简报】2026-03-03\n{fn}\n{HINT}"]
    [both] = digests(flow, BOTH)
    assert sorted(both.split("\n")) == sorted(["【每日简报】2026-03-03", fn, xc, HINT])
    county = ("全县：新报 5，接单超时 1，超时未办 2，办结 1，评价 1"
              "（满意 1、基本满意 0、不满意 0）")
    [centre] = digests(flow, CENTRE)
    assert centre.split("\n")[:2] == ["【每日简报】2026-03-03", county]
    assert fn in centre and xc in centre
    assert digests(flow, WORKER) == []

    flow.tg.clock.now = sh(2026, 3, 4, 20, 0)  # later the same day: nothing more
    assert await digest.send_if_due(deps) == 0
    flow.tg.clock.now = sh(2026, 3, 5, 8, 30)  # the next morning: Wednesday's numbers
    assert await digest.send_if_due(deps) == 3
    await flow.deliver()
    assert digests(flow, COORD)[-1] == (
        "【每日简报】2026-03-04\n府南社区：新报 1，接单超时 0，超时未办 3，办结 0，评价 0"
        f"（满意 0、基本满意 0、不满意 0）\n{HINT}")


async def test_a_late_start_still_sends_that_days_digest_once(crew: Flow) -> None:
    flow = crew
    deps = flow.tg.app.deps
    flow.tg.clock.now = sh(2026, 3, 4, 15, 0)  # started in the afternoon
    assert await digest.send_if_due(deps) == 3
    flow.tg.clock.advance(timedelta(minutes=1).total_seconds())
    assert await digest.send_if_due(deps) == 0
