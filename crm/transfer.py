"""Import and export of citizen records as .xlsx or .csv, all or nothing (core.spreadsheet does
the reading, writing and background job; this module knows the columns and the row checks).

Columns (Chinese, any order; extra columns ignored): 姓名 (required), 电话, 身份证号, 地址,
标签 (separated by commas), 备注, VIP (是/否), 重点关注 (是/否); an export adds 客户编号,
which an import ignores. Every row becomes a new profile; a phone number also becomes the
profile's `phone` identity, so the citizen calling or writing from it is recognised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import AuditLog, Citizen, CitizenIdentity, utcnow
from core.spreadsheet import Progress, RowError, read_table, write_table
from crm.profiles import CitizenView, view_of
from crm.validation import check_profile

COLUMNS = ["姓名", "电话", "身份证号", "地址", "标签", "备注", "VIP", "重点关注"]
EXPORT_COLUMNS = [*COLUMNS, "客户编号"]
REQUIRED = ["姓名"]
WIDTHS = (12, 16, 22, 36, 20, 40, 6, 10, 10)
YES = {"是": True, "yes": True, "y": True, "true": True, "1": True, "√": True,
       "否": False, "no": False, "n": False, "false": False, "0": False, "": False}
MAX_ROWS = 50000
FIELD_LABELS = {"name": "姓名", "phone": "电话", "id_number": "身份证号", "address": "地址", "tags": "标签",
                "notes": "备注", "vip": "VIP", "flagged": "重点关注"}
TEMPLATE_EXAMPLE = ["王小明", "13812345678", "11010519491231002X", "云南省红河州弥勒市髯翁路 1 号", "老年人，重点关注",
                    "腿脚不便，优先电话回访", "否", "是"]


def parse_citizen_table(data: bytes, filename: str = "") -> list[tuple[int, dict[str, Any]]]:
    """Rows of a citizen spreadsheet; core.spreadsheet.SpreadsheetError (4xx) if it is not one."""
    return read_table(data, filename, columns=EXPORT_COLUMNS, required=REQUIRED, max_rows=MAX_ROWS)


@dataclass
class CitizenImportReport:
    ok: bool
    total: int
    created: int = 0
    errors: list[RowError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "total": self.total, "created": self.created,
                "errors": [e.to_json() for e in self.errors]}


def _split_tags(value: Any) -> list[str]:
    return [t.strip() for t in re.split(r"[,，、;；\n]", str(value or "")) if t.strip()]


def validate_citizen_rows(
    rows: list[tuple[int, dict[str, Any]]], *, existing_phones: dict[str, int], existing_ids: dict[str, int]
) -> tuple[list[dict[str, Any]], list[RowError]]:
    """Check every row (the profile form's own checks); returns (clean records, every bad row)."""
    clean: list[dict[str, Any]] = []
    errors: list[RowError] = []
    seen_phone: dict[str, int] = {}
    seen_id: dict[str, int] = {}
    for number, values in rows:
        reasons: list[str] = []
        raw = {
            "name": str(values.get("姓名") or ""),
            "phone": str(values.get("电话") or ""),
            "id_number": str(values.get("身份证号") or ""),
            "address": str(values.get("地址") or ""),
            "tags": _split_tags(values.get("标签")),
            "notes": str(values.get("备注") or ""),
        }
        for column, key in (("VIP", "vip"), ("重点关注", "flagged")):
            text = str(values.get(column) or "").strip().lower()
            if text not in YES:
                reasons.append(f"{column}“{values.get(column)}”无效（应为 是 或 否）")
            else:
                raw[key] = YES[text]
        if not raw["name"].strip():
            reasons.append("姓名为空")
        cleaned, problems = check_profile(raw, partial=False)
        for key, reason in problems.items():
            if key == "name" and not raw["name"].strip():
                continue
            reasons.append(f"{FIELD_LABELS.get(key, key)}：{reason.rstrip('。')}")
        for label, value, seen, existing in (
            ("电话", cleaned.get("phone"), seen_phone, existing_phones),
            ("身份证号", cleaned.get("id_number"), seen_id, existing_ids),
        ):
            clash = _duplicate(label, value, number, seen, existing)
            if clash:
                reasons.append(clash)
        if reasons:
            errors.append(RowError(number, "；".join(reasons)))
            continue
        cleaned["row"] = number
        clean.append(cleaned)
    return clean, errors


class CitizenImporter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def run(
        self, rows: list[tuple[int, dict[str, Any]]], *, user_id: int | None, progress: Progress | None = None
    ) -> CitizenImportReport:
        """Check and write every row in one transaction; any bad row: nothing is written."""
        async def report(stage: str, done: int) -> None:
            if progress is not None:
                await progress(stage, done, len(rows))

        await report("checking", 0)
        async with self._sessions() as session, session.begin():
            phones = {
                value: cid for value, cid in (await session.execute(
                    select(CitizenIdentity.value, CitizenIdentity.citizen_id).where(CitizenIdentity.kind == "phone")
                )).all()
            }
            for value, cid in (await session.execute(
                select(Citizen.phone, Citizen.id).where(Citizen.phone.is_not(None), Citizen.merged_into.is_(None))
            )).all():
                phones.setdefault(value, cid)
            ids = {
                value: cid for value, cid in (await session.execute(
                    select(Citizen.id_number, Citizen.id).where(
                        Citizen.id_number.is_not(None), Citizen.merged_into.is_(None))
                )).all()
            }
            clean, errors = validate_citizen_rows(rows, existing_phones=phones, existing_ids=ids)
            if errors:
                await session.rollback()
                return CitizenImportReport(False, len(rows), errors=errors)
            await report("writing", 0)
            now = utcnow()
            pending: list[Citizen] = []

            async def flush() -> None:
                await session.flush()  # the new ids, then each phone becomes an identity of its citizen
                session.add_all(
                    CitizenIdentity(citizen_id=c.id, kind="phone", value=c.phone) for c in pending if c.phone
                )
                pending.clear()
                await session.flush()

            for done, item in enumerate(clean, start=1):
                citizen = Citizen(
                    name=item["name"], phone=item.get("phone"), id_number=item.get("id_number"),
                    address=item.get("address", ""), tags=item.get("tags", []), notes=item.get("notes", ""),
                    vip=item.get("vip", False), flagged=item.get("flagged", False), created_at=now, updated_at=now,
                )
                session.add(citizen)
                pending.append(citizen)
                if done % 250 == 0:
                    await flush()
                    await report("writing", done)
            await flush()
            session.add(AuditLog(user_id=user_id, action="import_citizens", target="citizens",
                                 data={"created": len(clean)}))
        await report("done", len(rows))
        return CitizenImportReport(True, len(rows), created=len(clean))


def citizen_row(citizen: CitizenView) -> list[Any]:
    return [
        citizen.name or "", citizen.phone or "", citizen.id_number or "", citizen.address, "，".join(citizen.tags),
        citizen.notes, "是" if citizen.vip else "否", "是" if citizen.flagged else "否", citizen.id,
    ]


def export_citizens(citizens: list[CitizenView], kind: str) -> bytes:
    return write_table(kind, EXPORT_COLUMNS, [citizen_row(c) for c in citizens], title="客户资料", widths=WIDTHS)


def citizen_template(kind: str) -> bytes:
    return write_table(kind, COLUMNS, [TEMPLATE_EXAMPLE], title="客户资料", widths=WIDTHS)


async def all_citizens(sessions: async_sessionmaker[AsyncSession]) -> list[CitizenView]:
    """Every standing profile with a name (not merged away; not an anonymous visitor), oldest first."""
    async with sessions() as session:
        rows = (
            await session.execute(
                select(Citizen).where(Citizen.merged_into.is_(None), Citizen.name.is_not(None), Citizen.name != "")
                .order_by(Citizen.id)
            )
        ).scalars().all()
    return [view_of(row, []) for row in rows]


def _duplicate(label: str, value: Any, row: int, seen: dict[Any, int], existing: dict[Any, int]) -> str | None:
    """Why a phone or ID number cannot be imported again (an earlier row, or a profile has it); else
    remember it for the rows that follow."""
    if not value:
        return None
    if value in seen:
        return f"{label}与第 {seen[value]} 行重复"
    if value in existing:
        return f"{label}已属于客户 #{existing[value]}"
    seen[value] = row
    return None
