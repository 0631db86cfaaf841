"""Spreadsheet import/export shared by every feature that moves records in and out as
.xlsx (openpyxl) or .csv: reading an upload into numbered rows (refusing anything that is not
a spreadsheet), the row-numbered error report, writing a sheet, and background import jobs
whose progress and report live in Redis (any hub worker answers the page's polling).

A feature supplies its columns and its row checks/writer (kb_sync.transfer, crm.transfer).
Row numbers are as the user sees them in the spreadsheet: the header is row 1.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
import zipfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import redis.asyncio as aioredis

from core.errors import Refusal

NOT_A_TABLE = "文件无法读取：请上传 .xlsx 或 .csv 格式的表格（可先下载导入模板）。"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MIME = "text/csv; charset=utf-8"
JOB_TTL_SECONDS = 24 * 3600

Progress = Callable[[str, int, int], Awaitable[None]]  # (stage, done, total)


class SpreadsheetError(Refusal):
    """A file refused as a whole (not a spreadsheet, too large, no rows …)."""


@dataclass
class RowError:
    row: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"row": self.row, "reason": self.reason}


# ----------------------------------------------------------------------------- reading


# A cell starting with one of these is a formula to Excel, LibreOffice or WPS (CSV injection): an
# export writes it with a leading apostrophe (shown as text, never run); an import takes it off again.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (`=cmd|' /C calc'!A0`), made plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value) if not isinstance(value, str) else value
    if text.startswith("'") and text[1:2] and text[1:].startswith(FORMULA_STARTS):
        text = text[1:]  # our own export's neutralised cell: back to what was typed
    return text.strip()


def read_table(
    data: bytes,
    filename: str,
    *,
    columns: Sequence[str],
    required: Sequence[str],
    max_rows: int = 20000,
    max_bytes: int = 20 * 1024 * 1024,
) -> list[tuple[int, dict[str, Any]]]:
    """(row number, {column: value}) for every non-empty row; SpreadsheetError(4xx) when the
    upload is not a spreadsheet, has no header with the required columns, or is too big."""
    if not data:
        raise SpreadsheetError(400, "文件是空的。", "empty_file")
    if len(data) > max_bytes:
        raise SpreadsheetError(413, f"文件太大（最大 {max_bytes // (1024 * 1024)} MB）。", "too_large")
    name = (filename or "").lower()
    if data[:4] == b"PK\x03\x04":
        rows = _xlsx_rows(data)
    elif name.endswith((".xlsx", ".xlsm", ".xls")):
        raise SpreadsheetError(400, NOT_A_TABLE, "not_a_table")
    else:
        rows = _csv_rows(data)
    if not rows:
        raise SpreadsheetError(400, "表格是空的：第 1 行应为表头。", "empty_file")
    header = [str(h or "").strip() for h in rows[0]]
    missing = [c for c in required if c not in header]
    if missing:
        raise SpreadsheetError(400, f"表头缺少列：{'、'.join(missing)}。请使用导入模板。", "bad_header")
    index = {column: header.index(column) for column in columns if column in header}
    out: list[tuple[int, dict[str, Any]]] = []
    for number, raw in enumerate(rows[1:], start=2):
        values = {column: _cell(raw[i]) if i < len(raw) else "" for column, i in index.items()}
        if all(v == "" for v in values.values()):
            continue
        out.append((number, values))
        if len(out) > max_rows:
            raise SpreadsheetError(400, f"一次最多导入 {max_rows} 行。", "too_many")
    return out


def _xlsx_rows(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as error:
        raise SpreadsheetError(400, NOT_A_TABLE, "not_a_table") from error
    except Exception as error:  # openpyxl raises assorted errors on foreign zip files
        raise SpreadsheetError(400, NOT_A_TABLE, "not_a_table") from error
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise SpreadsheetError(400, NOT_A_TABLE, "not_a_table")
        return [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _csv_rows(data: bytes) -> list[list[Any]]:
    if b"\x00" in data[:4096]:
        raise SpreadsheetError(400, NOT_A_TABLE, "not_a_table")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise SpreadsheetError(400, "文件编码无法识别：请以 UTF-8 或 GBK 编码保存 CSV。", "bad_encoding")
    try:
        return [row for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as error:
        raise SpreadsheetError(400, f"CSV 格式错误：{error}", "not_a_table") from error


# ----------------------------------------------------------------------------- writing


def _xlsx_safe(value: Any) -> Any:
    """Control characters a worksheet cannot hold (openpyxl refuses the whole file) are dropped."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def to_xlsx(columns: Sequence[str], rows: list[list[Any]], *, title: str, widths: Sequence[int] = ()) -> bytes:
    """A one-sheet workbook: a bold header, wrapped cells, text that looks like a formula kept as text."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=False)
    sheet = book.worksheets[0]  # a new workbook has exactly one sheet (`book.active` is typed Optional)
    sheet.title = title
    sheet.append([_xlsx_safe(column) for column in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_xlsx_safe(neutralise(value)) for value in row])
    for number, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(number)].width = width
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text, never a formula
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_csv(columns: Sequence[str], rows: list[list[Any]]) -> bytes:
    """UTF-8 with a BOM, so Excel opens the Chinese text correctly."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(list(columns))
    writer.writerows([neutralise(value) for value in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def write_table(kind: str, columns: Sequence[str], rows: list[list[Any]], *, title: str,
                widths: Sequence[int] = ()) -> bytes:
    return to_xlsx(columns, rows, title=title, widths=widths) if kind == "xlsx" else to_csv(columns, rows)


def mime_of(kind: str) -> str:
    return XLSX_MIME if kind == "xlsx" else CSV_MIME


# ----------------------------------------------------------------------------- background jobs


class Report(Protocol):
    ok: bool

    def to_json(self) -> dict[str, Any]: ...


class ImportJobs:
    """An import checked as a spreadsheet at once, then checked row by row and written in the
    background; its state (`queued` → `running` → `done` | `failed`, stage, done/total, report)
    is a JSON value in Redis under `<prefix><namespace>:import:<id>` for a day."""

    def __init__(self, redis: aioredis.Redis, prefix: str, namespace: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._namespace = namespace

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}{self._namespace}:import:{job_id}"

    async def create(self, total: int, editor: str, filename: str) -> str:
        job_id = uuid.uuid4().hex
        await self._save(job_id, {"id": job_id, "state": "queued", "stage": "queued", "done": 0, "total": total,
                                  "editor": editor, "filename": filename, "started": time.time()})
        return job_id

    async def _save(self, job_id: str, state: dict[str, Any]) -> None:
        await self._redis.set(self._key(job_id), json.dumps(state, ensure_ascii=False), ex=JOB_TTL_SECONDS)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._key(job_id))
        return None if raw is None else json.loads(raw)

    async def run(
        self,
        job_id: str,
        work: Callable[[Progress], Awaitable[Report]],
        total: int,
        on_success: Callable[[Report], Awaitable[None]] | None = None,
    ) -> dict[str, Any]:
        """Run `work(progress)`; an exception with a `reason` (a feature's 4xx error) or any other
        failure ends the job `failed` with a Chinese reason, never leaves the page polling forever."""
        state = await self.get(job_id) or {"id": job_id}
        state["state"] = "running"

        async def progress(stage: str, done: int, count: int) -> None:
            state.update(stage=stage, done=done, total=count)
            await self._save(job_id, state)

        try:
            report = await work(progress)
        except Exception as error:
            reason = getattr(error, "reason", None) or f"导入失败，未写入任何数据（{type(error).__name__}）。"
            state.update(state="failed", stage="failed",
                         report={"ok": False, "total": total, "errors": [], "reason": reason})
        else:
            state.update(state="done" if report.ok else "failed", stage="done" if report.ok else "failed",
                         report=report.to_json(), done=total if report.ok else state.get("done", 0))
            if report.ok and on_success is not None:
                await on_success(report)
        state["seconds"] = round(time.time() - float(state.get("started") or time.time()), 3)
        await self._save(job_id, state)
        return state
