"""The monthly brief as an XLSX workbook (a sheet a section) or as Markdown."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from bot.reports.brief import Brief, Section
from bot.reports.csvfile import text
from bot.reports.sheet import title, write_rows

BRIEF_FORMATS = (".xlsx", ".md")


def write_brief(brief: Brief, path: Path) -> None:
    if path.suffix.lower() == ".md":
        path.write_text(brief_markdown(brief), encoding="utf-8")
    else:
        write_brief_xlsx(brief, path)


def _note(brief: Brief) -> str:
    local = brief.as_of.astimezone(brief.month.tz)
    return f"按居民报事时间统计；数据截至 {local:%Y-%m-%d %H:%M}。"


def write_brief_xlsx(brief: Brief, path: Path) -> None:
    wb = Workbook()
    first = wb.active
    assert isinstance(first, Worksheet)  # a new workbook always has its first sheet
    for i, section in enumerate(brief.sections):
        ws = first if i == 0 else wb.create_sheet()
        ws.title = section.sheet
        if i == 0:
            title(ws, brief.title, _note(brief))
        top = 4 if i == 0 else 1
        ws.cell(top, 1, section.title).font = Font(bold=True, size=12)
        if section.note:
            ws.cell(top + 1, 1, section.note)
        if section.headers:
            write_rows(ws, section.headers, section.kinds, section.rows, first_row=top + 2,
                       kind_of=section.kind)
    wb.save(path)


def _md_cell(value: str) -> str:
    return value.replace("|", "｜").replace("\n", " ")


def _md_table(section: Section) -> list[str]:
    lines = ["| " + " | ".join(section.headers) + " |",
             "|" + "|".join(" --- " for _ in section.headers) + "|"]
    for i, row in enumerate(section.rows):
        cells = [_md_cell(text(v, section.kind(i, j))) for j, v in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def brief_markdown(brief: Brief) -> str:
    lines = [f"# {brief.title}", "", _note(brief), ""]
    for section in brief.sections:
        lines += [f"## {section.title}", ""]
        if section.note:
            lines += [section.note, ""]
        if section.rows:
            lines += [*_md_table(section), ""]
    return "\n".join(lines)
