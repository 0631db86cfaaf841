"""Import and export of KB entries as .xlsx (openpyxl) or .csv, all or nothing.

The file has one header row with these columns (Chinese, any order; extra columns are
ignored): 知识分类, 标准问题, 相似问法, 答案, 简短答案, 关键词, 生效时间, 失效时间, 状态.
A branch is written as its path, "户籍/迁移". Similar questions are one per line or
separated by "||"; keywords by commas. Times are Beijing time, "2026-01-31 08:00".

``parse_table`` refuses a file that is not a spreadsheet; ``validate_rows`` checks every
row and lists every bad one (row numbers as the editor sees them: the header is row 1);
``KbImporter.run`` writes everything in one transaction or nothing, reporting progress.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from core.models import KbEntry, KbEntryVersion, utcnow
from core.spreadsheet import NOT_A_TABLE, Progress, RowError, SpreadsheetError, read_table, write_table
from kb_sync.sanitize import sanitize_html
from kb_sync.store import (
    LOCAL_TZ,
    MAX_ANSWER,
    MAX_BRANCH_NAME,
    MAX_QUESTION,
    MAX_SHORT_ANSWER,
    PATH_SEP,
    STATUS_LABELS,
    EntryView,
    KbError,
    KbStore,
    diff_snapshots,
    parse_moment,
    question_key,
    split_keywords,
    split_path,
)

COLUMNS = ["知识分类", "标准问题", "相似问法", "答案", "简短答案", "关键词", "生效时间", "失效时间", "状态"]
REQUIRED = ["知识分类", "标准问题", "答案"]
STATUS_BY_NAME = {
    "": "draft", "草稿": "draft", "draft": "draft",
    "已发布": "published", "发布": "published", "published": "published",
    "已归档": "archived", "归档": "archived", "archived": "archived",
}
MAX_ROWS = 20000
MAX_FILE_BYTES = 20 * 1024 * 1024
WIDTHS = (18, 36, 36, 60, 30, 18, 20, 20, 10)

@dataclass
class ImportReport:
    ok: bool
    total: int
    created: int = 0
    published: int = 0
    created_branches: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "total": self.total, "created": self.created, "published": self.published,
                "created_branches": self.created_branches, "errors": [e.to_json() for e in self.errors]}


# ----------------------------------------------------------------------------- reading


def parse_table(data: bytes, filename: str = "") -> list[tuple[int, dict[str, Any]]]:
    """(row number, {column: value}) for every non-empty row; KbError(400) if it is not a spreadsheet."""
    try:
        return read_table(data, filename, columns=COLUMNS, required=REQUIRED, max_rows=MAX_ROWS,
                          max_bytes=MAX_FILE_BYTES)
    except SpreadsheetError as error:
        raise KbError(error.status, error.reason, error.code) from error


# ----------------------------------------------------------------------------- checking


def _moment(value: Any, label: str) -> datetime | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=LOCAL_TZ)).astimezone(UTC)
    return parse_moment(value, label)


def _similar(value: Any) -> list[str]:
    text = str(value or "").replace("||", "\n")
    out: list[str] = []
    for item in text.split("\n"):
        item = item.strip()
        if item and item not in out:
            out.append(item)
    return out


def validate_rows(
    rows: list[tuple[int, dict[str, Any]]],
    *,
    branch_paths: dict[str, int],
    existing_questions: dict[str, str],
    create_branches: bool,
) -> tuple[list[dict[str, Any]], list[RowError], list[str]]:
    """Check every row; returns (clean entries, every error, branch paths to create)."""
    clean: list[dict[str, Any]] = []
    errors: list[RowError] = []
    to_create: list[str] = []
    seen: dict[str, int] = {}
    for number, values in rows:
        reasons: list[str] = []
        question = str(values.get("标准问题") or "").strip()
        answer = str(values.get("答案") or "")
        raw_branch = str(values.get("知识分类") or "").strip()
        branch = raw_branch if raw_branch in branch_paths else PATH_SEP.join(split_path(raw_branch))
        if not question:
            reasons.append("标准问题为空")
        elif len(question) > MAX_QUESTION:
            reasons.append(f"标准问题超过 {MAX_QUESTION} 字")
        else:
            key = question_key(question)
            if key in seen:
                reasons.append(f"标准问题与第 {seen[key]} 行重复")
            elif key in existing_questions:
                reasons.append(f"标准问题在知识库中已存在（条目 {existing_questions[key]}）")
            else:
                seen[key] = number
        if not answer.strip():
            reasons.append("答案为空")
        elif len(answer) > MAX_ANSWER:
            reasons.append(f"答案超过 {MAX_ANSWER} 字（{len(answer)} 字）")
        short = str(values.get("简短答案") or "").strip()
        if len(short) > MAX_SHORT_ANSWER:
            reasons.append(f"简短答案超过 {MAX_SHORT_ANSWER} 字")
        if not branch:
            reasons.append("知识分类为空")
        elif branch not in branch_paths:
            if not create_branches:
                reasons.append(f"知识分类“{branch}”不存在")
            elif any(len(p) > MAX_BRANCH_NAME for p in split_path(branch)):
                reasons.append(f"知识分类名称超过 {MAX_BRANCH_NAME} 字")
            elif branch not in to_create:
                to_create.append(branch)
        status_text = str(values.get("状态") or "").strip()
        status = STATUS_BY_NAME.get(status_text.lower() if status_text.isascii() else status_text)
        if status is None:
            reasons.append(f"状态“{status_text}”无效（应为 草稿、已发布 或 已归档）")
        moments: dict[str, datetime | None] = {}
        for column, key in (("生效时间", "valid_from"), ("失效时间", "valid_to")):
            try:
                moments[key] = _moment(values.get(column), column)
            except KbError:
                reasons.append(f"{column}“{values.get(column)}”格式不正确（应为 2026-01-31 或 2026-01-31 08:00）")
        if moments.get("valid_from") and moments.get("valid_to") and moments["valid_to"] <= moments["valid_from"]:
            reasons.append("失效时间必须晚于生效时间")
        similar = _similar(values.get("相似问法"))
        similar = [s for s in similar if question_key(s) != question_key(question)]
        if any(len(s) > MAX_QUESTION for s in similar):
            reasons.append(f"相似问法每条不能超过 {MAX_QUESTION} 字")
        if reasons:
            errors.append(RowError(number, "；".join(reasons)))
            continue
        cleaned_answer = sanitize_html(answer)
        if not cleaned_answer.strip():
            errors.append(RowError(number, "答案为空（过滤不安全的内容后）"))
            continue
        clean.append({
            "row": number, "branch": branch, "question": question, "similar": similar, "answer": cleaned_answer,
            "short_answer": short, "keywords": split_keywords(str(values.get("关键词") or "")),
            "valid_from": moments.get("valid_from"), "valid_to": moments.get("valid_to"), "status": status,
        })
    return clean, errors, to_create


# ----------------------------------------------------------------------------- importing


class KbImporter:
    def __init__(self, store: KbStore) -> None:
        self.store = store

    async def run(
        self,
        rows: list[tuple[int, dict[str, Any]]],
        editor: str,
        *,
        create_branches: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Check and write every row in one transaction; any bad row: nothing is written."""
        async def report(stage: str, done: int) -> None:
            if progress is not None:
                await progress(stage, done, len(rows))

        await report("checking", 0)
        async with self.store.sessions() as session, session.begin():
            tree = await self.store.tree(session)
            existing = {question_key(q): i for i, q in (await session.execute(
                select(KbEntry.id, KbEntry.question))).all()}
            clean, errors, to_create = validate_rows(
                rows, branch_paths=dict(tree.by_path), existing_questions=existing, create_branches=create_branches)
            if errors:
                await session.rollback()
                return ImportReport(False, len(rows), errors=errors)
            await report("writing", 0)
            paths = dict(tree.by_path)
            for path in to_create:
                paths[path] = await self.store.branch_path_id(session, path)
            now = utcnow()
            published = 0
            for done, item in enumerate(clean, start=1):
                entry_id = str(uuid.uuid4())
                row = KbEntry(
                    id=entry_id, branch_id=paths[item["branch"]], question=item["question"], similar=item["similar"],
                    answer=item["answer"], short_answer=item["short_answer"], keywords=item["keywords"],
                    status=item["status"], valid_from=item["valid_from"], valid_to=item["valid_to"],
                    created_at=now, updated_at=now, created_by=editor, updated_by=editor, version=1,
                )
                session.add(row)
                snap = {
                    "branch_id": row.branch_id, "branch": item["branch"], "question": row.question,
                    "similar": row.similar, "answer": row.answer, "short_answer": row.short_answer,
                    "keywords": row.keywords, "valid_from": _iso(row.valid_from), "valid_to": _iso(row.valid_to),
                    "status": row.status,
                }
                session.add(KbEntryVersion(entry_id=entry_id, number=1, action="import", editor=editor, snapshot=snap,
                                           diff=diff_snapshots(None, snap), note=f"导入第 {item['row']} 行",
                                           created_at=now))
                published += item["status"] == "published"
                if done % 250 == 0:
                    await session.flush()
                    await report("writing", done)
            await session.flush()
        await report("done", len(rows))
        return ImportReport(True, len(rows), created=len(clean), published=published, created_branches=to_create)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


# ----------------------------------------------------------------------------- exporting


def _local(moment: datetime | None) -> str:
    if not moment:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M:%S")


def entry_row(entry: EntryView) -> list[str]:
    return [
        entry.branch_path or entry.branch, entry.question, "\n".join(entry.similar), entry.answer, entry.short_answer,
        "，".join(entry.keywords), _local(entry.valid_from), _local(entry.valid_to), STATUS_LABELS[entry.status],
    ]


TEMPLATE_EXAMPLE = [
    "户籍/身份证", "身份证丢了怎么补办？", "身份证丢了怎么办\n补办身份证要带什么",
    '携带户口簿到户籍所在地派出所办理，详见<a href="https://www.gov.cn/">办事指南</a>。',
    "带户口簿到派出所补办。", "身份证，补办", "2026-01-01 00:00", "", "草稿",
]


def to_xlsx(rows: list[list[str]]) -> bytes:
    return write_table("xlsx", COLUMNS, rows, title="知识条目", widths=WIDTHS)


def to_csv(rows: list[list[str]]) -> bytes:
    return write_table("csv", COLUMNS, rows, title="知识条目")


def template(kind: str) -> bytes:
    return to_xlsx([TEMPLATE_EXAMPLE]) if kind == "xlsx" else to_csv([TEMPLATE_EXAMPLE])


def export_entries(entries: list[EntryView], kind: str) -> bytes:
    rows = [entry_row(e) for e in entries]
    return to_xlsx(rows) if kind == "xlsx" else to_csv(rows)


__all__ = ["COLUMNS", "NOT_A_TABLE", "ImportReport", "KbImporter", "RowError", "export_entries", "parse_table",
           "template", "validate_rows"]
