"""Excel workbooks (.xlsx) read as the CSV text an import takes: the first worksheet, a
line per row, each cell as a person sees it (a whole number without ".0", a date in ISO
8601, an empty cell empty). Then the import checks its rows exactly as a CSV file's, with
the same line numbers as the sheet's rows.

A workbook is a ZIP archive, so its size is checked before it is opened: one that would
unpack to more than `MAX_UNPACKED` bytes is refused rather than expanded (a ZIP bomb)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, datetime, time

from stockflow import StockflowError

__all__ = ["MAX_UNPACKED", "is_workbook", "sheet_as_csv"]

MAX_UNPACKED = 1024 * 1024 * 1024


def is_workbook(data: bytes) -> bool:
    """Whether `data` is a ZIP archive holding an Excel workbook."""
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def sheet_as_csv(data: bytes) -> str:
    """The workbook's first worksheet as CSV text (StockflowError for a workbook that
    cannot be read, or that would unpack too large)."""
    import openpyxl  # noqa: PLC0415 - only imports of workbooks pay for it

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
        if unpacked > MAX_UNPACKED:
            raise StockflowError(f"the workbook would unpack to {unpacked:,} bytes (at most "
                                 f"{MAX_UNPACKED:,}): save it as CSV UTF-8")
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise StockflowError(f"the workbook cannot be read ({exc}): save it as CSV "
                             "UTF-8") from None
    try:
        sheet = book.worksheets[0]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in sheet.iter_rows(values_only=True):
            writer.writerow([_cell(v) for v in row])
        return out.getvalue()
    finally:
        book.close()
