"""KPI results as JSON, CSV and XLSX, for city staff's reports (and `citypilot kpi export`).

One row per KPI, period and dimension; each row names its unit. XLSX cells are typed:
numbers are numbers, period starts and ends are dates in the pilot's local time (Excel has
no time zones, so the zone is a column of its own), and a second sheet holds the KPI
definitions with their formulas and references.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.styles import Font  # type: ignore[import-untyped]

from api.kpis.definitions import KPIS, Kpi, describe
from api.kpis.periods import from_ns, rfc3339
from api.kpis.service import KpiResult
from api.schemas import KpiPoint, KpiValues

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DIMENSIONS = ("service", "kind", "gateway", "device", "indicator", "regime")
COLUMNS = ("kpi", "title", "unit", "pilot", "timezone", "start", "end", *DIMENSIONS, "value",
           "reason")
DEFINITION_COLUMNS = ("id", "title", "family", "unit", "formula", "grain", "reference",
                      "dimensions", "limits")


def to_schema(result: KpiResult) -> KpiValues:
    points = [KpiPoint(start=rfc3339(v.start, result.timezone),
                       end=rfc3339(v.end, result.timezone), value=v.value, reason=v.reason,
                       context=dict(v.extra), **dict(v.dims))
              for v in result.values]
    return KpiValues(id=result.kpi.id, title=result.kpi.title, unit=result.kpi.unit,
                     grain=result.grain.value, pilot=result.pilot,
                     timezone=result.timezone.key, source=result.source, values=points)


def rows(results: Sequence[KpiResult], local_dates: bool = False) -> Iterator[dict[str, Any]]:
    """One dict per KPI value; dates as RFC 3339 strings, or naive local datetimes."""
    for result in results:
        tz = result.timezone
        for v in result.values:
            dims = dict(v.dims)
            start: str | datetime = rfc3339(v.start, tz)
            end: str | datetime = rfc3339(v.end, tz)
            if local_dates:
                start = from_ns(v.start, tz).replace(tzinfo=None)
                end = from_ns(v.end, tz).replace(tzinfo=None)
            yield {"kpi": result.kpi.id, "title": result.kpi.title, "unit": result.kpi.unit,
                   "pilot": result.pilot, "timezone": tz.key, "start": start, "end": end,
                   **{k: dims.get(k) for k in DIMENSIONS},
                   "value": v.value, "reason": v.reason}


def to_csv(results: Sequence[KpiResult]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows(results):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def definition_row(kpi: Kpi) -> list[str]:
    return [kpi.id, kpi.title, kpi.family.value, kpi.unit, kpi.formula, kpi.grain,
            kpi.reference, ", ".join(kpi.dimensions),
            describe(kpi.limits)]


def workbook() -> Any:
    """An empty workbook for `sheet` to fill (openpyxl's default sheet removed)."""
    book = Workbook()
    book.remove(book.active)
    return book


def sheet(book: Any, title: str, columns: Sequence[str], values: Iterable[Sequence[Any]],
          date_columns: Sequence[int] = ()) -> Any:
    """A typed sheet: a bold, frozen header row, then one row per item of `values`; the
    1-based `date_columns` hold local datetimes."""
    ws = book.create_sheet(title[:31])
    ws.append(list(columns))
    for row in values:
        ws.append(list(row))
    for col in date_columns:
        for (cell,) in ws.iter_rows(min_row=2, min_col=col, max_col=col):
            cell.number_format = "yyyy-mm-dd hh:mm"
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    return ws


def kpi_sheets(book: Any, results: Sequence[KpiResult], kpis: Sequence[Kpi] = KPIS) -> None:
    """The `kpis` sheet (one row per value) and the `definitions` sheet."""
    sheet(book, "kpis", COLUMNS, ([row[c] for c in COLUMNS]
                                  for row in rows(results, local_dates=True)),
          date_columns=(6, 7))
    sheet(book, "definitions", DEFINITION_COLUMNS, (definition_row(k) for k in kpis))


def save(book: Any) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_xlsx(results: Sequence[KpiResult]) -> bytes:
    book = workbook()
    kpi_sheets(book, results)
    return save(book)
