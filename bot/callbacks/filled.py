"""A filled-in call sheet read back: one result per row the centre filled, checked first.

Every row is checked before anything is recorded, so a sheet with a mistake records nothing
and the message names each row to fix.
"""

from __future__ import annotations

from pathlib import Path

from bot.callbacks.sheet import HEADERS, TOP
from bot.callbacks.words import NONE, Result
from models.enums import Satisfaction

_RATINGS = {"满意": Satisfaction.SATISFIED.value, "基本满意": Satisfaction.FAIRLY.value,
            "不满意": Satisfaction.UNSATISFIED.value, "无": NONE, "": NONE}
_COL = {h: i for i, h in enumerate(HEADERS)}


def _text(v: object) -> str:
    return "" if v is None else str(v).strip()


def read_filled(path: Path) -> list[Result]:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        rows = list(wb.worksheets[0].iter_rows(min_row=TOP, values_only=True))
    finally:
        wb.close()
    if not rows or [_text(v) for v in rows[0][:len(HEADERS)]] != HEADERS:
        raise ValueError(f"{path.name} 不是回访表（第 {TOP} 行应是表头：{'、'.join(HEADERS)}）")
    out: list[Result] = []
    problems: list[str] = []
    for n, raw in enumerate(rows[1:], start=TOP + 1):
        cell = {h: _text(raw[i]) if i < len(raw) else "" for h, i in _COL.items()}
        number, reached = cell["回访编号"], cell["接通情况"]
        ratings = [cell["对社区"], cell["对网格员"], cell["对业委会"]]
        if not number or not (reached or any(ratings)):
            continue  # not called yet
        if reached == "未接通":
            out.append(Result(number, False, note=cell["备注"][:500]))
            continue
        bad = [r for r in ratings if r not in _RATINGS]
        if reached not in ("", "已接通") or bad or not ratings[0] or not ratings[1] \
                or "无" in ratings[:2]:
            problems.append(f"第 {n} 行（{number}）：接通情况填 已接通/未接通，对社区和对网格员"
                            "填 满意/基本满意/不满意，对业委会可填 无")
            continue
        c, w, k = (_RATINGS[r] for r in ratings)
        out.append(Result(number, True, c, w, k, cell["备注"][:500]))
    if problems:
        raise ValueError("；".join(problems))
    return out
