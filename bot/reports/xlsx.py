"""The rates report as an XLSX workbook: a summary with a bar chart, then one sheet a grouping."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bot.reports.sheet import FORMATS, title, write_rows
from bot.reports.table import Report, Table, metric_columns, rate_columns
from bot.reports.texts import DEFINITIONS, as_of_note

SUMMARY = "汇总"
TOP = 4  # the row of the summary's headers, below the title and its note
CHART_COL = 4  # the chart's data sits to the right of the county column


def write_report_xlsx(report: Report, path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert isinstance(ws, Worksheet)  # a new workbook always has its first sheet
    ws.title = SUMMARY
    _summary(ws, report)
    for table in report.tables.values():
        _group_sheet(wb.create_sheet(table.title), table)
    write_rows(wb.create_sheet("说明"), ["指标", "含义"], ["text", "text"], DEFINITIONS)
    wb.save(path)


def _summary(ws: Worksheet, report: Report) -> None:
    title(ws, f"网格报事统计　{report.period.label()}", as_of_note(report.as_of, report.period))
    cols = metric_columns(report.sources)
    write_rows(ws, ["指标", "全县"], ["text", "text"], [[c.header, ""] for c in cols],
               first_row=TOP)
    for i, c in enumerate(cols, start=TOP + 1):  # one column, numbers of several kinds
        value = c.value(report.county)
        cell = ws.cell(i, 2, value)
        cell.number_format = FORMATS[c.kind]
    _chart(ws, report.tables[report.by], report)


def _chart(ws: Worksheet, table: Table, report: Report) -> None:
    rates = rate_columns(report.sources)
    groups = table.rows[:-1]  # without the total
    at = {h: i for i, h in enumerate(table.headers)}
    write_rows(ws, [table.headers[0 if table.by == "worker" else 1], *(c.header for c in rates)],
               ["text", *(c.kind for c in rates)],
               [[name, *(row[at[c.header]] for c in rates)]
                for name, row in zip(table.names, groups, strict=True)],
               first_row=TOP, first_col=CHART_COL)
    if not groups:
        return
    chart = BarChart()
    chart.type = "col"
    chart.title = f"{table.title}三率"
    chart.y_axis.number_format = "0%"
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    # openpyxl 3.1 marks both axes deleted unless told; Excel and WPS then draw none
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    last = TOP + len(groups)
    chart.add_data(Reference(ws, min_col=CHART_COL + 1, max_col=CHART_COL + len(rates),
                             min_row=TOP, max_row=last), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=CHART_COL, min_row=TOP + 1, max_row=last))
    chart.width = min(max(16, int(1.5 * len(groups)) + 6), 60)  # centimetres
    chart.height = 9
    ws.add_chart(chart, f"{get_column_letter(CHART_COL + len(rates) + 2)}{TOP}")


def _group_sheet(ws: Worksheet, table: Table) -> None:
    write_rows(ws, table.headers, table.kinds, table.rows, bold_last=True)
    ws.freeze_panes = f"{get_column_letter(table.kinds.count('text') + 1)}2"
