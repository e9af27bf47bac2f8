"""Writing tables into openpyxl sheets: real numbers, percentage formats, readable widths."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.reports.table import Cell, Kind

FORMATS: dict[Kind, str] = {"rate": "0.0%", "hours": "0.0", "decimal": "0.0", "count": "0",
                            "text": "@"}
HEADER_FONT = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
MAX_WIDTH = 40
HEADER_WRAP = 16  # a longer header wraps onto a second line rather than widen its column


def display_width(value: Cell) -> int:
    """Columns a value needs on screen: a Chinese character is as wide as two Latin ones."""
    if value is None:
        return 0
    if isinstance(value, float):
        return 7
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in str(value))


def write_rows(ws: Worksheet, headers: Sequence[str], kinds: Sequence[Kind],
               rows: Sequence[Sequence[Cell]], first_row: int = 1, first_col: int = 1,
               bold_last: bool = False,
               kind_of: Callable[[int, int], Kind] | None = None) -> None:
    """`kinds` per column; `kind_of(row, column)` instead where rows differ in kind."""
    for j, header in enumerate(headers):
        cell = ws.cell(first_row, first_col + j, header)
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    if any(display_width(h) > HEADER_WRAP for h in headers):
        ws.row_dimensions[first_row].height = 30  # two lines: not every viewer fits rows itself
    for i, row in enumerate(rows, start=1):
        for j, value in enumerate(row):
            cell = ws.cell(first_row + i, first_col + j, value)
            if value is not None and value != "":
                cell.number_format = FORMATS[kind_of(i - 1, j) if kind_of else kinds[j]]
            if bold_last and i == len(rows):
                cell.font = HEADER_FONT
    fit_widths(ws, headers, rows, first_col)


def fit_widths(ws: Worksheet, headers: Sequence[str], rows: Sequence[Sequence[Cell]],
               first_col: int = 1) -> None:
    for j, header in enumerate(headers):
        letter = get_column_letter(first_col + j)
        need = max([min(display_width(header), HEADER_WRAP),
                    *(display_width(r[j]) for r in rows)])
        current = ws.column_dimensions[letter].width or 0
        ws.column_dimensions[letter].width = max(current, min(need + 2, MAX_WIDTH))


def title(ws: Worksheet, text: str, note: str = "") -> None:
    ws.cell(1, 1, text).font = Font(bold=True, size=14)
    if note:
        ws.cell(2, 1, note)
