"""What a knowledge entry may hold: the statuses, the Chinese field names, the limits and the
checks that every path writing entries applies (the editor, the spreadsheet import, rollback).

Pure functions: no database. A refusal a person can act on is a ``KbError``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from core.errors import Refusal
from core.models.base import as_utc
from kb_sync.sanitize import sanitize_html

STATUSES = ("draft", "published", "archived")
STATUS_LABELS = {"draft": "草稿", "published": "已发布", "archived": "已归档"}
FIELD_LABELS = {
    "branch": "知识分类",
    "question": "标准问题",
    "similar": "相似问法",
    "answer": "答案",
    "short_answer": "简短答案",
    "keywords": "关键词",
    "valid_from": "生效时间",
    "valid_to": "失效时间",
    "status": "状态",
}

MAX_QUESTION = 500
MAX_ANSWER = 5000
MAX_SHORT_ANSWER = 500
MAX_SIMILAR = 200
MAX_KEYWORDS = 50
# Editors think in Beijing time; files and date filters use it (storage is UTC).
LOCAL_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")


class KbError(Refusal):
    """A refusal a person can act on: HTTP status + Chinese reason (+ machine code)."""


def question_key(text: str) -> str:
    """Two standard questions are duplicates when equal after NFKC, case and blanks."""
    return "".join(unicodedata.normalize("NFKC", text or "").lower().split())


_LOOSE_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?$")


def parse_moment(value: Any, label: str) -> datetime | None:
    """None, a datetime, or a string: ISO 8601 with an offset (UTC stored) or a local time "2026-01-31 08:00"."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        text = value.strip().replace("/", "-").replace("Z", "+00:00")
        if not text:
            return None
        loose = _LOOSE_DATE.match(text)
        try:
            if loose:
                y, mo, d, h, mi, sec = (int(g) if g else 0 for g in loose.groups())
                moment = datetime(y, mo, d, h, mi, sec)
            else:
                moment = datetime.fromisoformat(text)
        except ValueError:
            raise KbError(400, f"{label}格式不正确（应为 2026-01-31 或 2026-01-31 08:00）。", "bad_date") from None
    else:
        raise KbError(400, f"{label}格式不正确。", "bad_date")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC)


def _str_list(value: Any, label: str, limit: int, item_max: int = MAX_QUESTION) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [v for v in value.replace("||", "\n").split("\n")]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise KbError(400, f"{label}格式不正确。", "bad_field")
    out: list[str] = []
    seen: set[str] = set()
    for item in value:
        item = item.strip()
        if not item or item in seen:
            continue
        if len(item) > item_max:
            raise KbError(400, f"{label}每条不能超过 {item_max} 个字。", "too_long")
        seen.add(item)
        out.append(item)
    if len(out) > limit:
        raise KbError(400, f"{label}最多 {limit} 条。", "too_many")
    return out


def clean_entry(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """Validate an entry's editable fields; returns the normalised values (answer sanitised).

    ``partial``: only the keys present are checked (an edit). Raises KbError (400)."""
    out: dict[str, Any] = {}
    if not partial or "question" in data:
        question = data.get("question")
        if not isinstance(question, str) or not question.strip():
            raise KbError(400, "标准问题不能为空。", "no_question")
        if len(question.strip()) > MAX_QUESTION:
            raise KbError(400, f"标准问题不能超过 {MAX_QUESTION} 个字。", "too_long")
        out["question"] = question.strip()
    if not partial or "answer" in data:
        answer = data.get("answer")
        if not isinstance(answer, str) or not answer.strip():
            raise KbError(400, "答案不能为空。", "no_answer")
        if len(answer) > MAX_ANSWER:
            raise KbError(400, f"答案不能超过 {MAX_ANSWER} 个字（当前 {len(answer)} 字）。", "too_long")
        cleaned = sanitize_html(answer)
        if not cleaned.strip():
            raise KbError(400, "答案不能为空。", "no_answer")
        out["answer"] = cleaned
    if "short_answer" in data or not partial:
        short = data.get("short_answer") or ""
        if not isinstance(short, str):
            raise KbError(400, "简短答案格式不正确。", "bad_field")
        if len(short.strip()) > MAX_SHORT_ANSWER:
            raise KbError(400, f"简短答案不能超过 {MAX_SHORT_ANSWER} 个字。", "too_long")
        out["short_answer"] = short.strip()
    if "similar" in data or not partial:
        similar = _str_list(data.get("similar"), "相似问法", MAX_SIMILAR)
        if "question" in out:  # the standard question is not also a similar one
            similar = [s for s in similar if question_key(s) != question_key(out["question"])]
        out["similar"] = similar
    if "keywords" in data or not partial:
        raw = data.get("keywords")
        if isinstance(raw, str):
            raw = split_keywords(raw)
        out["keywords"] = _str_list(raw, "关键词", MAX_KEYWORDS, 64)
    for key in ("valid_from", "valid_to"):
        if key in data or not partial:
            out[key] = parse_moment(data.get(key), FIELD_LABELS[key])
    return out


def split_keywords(text: str) -> list[str]:
    for sep in ("||", "，", "、", ";", "；", "\n"):
        text = text.replace(sep, ",")
    return [k.strip() for k in text.split(",") if k.strip()]


def check_window(values: dict[str, Any]) -> None:
    """The validity window, when both ends are set, ends after it starts."""
    start, end = values.get("valid_from"), values.get("valid_to")
    if start and end and as_utc(end) <= as_utc(start):
        raise KbError(400, "失效时间必须晚于生效时间。", "bad_window")
