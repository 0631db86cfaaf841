"""An entry's history: the snapshot every save records, the field-by-field diff in Chinese that
the version list shows, and a version row as JSON. Pure: the store writes the rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.models import KbEntry, KbEntryVersion
from core.models.base import as_utc
from kb_sync.branches import BranchTree
from kb_sync.rules import FIELD_LABELS, LOCAL_TZ, STATUS_LABELS, parse_moment

ACTION_LABELS = {
    "create": "新建",
    "edit": "编辑",
    "publish": "发布",
    "draft": "转草稿",
    "archive": "归档",
    "move": "移动",
    "rollback": "回滚",
    "import": "导入",
    "delete": "删除",
}
STATUS_ACTIONS = {"published": "publish", "draft": "draft", "archived": "archive"}


def iso_utc(moment: datetime | None) -> str | None:
    return as_utc(moment).astimezone(UTC).isoformat() if moment else None


def snapshot(entry: KbEntry, tree: BranchTree | None = None, branch_path: str | None = None) -> dict[str, Any]:
    path = branch_path
    if path is None and tree is not None:
        info = tree.by_id.get(entry.branch_id)
        path = info.path if info else ""
    return {
        "branch_id": entry.branch_id,
        "branch": path or "",
        "question": entry.question,
        "similar": list(entry.similar or []),
        "answer": entry.answer,
        "short_answer": entry.short_answer or "",
        "keywords": list(entry.keywords or []),
        "valid_from": iso_utc(entry.valid_from),
        "valid_to": iso_utc(entry.valid_to),
        "status": entry.status,
    }


def _shown(key: str, value: Any) -> str:
    if value is None or value == "":
        return "（空）"
    if key == "status":
        return STATUS_LABELS.get(value, str(value))
    if key in ("valid_from", "valid_to"):
        moment = parse_moment(value, FIELD_LABELS[key])
        return moment.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M") if moment else "（空）"
    if isinstance(value, list):
        return "、".join(value) if value else "（空）"
    return str(value)


def diff_snapshots(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """What changed, field by field, with Chinese labels and a one-line summary each."""
    changes: list[dict[str, Any]] = []
    for key, label in FIELD_LABELS.items():
        old = None if before is None else before.get(key)
        new = after.get(key)
        if key == "branch" and before is not None and before.get("branch_id") == after.get("branch_id"):
            continue
        if (old or None) == (new or None):
            continue
        change: dict[str, Any] = {"field": key, "label": label, "before": old, "after": new}
        if isinstance(new, list) or isinstance(old, list):
            added = [x for x in (new or []) if x not in (old or [])]
            removed = [x for x in (old or []) if x not in (new or [])]
            change["added"], change["removed"] = added, removed
            parts = []
            if added:
                parts.append("新增「" + "」「".join(added) + "」")
            if removed:
                parts.append("删除「" + "」「".join(removed) + "」")
            change["text"] = f"{label}：" + ("，".join(parts) if parts else "调整顺序")
        elif before is None:
            change["text"] = f"{label}：{_shorten(_shown(key, new))}"
        else:
            change["text"] = f"{label}：由「{_shorten(_shown(key, old))}」改为「{_shorten(_shown(key, new))}」"
        changes.append(change)
    return changes


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def version_json(version: KbEntryVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "action": version.action,
        "action_label": ACTION_LABELS.get(version.action, version.action),
        "editor": version.editor,
        "created_at": iso_utc(version.created_at),
        "snapshot": version.snapshot,
        "diff": version.diff,
        "note": version.note,
    }
