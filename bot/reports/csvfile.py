"""The rates report as CSV: UTF-8 with a byte-order mark, so Excel reads the Chinese right."""

from __future__ import annotations

import csv
from pathlib import Path

from bot.reports.table import Cell, Kind, Report


def text(value: Cell, kind: Kind) -> str:
    if value is None:
        return ""
    if kind == "rate" and isinstance(value, int | float):
        return f"{value * 100:.1f}%"  # Excel reads "85.0%" as the number 0.85
    if kind in ("hours", "decimal") and isinstance(value, int | float):
        return f"{value:.1f}"
    return str(value)


def write_report_csv(report: Report, path: Path) -> None:
    table = report.tables[report.by]
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f)
        out.writerow(table.headers)
        for row in table.rows:
            out.writerow([text(v, k) for v, k in zip(row, table.kinds, strict=True)])
