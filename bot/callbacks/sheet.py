"""The week's call sheet (回访表), an XLSX for the centre: the one place phones are shown."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.callbacks.week import Week
from bot.notify.texts import scoped
from bot.reports.brief import SUMMARY_CHARS, mask_phones
from bot.reports.sheet import title, write_rows
from bot.reports.table import Cell, Kind
from models.callbacks import CallbackCall, CallbackHousehold
from models.county import Community, Grid
from models.tickets import Ticket

# 户号 (H + the household's id) names a household in `回访 H12 …` whatever week it is
HEADERS = ["回访编号", "户号", "社区", "网格", "门牌地址", "姓名", "电话", "工单编号", "工单摘要",
           "接通情况", "对社区", "对网格员", "对业委会", "备注"]
KINDS: list[Kind] = ["text"] * len(HEADERS)
PHONE_COLUMN = HEADERS.index("电话") + 1
TOP = 4  # headers below the title and its note


@dataclass(frozen=True, slots=True)
class Line:
    number: str
    household: str
    community: str
    grid: str
    address: str
    name: str
    phone: str
    ticket: str
    summary: str


async def lines(s: AsyncSession, week: Week) -> list[Line]:
    rows = await s.execute(
        select(CallbackCall.number, CallbackCall.household_id, Community.name, Grid.name,
               CallbackHousehold.address, CallbackHousehold.name, CallbackHousehold.phone,
               Ticket.number, Ticket.text)
        .join(CallbackHousehold, CallbackHousehold.id == CallbackCall.household_id)
        .join(Grid, Grid.id == CallbackCall.grid_id)
        .join(Community, Community.id == CallbackCall.community_id)
        .outerjoin(Ticket, Ticket.id == CallbackCall.ticket_id)
        .where(CallbackCall.week == str(week)).order_by(CallbackCall.number))
    return [Line(number, f"H{household}", scoped(community, "社区"), scoped(grid, "网格"),
                 address, name, phone, ticket or "", mask_phones(text or "")[:SUMMARY_CHARS])
            for number, household, community, grid, address, name, phone, ticket, text in rows]


def write_call_sheet(week: Week, found: list[Line], path: Path, tz: ZoneInfo) -> None:
    wb = Workbook()
    ws = wb.active
    assert isinstance(ws, Worksheet)  # a new workbook always has its first sheet
    ws.title = "回访表"
    monday = week.monday()
    title(ws, f"电话回访表　{week}（{monday:%m月%d日}起一周）",
          "电话号码只供指挥中心回访使用，请勿转发。接通情况填 已接通 或 未接通；"
          "评价填 满意、基本满意、不满意，没有业委会的填 无。")
    rows: list[list[Cell]] = [
        [x.number, x.household, x.community, x.grid, x.address, x.name, x.phone, x.ticket,
         x.summary, "", "", "", "", ""] for x in found]
    write_rows(ws, HEADERS, KINDS, rows, first_row=TOP)
    if found:
        last = TOP + len(found)
        reached = DataValidation(type="list", formula1='"已接通,未接通"', allow_blank=True)
        rated = DataValidation(type="list", formula1='"满意,基本满意,不满意,无"',
                               allow_blank=True)
        ws.add_data_validation(reached)
        ws.add_data_validation(rated)
        reach, rate_from, rate_to = (get_column_letter(HEADERS.index(h) + 1)
                                     for h in ("接通情况", "对社区", "对业委会"))
        reached.add(f"{reach}{TOP + 1}:{reach}{last}")
        rated.add(f"{rate_from}{TOP + 1}:{rate_to}{last}")
    ws.freeze_panes = f"B{TOP + 1}"
    wb.save(path)
