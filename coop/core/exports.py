"""Writing a table for spreadsheets: CSV as Dutch Excel opens it, and XLSX.

A domain builds a ``Table`` (headers and an iterator of rows, so large exports are never held in
memory whole); this module only writes it. CSV is streamed in chunks; XLSX is written with
openpyxl's write-only workbook into a temporary file that spills to disk when large.

Cells that a spreadsheet would run as a formula (starting with = + - @, or a tab or carriage
return that some programs skip before one) get a leading apostrophe: a resident's "name" must
never become a formula on a staff member's computer (CSV/formula injection). A phone number as
people write it ("+31 6 1234 5678", "-" between groups, an area code in parentheses) stays as
typed: made of digits, spaces, hyphens, parentheses and one leading +, it can name no function
and no cell, so it cannot do what the guard is there to stop.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any, TypeAlias

from flask import Response, send_file, stream_with_context

from coop.core.formatting import sortable_date
from coop.core.time import AMSTERDAM, utcnow

Cell: TypeAlias = str | int | Decimal | datetime | date | None

FORMATS = ("csv", "xlsx")
CSV_MIMETYPE = "text/csv; charset=utf-8"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# Dutch Excel reads ";" as the column separator (the comma is the decimal sign there).
CSV_DELIMITER = ";"
# The byte order mark makes Excel read the file as UTF-8 (ë, é and € intact).
BOM = "\ufeff"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# A phone number: one optional leading +, then digits, spaces, hyphens and parentheses only.
_PHONE_NUMBER = re.compile(r"\+?[0-9 ()\-]*[0-9][0-9 ()\-]*")
_CSV_CHUNK_ROWS = 500
# Characters the XLSX format cannot hold (openpyxl refuses them): control characters.
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_TITLE_ILLEGAL = re.compile(r"[\[\]:*?/\\]")


@dataclass
class Table:
    title: str
    headers: Sequence[str]
    rows: Iterable[Sequence[Cell]]


def guard(value: Cell) -> Cell:
    """Text that a spreadsheet would read as a formula, made plain text with a leading '."""
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_TRIGGERS)
        and not _PHONE_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def _local(value: datetime) -> datetime:
    # Stored in UTC, read by people in Amsterdam; spreadsheets have no time zones.
    return value.astimezone(AMSTERDAM).replace(tzinfo=None) if value.tzinfo else value


def _csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, date):  # a datetime too
        return sortable_date(value)
    if isinstance(value, Decimal):
        return f"{value:.2f}".replace(".", ",")  # Dutch decimal comma, as Excel here reads it
    if isinstance(value, int):
        return str(value)
    return str(guard(value))


def csv_chunks(table: Table) -> Iterator[bytes]:
    """The CSV file in pieces of a few hundred rows: BOM, header row, then the rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=CSV_DELIMITER, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow([_csv_text(h) for h in table.headers])
    for count, row in enumerate(table.rows, start=1):
        writer.writerow([_csv_text(value) for value in row])
        if count % _CSV_CHUNK_ROWS == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def _xlsx_value(value: Cell) -> Any:
    if isinstance(value, datetime):
        return _local(value)
    if isinstance(value, str):
        return _XLSX_ILLEGAL.sub("", str(guard(value)))
    return value


def write_xlsx(table: Table, target: IO[bytes]) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    title = _SHEET_TITLE_ILLEGAL.sub(" ", table.title).strip()[:31] or "Sheet"
    sheet = workbook.create_sheet(title=title)
    sheet.append([_xlsx_value(h) for h in table.headers])
    for row in table.rows:
        sheet.append([_xlsx_value(value) for value in row])
    workbook.save(target)


def export_filename(stem: str, fmt: str) -> str:
    return f"{stem}-{utcnow().astimezone(AMSTERDAM).date().isoformat()}.{fmt}"


def response(table: Table, fmt: str, *, stem: str) -> Response:
    """A download of ``table`` named after ``stem`` ("registrations") and today's date."""
    name = export_filename(stem, fmt)
    if fmt == "csv":
        return Response(
            stream_with_context(csv_chunks(table)),
            content_type=CSV_MIMETYPE,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )
    if fmt == "xlsx":
        # Up to 16 MB in memory, beyond that on disk; closed (and removed) with the response.
        spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)  # noqa: SIM115
        write_xlsx(table, spool)
        spool.seek(0)
        result = send_file(
            spool, mimetype=XLSX_MIMETYPE, as_attachment=True, download_name=name, max_age=0
        )
        result.headers["Cache-Control"] = "no-store"
        return result
    raise ValueError(f"unknown export format {fmt!r}")
