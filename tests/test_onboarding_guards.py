"""Invite guessing is throttled, a group is re-bound only by its own staff, names read right."""

from __future__ import annotations

from sqlalchemy import select, update

from models.county import Community, Grid
from models.enums import StaffRole
from models.people import ChatBinding, Identity
from tests.test_telegram_flow import (
    COORD,
    GROUP,
    WORKER,
    Flow,
    invite,
    onboard,
    report,
)
from tests.test_telegram_flow import flow as flow  # fixtures

OTHER_COORD = 520


async def test_guessing_invite_codes_is_throttled(flow: Flow) -> None:
    for i in range(8):
        await flow.say(WORKER, f"/start WRONG{i:05d}")
    good = await invite(flow.tg, StaffRole.WORKER, grid="FN-02")
    await flow.say(WORKER, f"/start {good}")  # even a right code waits out the cool-down
    await flow.deliver()
    said = flow.texts(WORKER)
    assert sum("邀请码无效" in x for x in said) == 5, said
    assert sum("请 10 分钟后再试" in x for x in said) == 4, said
    async with flow.tg.app.deps.sm() as s:
        ident = await s.scalar(select(Identity).where(Identity.user_id == str(WORKER)))
    assert ident is not None and ident.person_id is None

    flow.tg.clock.advance(minutes=11)
    flow.clear()
    await flow.say(WORKER, f"/start {good}")
    await flow.deliver()
    assert any("绑定成功" in x for x in flow.texts(WORKER)), flow.texts(WORKER)


async def test_only_the_groups_own_staff_or_the_centre_may_rebind_it(flow: Flow) -> None:
    await onboard(flow, COORD)
    await flow.say(COORD, "/bind FN-02", chat=GROUP)
    # a coordinator of another community tries to take the group over
    code = await invite(flow.tg, StaffRole.COORDINATOR, community="XC")
    await flow.say(OTHER_COORD, f"/start {code}")
    await flow.deliver()
    flow.clear()
    await flow.say(OTHER_COORD, "/bind XC", chat=GROUP)
    await flow.deliver()
    assert flow.texts(GROUP) == ["本群已绑定到 南关网格，只有该社区的工作人员或指挥中心可以改绑。"]
    async with flow.tg.app.deps.sm() as s:
        binding = await s.scalar(select(ChatBinding))
        grid = await s.scalar(select(Grid).where(Grid.code == "FN-02"))
    assert binding is not None and grid is not None and binding.grid_id == grid.id

    # the group's own coordinator moves it, and the group is told where it was
    flow.clear()
    await flow.say(COORD, "/bind FN-03", chat=GROUP)
    await flow.deliver()
    assert flow.texts(GROUP) == ["本群原绑定 南关网格，现已改绑到 社岭网格。"
                                 "群里@我、回复我，或以“报事”开头的消息会生成工单。"]


async def test_a_county_name_that_has_its_kind_word_is_not_doubled(flow: Flow) -> None:
    async with flow.tg.app.deps.sm() as s, s.begin():
        await s.execute(update(Grid).where(Grid.code == "FN-02").values(name="南关网格"))
        await s.execute(update(Community).where(Community.code == "FN").values(name="府南社区"))
    await flow.tg.app.deps.county.refresh(force=True)
    await onboard(flow, COORD)
    code = await invite(flow.tg, StaffRole.WORKER, grid="FN-02")
    await flow.say(WORKER, f"/start {code}")
    await flow.say(COORD, "/bind FN", chat=GROUP)
    await flow.deliver()
    assert flow.texts(WORKER) == ["绑定成功：您现在是 南关网格 的网格员。"]
    assert flow.texts(GROUP)[0].startswith("本群已绑定到 府南社区。")
    flow.clear()
    tk = await report(flow)
    receipt = flow.texts(GROUP)[-1]
    assert tk.number in receipt and "已派给南关网格员处理" in receipt
    assert "网格网格" not in receipt and "社区社区" not in "".join(flow.texts(WORKER))
