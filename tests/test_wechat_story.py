"""The whole story across WeChat's two products, over loopback HTTP: a resident on the Official
Account reports with a photo and a location; the grid worker on the WeCom app gets the card
with that photo, presses 接单 and 办结 on it; the resident is told on the account and rates,
the rating asked for after the 48-hour window by a template message.

One core, both callbacks on one server, the real senders, fake WeChat and WeCom APIs.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from config.settings import Settings
from handlers.wechat.oa import OfficialAccount
from models.enums import TicketState as S
from models.tickets import Ticket
from tests.conftest import FakeClock
from tests.contract.channels import drain, invite_code
from tests.contract.wechat import OAStack, WeChatUsers, oa_settings
from tests.contract.wecom import WeComUsers, find_button, userid_of, wecom_stack
from tests.fakes.wechat_api import FakeWeChatAPI

RESIDENT = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
NANGUAN_GCJ = ("35.954308", "111.857223")  # inside the sample county's 南关 grid, GCJ-02
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
WORKER = userid_of("worker")


async def _ticket(app_sm: object) -> Ticket:
    async with app_sm() as s:  # type: ignore[operator]
        return (await s.scalars(select(Ticket))).one()  # type: ignore[no-any-return]


async def test_oa_resident_to_wecom_worker_and_back(loaded_settings: Settings,
                                                   clock: FakeClock) -> None:
    async with FakeWeChatAPI("wx5823bf96d3bd56c7", "fake-app-secret-0123456789abcdef") as oa_api:
        oa = OfficialAccount.from_settings(oa_settings(loaded_settings, oa_api))
        assert oa is not None
        async with wecom_stack(loaded_settings, clock, others={"wechat": oa.sender},
                               mount=[oa]) as stack:
            app = stack.app
            base = stack.url.removesuffix("/wechat/wecom")
            resident = WeChatUsers(OAStack(app, oa, oa_api, f"{base}/wechat/oa", stack.http,
                                           clock))
            staff = WeComUsers(stack)
            assert await staff.say(WORKER, await invite_code(app, "worker")) == 200

            # the resident: a photo, then where it is
            media_id = oa_api.put_media(JPEG)
            answer = await resident.post(resident.xml(RESIDENT, "image", {
                "PicUrl": "http://127.0.0.1:9/never.jpg", "MediaId": media_id}))
            resident.heard(RESIDENT, answer)
            lat, lon = NANGUAN_GCJ
            answer = await resident.post(resident.xml(RESIDENT, "location", {
                "Location_X": lat, "Location_Y": lon, "Scale": "15", "Label": "南关农贸市场门口"}))
            resident.heard(RESIDENT, answer)
            await drain(app, clock)
            tk = await _ticket(app.deps.sm)
            assert tk.state == S.ASSIGNED and tk.datum == "gcj02"
            assert any("南关网格员" in x for x in oa_api.texts(RESIDENT))

            # the worker on WeCom: the photo (uploaded to WeCom from our store), then the card
            to_worker = stack.api.to(WORKER)
            images = [b["image"]["media_id"] for b in to_worker if b["msgtype"] == "image"]
            assert [stack.api.media[m] for m in images] == [JPEG]
            found = find_button(stack.api, WORKER, "接单", tk.number)
            assert found is not None, stack.api.texts(WORKER)
            assert await staff.click(WORKER, *found) == 200
            await drain(app, clock)
            assert (await _ticket(app.deps.sm)).state == S.ACKNOWLEDGED
            assert any(f"{tk.number} 已由网格员" in x for x in oa_api.texts(RESIDENT))

            # two days on, outside the account's 48-hour window: 办结 on the card, then the note
            clock.advance(timedelta(hours=49).total_seconds())
            found = find_button(stack.api, WORKER, "办结", tk.number)
            assert found is not None
            assert await staff.click(WORKER, *found) == 200
            await drain(app, clock)
            assert any("请发送办结说明" in x for x in stack.api.texts(WORKER))
            assert await staff.say(WORKER, "垃圾已清运，地面已冲洗") == 200
            await drain(app, clock)
            assert (await _ticket(app.deps.sm)).state == S.RESOLVED
            templates = [b for b in oa_api.templates if b["touser"] == RESIDENT]
            assert templates, oa_api.texts(RESIDENT)
            values = " ".join(v["value"] for v in templates[-1]["data"].values())
            assert tk.number in values

            # the resident writes again (the window opens) and rates in words
            answer = await resident.say(RESIDENT, f"满意 {tk.number}")
            await drain(app, clock)
            assert (await _ticket(app.deps.sm)).state == S.CLOSED
            assert any(f"感谢评价！工单 {tk.number} 已结案。" in x
                       for x in oa_api.texts(RESIDENT))
