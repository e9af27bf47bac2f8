"""`run_bot.py wecom sync`: the county's staff bound to WeCom userids by mobile, against a fake
WeCom directory on 127.0.0.1; idempotent, clashes reported, no phone number printed."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from config.settings import Settings
from handlers.wecom.directory import mobile, run_sync
from models.db import make_engine, make_sessionmaker
from models.people import Identity, Person
from tests.contract.wecom import AGENT_ID, CORP_ID, SECRET, wecom_settings
from tests.fakes.wecom_api import GET_USERID, FakeWeCom

# three of the sample county's staff are in the corp's directory (config/sample/grids.yaml)
KNOWN = {"13903570101": "wangjianjun", "13803570102": "lixiuying", "13703570103": "zhangzhigang"}


async def _bound(settings: Settings) -> dict[str, str]:
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as s:
            rows = (await s.execute(select(Person.name, Identity.user_id).join(
                Identity, Identity.person_id == Person.id).where(
                Identity.channel == "wecom"))).all()
    finally:
        await engine.dispose()
    return {name: user for name, user in rows}


async def test_staff_are_bound_once_and_numbers_stay_unprinted(
        loaded_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    async with FakeWeCom(CORP_ID, SECRET, AGENT_ID, users=dict(KNOWN)) as api:
        settings = wecom_settings(loaded_settings, api)
        assert await run_sync(settings) == 0
        first = capsys.readouterr().out
        assert await _bound(settings) == {"王建军": "wangjianjun", "李秀英": "lixiuying",
                                          "张志刚": "zhangzhigang"}
        assert "新绑定 3 人" in first
        assert not re.search(r"1[3-9]\d{9}", first)  # names, never mobile numbers
        asked = len(api.calls_to(GET_USERID))

        assert await run_sync(settings) == 0  # again: nothing asked for those three
        second = capsys.readouterr().out
        assert "新绑定 0 人，已绑定 3 人" in second
        assert len(api.calls_to(GET_USERID)) == asked


async def test_a_userid_bound_to_someone_else_is_a_clash_not_a_move(
        loaded_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    async with FakeWeCom(CORP_ID, SECRET, AGENT_ID,
                         users={"13903570101": "shared", "13803570102": "shared"}) as api:
        settings = wecom_settings(loaded_settings, api)
        assert await run_sync(settings) == 0
        out = capsys.readouterr().out
        assert list((await _bound(settings)).values()) == ["shared"]
        assert "冲突 1 人" in out


async def test_wecom_unreachable_stops_with_one_line_and_keeps_what_was_bound(
        loaded_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    async with FakeWeCom(CORP_ID, SECRET, AGENT_ID, users=dict(KNOWN)) as api:
        settings = wecom_settings(loaded_settings, api)
        api.fail_http(GET_USERID, 502, times=1)
        assert await run_sync(settings) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "企业微信同步中断" in err[0] and "Traceback" not in err[0]
        assert await run_sync(settings) == 0
        assert len(await _bound(settings)) == 3


def test_only_mainland_mobiles_are_looked_up() -> None:
    assert mobile("13903570101") == "13903570101"
    assert mobile("+86 139-0357-0101") == "13903570101"
    assert mobile("0357-7010101") is None  # a landline finds nobody
    assert mobile("") is None


async def test_a_partner_units_contact_in_the_corp_is_bound_too(
        loaded_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    """转办: partners.csv's contacts act on tickets handed to their unit; one who is in the
    corp's WeCom directory is bound like staff (config/sample/partners.csv: 张经理)."""
    async with FakeWeCom(CORP_ID, SECRET, AGENT_ID,
                         users={**KNOWN, "17000009001": "zhangjingli"}) as api:
        settings = wecom_settings(loaded_settings, api)
        assert await run_sync(settings) == 0
        assert (await _bound(settings))["张经理"] == "zhangjingli"
        assert "17000009001" not in capsys.readouterr().out
