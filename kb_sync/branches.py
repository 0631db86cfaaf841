"""The branch (知识分类) tree: every branch with its path ("居住证/签注"), built from one query's rows,
and the rules for a branch's name. Pure: the store loads the rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kb_sync.rules import KbError

MAX_BRANCH_NAME = 64
PATH_SEP = "/"


@dataclass
class BranchInfo:
    id: int
    name: str
    parent_id: int | None
    path: str = ""
    entry_count: int = 0
    children: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "parent_id": self.parent_id, "path": self.path,
                "entry_count": self.entry_count}


class BranchTree:
    """All branches with their paths ("居住证/签注"), built from one query."""

    def __init__(self, rows: Iterable[tuple[int, str, int | None]], counts: dict[int, int] | None = None) -> None:
        self.by_id: dict[int, BranchInfo] = {i: BranchInfo(i, n, p) for i, n, p in rows}
        for info in self.by_id.values():
            if info.parent_id in self.by_id:
                self.by_id[info.parent_id].children.append(info.id)
            info.entry_count = (counts or {}).get(info.id, 0)
        for info in self.by_id.values():
            info.path = self._path(info.id)
        self.by_path = {info.path: info.id for info in self.by_id.values()}

    def _path(self, branch_id: int) -> str:
        names: list[str] = []
        seen: set[int] = set()
        current: int | None = branch_id
        while current is not None and current in self.by_id and current not in seen:
            seen.add(current)
            names.append(self.by_id[current].name)
            current = self.by_id[current].parent_id
        return PATH_SEP.join(reversed(names))

    def descendants(self, branch_id: int) -> list[int]:
        out, stack = [], [branch_id]
        while stack:
            current = stack.pop()
            out.append(current)
            stack.extend(self.by_id[current].children if current in self.by_id else [])
        return out

    def ordered(self) -> list[BranchInfo]:
        return sorted(self.by_id.values(), key=lambda b: b.path)


def split_path(path: str) -> list[str]:
    return [part.strip() for part in (path or "").replace("／", PATH_SEP).replace("\\", PATH_SEP).split(PATH_SEP)
            if part.strip()]


def check_branch_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise KbError(400, "知识分类名称不能为空。", "bad_name")
    name = name.strip()
    if len(name) > MAX_BRANCH_NAME:
        raise KbError(400, f"知识分类名称不能超过 {MAX_BRANCH_NAME} 个字。", "bad_name")
    if PATH_SEP in name or "\\" in name or "／" in name:
        raise KbError(400, "知识分类名称不能包含“/”。", "bad_name")
    return name
