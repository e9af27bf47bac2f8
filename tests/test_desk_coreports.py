"""The desk and three core features, over real HTTP on 127.0.0.1 (tests/test_desk.py's
harness): co-reports (附议: their queue, merge and split through the core), 当面代报 as a
source, and partner units (转办) on the ticket page and the rates page."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.dialects import sqlite

from bot.deps import Ctx
from bot.messages import Action
from handlers.web.queues import Filters, followed_query
from handlers.web.staff import load
from models.enums import ChatKind, StaffRole
from models.enums import TicketState as S
from models.people import Identity
from models.tickets import Ticket, TicketEvent
from tests.contract.channels import drain
from tests.fakes.minimal import CHANNEL
from tests.test_desk import COORD_FN, COORD_XC, NUMBER, RESIDENT, DeskHarness, csrf_of

# the harness fixture, shared with the HTTP tests
from tests.test_desk import desk as desk
from tests.test_desk_county import PHONE, page_of

NEIGHBOUR = "r2"
LITTER = "南关农贸市场门口垃圾堆了三天没人清运"
LITTER_AGAIN = "南关农贸市场门口的垃圾还是没人管，苍蝇到处飞"
LAMP = "南关农贸市场门口的路灯坏了，晚上很黑"  # the same place, another problem: no link
HONGDA = "浮山县宏达物业有限公司"


async def neighbour_reports(h: DeskHarness, said: str = LITTER_AGAIN) -> str:
    out = await h.say(NEIGHBOUR, said, name="李大爷")
    m = NUMBER.search("\n".join(out))
    assert m, out
    return m.group(0)


async def ticket(h: DeskHarness, number: str) -> Ticket:
    async with h.app.deps.sm() as s:
        tk = await s.scalar(select(Ticket).where(Ticket.number == number))
    assert tk is not None
    return tk


async def co_reported(h: DeskHarness) -> tuple[Ticket, Ticket]:
    """A resident's report and a neighbour's of the same problem, linked by intake."""
    lead = await ticket(h, await h.report(LITTER))
    said = await h.say(NEIGHBOUR, LITTER_AGAIN, name="李大爷")
    assert any(lead.number in x for x in said), said  # told which ticket they follow
    async with h.app.deps.sm() as s:
        child = await s.scalar(select(Ticket).where(Ticket.merged_into_id == lead.id))
    assert child is not None and child.state == S.MERGED
    return lead, child


async def act(h: DeskHarness, http: aiohttp.ClientSession, tid: int, csrf: str | None,
              **form: str) -> tuple[int, str]:
    data = {**form, **({"_csrf": csrf} if csrf is not None else {})}
    async with http.post(f"{h.base}/desk/tickets/{tid}/act", data=data) as r:
        return r.status, html.unescape(await r.text())


async def events_of(h: DeskHarness, tid: int) -> int:
    async with h.app.deps.sm() as s:
        n = await s.scalar(select(func.count()).select_from(TicketEvent).where(
            TicketEvent.ticket_id == tid))
    return n or 0


@pytest.fixture
async def fn(desk: DeskHarness) -> AsyncIterator[aiohttp.ClientSession]:
    http = await desk.signed_in(await desk.link(COORD_FN))
    async with http:
        yield http


async def test_the_co_reports_queue_holds_followed_tickets_in_scope(
        desk: DeskHarness, fn: aiohttp.ClientSession) -> None:
    lead, child = await co_reported(desk)
    alone = await desk.report("北环路10号路灯不亮了")  # XC, followed by nobody
    _, queue = await page_of(fn, f"{desk.base}/desk/queue/coreports")
    rows = re.findall(r'<tr id="row-(\d+)">', queue)
    assert rows == [str(lead.id)], rows
    for before in (str(lead.id + 1), "²"):  # a page on, and a digit int() refuses
        status, older = await page_of(fn, f"{desk.base}/desk/queue/coreports?before={before}")
        assert status == 200 and lead.number in older
    _, none_older = await page_of(fn, f"{desk.base}/desk/queue/coreports?before={lead.id}")
    assert lead.number not in none_older
    assert "1 人附议" in queue and 'class="on">附议<' in queue
    # a co-report is no open work of its own
    _, open_ = await page_of(fn, f"{desk.base}/desk/queue/open")
    assert lead.number in open_ and child.number not in open_
    xc = await desk.signed_in(await desk.link(COORD_XC))
    async with xc:
        _, theirs = await page_of(xc, f"{desk.base}/desk/queue/coreports")
        assert lead.number not in theirs and "这里没有工单" in theirs
        _, open_xc = await page_of(xc, f"{desk.base}/desk/queue/open")
        assert alone in open_xc


async def test_the_co_reports_queue_reads_the_followers_index(desk: DeskHarness) -> None:
    await co_reported(desk)
    await desk.join("boss", StaffRole.CENTRE)
    async with desk.app.deps.sm() as s:
        ident = await s.scalar(select(Identity).where(Identity.user_id == "boss"))
        assert ident is not None and ident.person_id is not None
        staff = await load(s, ident.person_id, ident.id)
        assert staff is not None
        idx = desk.app.deps.county.index
        for before in (None, 10**6):
            q = followed_query(staff, Filters(), idx, desk.app.deps.sla.tz, before)
            sql = str(q.compile(dialect=sqlite.dialect(),
                                compile_kwargs={"literal_binds": True}))
            plan = [r[-1] for r in (await s.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()]
            # followers counted on the index, their leads found by id: no pass over tickets
            assert any("ix_tickets_merged_into_id" in p for p in plan), plan
            assert any("tickets USING INTEGER PRIMARY KEY" in p for p in plan), plan
            assert not [p for p in plan if re.match(r"SCAN tickets\b", p)], plan


async def test_merge_from_the_ticket_page_goes_through_the_core(
        desk: DeskHarness, fn: aiohttp.ClientSession) -> None:
    keep = await ticket(desk, await desk.report(LITTER))
    other = await ticket(desk, await neighbour_reports(desk, LAMP))
    assert other.state != S.MERGED  # another problem: intake left it alone
    status, page = await page_of(fn, f"{desk.base}/desk/tickets/{other.id}")
    assert status == 200 and 'value="merge"' in page and "合并到…" in page
    form = {"op": "merge", "arg": keep.number, "where": "page", "nonce": "m1"}
    # without the CSRF token, or with a forged one: refused, nothing changed
    assert (await act(desk, fn, other.id, None, **form))[0] == 403
    assert (await act(desk, fn, other.id, "forged", **form))[0] == 403
    assert (await ticket(desk, other.number)).state == other.state
    csrf = csrf_of(page)
    status, said = await act(desk, fn, other.id, csrf, **form)
    assert status == 200 and 'class="done"' in said, said
    assert f"已办理：已将工单 {other.number} 并入 {keep.number}，现共 2 人反映" in said
    merged = await ticket(desk, other.number)
    assert (merged.state, merged.merged_into_id) == (S.MERGED, keep.id)
    await drain(desk.app, desk.clock)
    assert any(f"与工单 {keep.number} 是同一件事，已合并办理" in x
               for x in desk.sender.texts(NEIGHBOUR)), desk.sender.texts(NEIGHBOUR)
    # the merged ticket's page names the one it follows; that one lists its co-report
    _, page = await page_of(fn, f"{desk.base}/desk/tickets/{other.id}")
    follows = re.search(r'class="follows"><a href="/desk/tickets/(\d+)">([\w-]+)</a>', page)
    assert follows and follows.groups() == (str(keep.id), keep.number), page
    assert 'value="merge"' not in page  # it follows another now
    _, page = await page_of(fn, f"{desk.base}/desk/tickets/{keep.id}")
    section = page.split('id="coreports"')[1].split("</section>")[0]
    assert other.number in section and "李大爷" in section and LAMP in section
    assert 'value="split"' in section and not PHONE.findall(page)


async def test_merge_refused_outside_ones_community_and_for_a_bad_number(
        desk: DeskHarness, fn: aiohttp.ClientSession) -> None:
    keep = await ticket(desk, await desk.report(LITTER))
    other = await ticket(desk, await neighbour_reports(desk, LAMP))
    xc_own = await ticket(desk, await desk.report("北环路10号路灯不亮了"))
    before = [await events_of(desk, t.id) for t in (keep, other, xc_own)]
    _, page = await page_of(fn, f"{desk.base}/desk/tickets/{other.id}")
    csrf = csrf_of(page)
    for typed in ("abc", "FS-2026-1", f"{keep.number}; drop", "7"):
        status, said = await act(desk, fn, other.id, csrf, op="merge", arg=typed,
                                 where="page")
        assert status == 200 and 'class="refused"' in said, said
        assert "未能办理：请填写要并入的完整工单号，例如 FS-" in said and "未作改动" in said
    status, said = await act(desk, fn, other.id, csrf, op="merge", where="page",
                             arg="FS-20200101-0001")
    assert "未能办理：没有找到工单 FS-20200101-0001" in said
    xc = await desk.signed_in(await desk.link(COORD_XC))
    async with xc:
        _, page = await page_of(xc, f"{desk.base}/desk/tickets/{xc_own.id}")
        xc_csrf = csrf_of(page)
        # another community's ticket: not even seen
        assert (await act(desk, xc, other.id, xc_csrf, op="merge", arg=keep.number))[0] == 403
        # their own ticket into one of 府南's: the core refuses
        status, said = await act(desk, xc, xc_own.id, xc_csrf, op="merge", where="page",
                                 arg=keep.number.lower())
        assert status == 200 and 'class="refused"' in said
        assert "合并和拆分由工单所在社区的工作人员或县指挥中心操作。未作改动。" in said
    after = [await ticket(desk, t.number) for t in (keep, other, xc_own)]
    assert [t.merged_into_id for t in after] == [None, None, None]
    assert [t.state for t in after] == [keep.state, other.state, xc_own.state]
    assert [await events_of(desk, t.id) for t in after] == before


async def test_the_core_refuses_forged_merge_and_split_arguments(desk: DeskHarness) -> None:
    lead, child = await co_reported(desk)
    other = await ticket(desk, await neighbour_reports(desk, LAMP))
    ctx = Ctx(CHANNEL, COORD_FN, COORD_FN, COORD_FN, ChatKind.PRIVATE, None)
    for action in (Action("merge", other.id, f"{lead.id}"),
                   Action("merge", other.id, f"{lead.number} OR 1=1"),
                   Action("merge", other.id, ""),
                   Action("merge", other.id, other.number),
                   Action("merge", other.id, child.number),
                   Action("split", child.id, "x"),
                   Action("split", other.id, "")):
        answer, done = await desk.app.core.on_action(ctx, action)
        assert not done, (action, answer)
    assert "请写上两个工单号" in (await desk.app.core.on_action(
        ctx, Action("merge", other.id, "1")))[0]
    assert (await ticket(desk, other.number)).merged_into_id is None
    assert (await ticket(desk, child.number)).merged_into_id == lead.id


async def test_split_from_the_co_reports_section(desk: DeskHarness,
                                                 fn: aiohttp.ClientSession) -> None:
    lead, child = await co_reported(desk)
    _, page = await page_of(fn, f"{desk.base}/desk/tickets/{lead.id}")
    csrf = csrf_of(page)
    form = {"op": "split", "where": "coreports", "of": str(lead.id), "nonce": "s1"}
    assert (await act(desk, fn, child.id, None, **form))[0] == 403
    assert (await act(desk, fn, child.id, csrf, **{**form, "arg": "x"}))[0] == 400
    for of in ("²", "99999999999999999999", "", str(child.id + 100)):  # odd or unseen
        assert (await act(desk, fn, child.id, csrf, **{**form, "of": of}))[0] == 403
    # a grid leader sees the section but has no button, and the core refuses the form
    await desk.join("leader", StaffRole.LEADER, grid="FN-02")
    leader = await desk.signed_in(await desk.link("leader"))
    async with leader:
        _, theirs = await page_of(leader, f"{desk.base}/desk/tickets/{lead.id}")
        assert child.number in theirs and 'value="split"' not in theirs
        status, said = await act(desk, leader, child.id, csrf_of(theirs), **form)
        assert status == 200 and "合并和拆分由工单所在社区的工作人员" in said, said
    assert (await ticket(desk, child.number)).state == S.MERGED
    status, said = await act(desk, fn, child.id, csrf, **form)
    assert status == 200 and said.lstrip().startswith(
        '<section id="coreports" class="coreports done"')
    assert f"已办理：已拆分：工单 {child.number} 单独办理，已派给" in said
    assert f'id="co-{child.id}"' not in said and "还没有别的居民附议这张工单" in said
    split = await ticket(desk, child.number)
    assert split.merged_into_id is None and split.state == S.ASSIGNED
    await drain(desk.app, desk.clock)
    assert any(f"您反映的问题已单独立为工单 {child.number}" in x
               for x in desk.sender.texts(NEIGHBOUR)), desk.sender.texts(NEIGHBOUR)
    _, queue = await page_of(fn, f"{desk.base}/desk/queue/coreports")
    assert lead.number not in queue
    # pressed again (a stale page): refused with the reason, the section as it is
    status, said = await act(desk, fn, child.id, csrf, **{**form, "nonce": "s2"})
    assert "未能办理：工单" in said and "没有并入别的工单" in said


async def test_face_to_face_reports_are_a_source_of_their_own(
        desk: DeskHarness, fn: aiohttp.ClientSession) -> None:
    chat = await desk.report(LITTER)
    filed = await desk.say(COORD_FN, "代报 王大爷 13800000000 南关农贸市场门口的路灯坏了")
    m = NUMBER.search("\n".join(filed))
    assert m, filed
    offline = m.group(0)
    status, queue = await page_of(fn, f"{desk.base}/desk/queue/open?source=offline")
    assert status == 200 and offline in queue and chat not in queue
    assert '<option value="offline" selected>当面代报</option>' in queue
    assert '<option value="wecom_resident" >居民上报</option>' in queue
    _, everyone = await page_of(fn, f"{desk.base}/desk/queue/open")
    assert offline in everyone and chat in everyone
    tid = await desk.ticket_id(offline)
    _, page = await page_of(fn, f"{desk.base}/desk/tickets/{tid}")
    assert '<dd class="source">当面代报</dd>' in page and "王大爷" in page
    for body in (queue, everyone, page):
        assert "13800000000" not in body and not PHONE.findall(body)


async def test_partner_units_on_the_ticket_and_the_rates_page(
        desk: DeskHarness, fn: aiohttp.ClientSession) -> None:
    number = await desk.report(LITTER)
    said = await desk.say(COORD_FN, f"转办 {number} 宏达物业 请今天清运")
    assert any(f"{number} → {HONGDA}" in x for x in said), said
    tid = await desk.ticket_id(number)
    _, page = await page_of(fn, f"{desk.base}/desk/tickets/{tid}")
    assert f'<dd class="partner">{HONGDA}</dd>' in page
    status, rates = await page_of(fn, f"{desk.base}/desk/rates?by=partner")
    assert status == 200 and '<option value="partner" selected>协同单位</option>' in rates
    assert "<th>协同单位</th>" in rates and f'<td class="text">{HONGDA}</td>' in rates
    assert "转办合计" in rates
    _, by_community = await page_of(fn, f"{desk.base}/desk/rates")
    assert HONGDA not in by_community
    async with fn.get(f"{desk.base}/desk/rates.xlsx?by=partner") as r:
        assert r.status == 200 and (await r.read())[:2] == b"PK"


async def test_the_resident_whose_report_was_merged_is_told_once(
        desk: DeskHarness, fn: aiohttp.ClientSession) -> None:
    """The resident of the ticket kept hears nothing of the merge; the merged one's, once."""
    keep = await ticket(desk, await desk.report(LITTER))
    other = await ticket(desk, await neighbour_reports(desk, LAMP))
    mine, theirs = len(desk.sender.texts(RESIDENT)), len(desk.sender.texts(NEIGHBOUR))
    _, page = await page_of(fn, f"{desk.base}/desk/tickets/{other.id}")
    form = {"op": "merge", "arg": keep.number, "where": "page", "nonce": "once"}
    for _ in range(2):  # a double click acts once
        assert (await act(desk, fn, other.id, csrf_of(page), **form))[0] == 200
    await drain(desk.app, desk.clock)
    told = [x for x in desk.sender.texts(NEIGHBOUR)[theirs:] if "已合并办理" in x]
    assert len(told) == 1 and keep.number in told[0]
    assert not [x for x in desk.sender.texts(RESIDENT)[mine:] if "合并" in x]
