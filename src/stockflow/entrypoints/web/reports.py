"""The console's reports: stock by warehouse (or the low keys), movements by type over a
period (the last 30 days unless asked), and valuation now or as of a past time, each as
a table, a chart and a CSV download, the same as `stockflow report` (computed in
Postgres, one query a report). Charts are PNGs drawn on request in a worker thread."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from stockflow.adapters.db import reports
from stockflow.entrypoints.api.params import InstantParam
from stockflow.entrypoints.web.params import FormName
from stockflow.entrypoints.web.render import page
from stockflow.entrypoints.web.session import Who
from stockflow.entrypoints.web.sync_db import in_db

__all__ = ["router"]

DEFAULT_PERIOD = timedelta(days=30)  # of the movements report, when no `since` is given
router = APIRouter(prefix="/console/reports", include_in_schema=False)
Report = Annotated[Literal["stock", "movements", "valuation"], Query()]
Since = Annotated[InstantParam | None, Query()]
Until = Annotated[InstantParam | None, Query()]


class Asked(NamedTuple):
    """A report and its filters, as a page, a chart or a download asks for them."""

    report: str
    filters: reports.Filters


def _asked(report: Report = "stock", warehouse: FormName = None, since: Since = None,
           until: Until = None, low: Annotated[bool, Query()] = False) -> Asked:
    if report == "movements" and since is None:
        since = (until or datetime.now(UTC)) - DEFAULT_PERIOD
    return Asked(report, reports.Filters(
        warehouse or None, since if report == "movements" else None,
        until if report != "stock" else None, low and report == "stock"))


AskedReport = Annotated[Asked, Depends(_asked)]


def _title(report: str, f: reports.Filters) -> str:
    if report == "stock":
        return "low and out-of-stock keys" if f.low_only else "stock by warehouse"
    if report == "movements":
        return (f"movements by warehouse, {f.since:%Y-%m-%d %H:%M} to "
                f"{(f.until or datetime.now(UTC)):%Y-%m-%d %H:%M} UTC")
    return "valuation by warehouse and currency" + (
        f", as of {f.until:%Y-%m-%d %H:%M} UTC" if f.until else "")


async def _rows(request: Request, report: str, f: reports.Filters) -> list[dict[str, Any]]:
    return await in_db(request, lambda c: reports.run(c, report, f))


@router.get("")
async def reports_page(request: Request, who: Who, asked: AskedReport) -> Response:
    report, f = asked
    rows = await _rows(request, report, f)
    query = {"report": report, **({"warehouse": f.warehouse} if f.warehouse else {}),
             **({"since": f.since.isoformat()} if f.since else {}),
             **({"until": f.until.isoformat()} if f.until else {}),
             **({"low": "true"} if f.low_only else {})}
    return page(request, "reports.html", who=who, report=report, rows=rows,
                columns=reports.query(report, f).columns, title=_title(report, f),
                filters=f, query=urlencode(query))


@router.get("/chart.png")
async def chart(request: Request, _: Who, asked: AskedReport) -> Response:
    report, f = asked

    def drawn(conn: Any) -> bytes:
        # matplotlib is slow to import: only a chart's request pays for it
        from stockflow.entrypoints.charts import Moved, report_chart  # noqa: PLC0415

        rows = reports.run(conn, report, f)
        moved = (Moved(reports.lost_demand(conn, f), reports.net_value_by_currency(conn, f))
                 if report == "movements" else None)
        out = io.BytesIO()
        report_chart(out, report, rows, _title(report, f), moved)
        return out.getvalue()

    return Response(await in_db(request, drawn), media_type="image/png")


@router.get("/report.csv")
async def download(request: Request, _: Who, asked: AskedReport) -> Response:
    report, f = asked
    rows = await _rows(request, report, f)
    out = io.StringIO()
    writer = csv.writer(out)
    columns = reports.query(report, f).columns
    writer.writerow(columns)
    writer.writerows([r[c] for c in columns] for r in rows)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{report}.csv"'})
