"""Score sheets (评分表): weighted items, automatic ones tied to rules, manual ones an inspector fills,
and a pass mark. A sheet is versioned like the rules: every score keeps the version it used."""

from __future__ import annotations

import re
from typing import Any

from core.errors import Refusal
from qa.rules import Hit

MAX_ITEMS = 50


class SheetError(Refusal):
    def __init__(self, reason: str, code: str = "bad_sheet") -> None:
        super().__init__(400, reason, code)


def clean_sheet(raw: Any, rule_ids: set[str]) -> dict[str, Any]:
    """`{name, pass_mark, items: [{key, name, weight, kind: auto|manual, rules: [rule id]}]}` checked."""
    if not isinstance(raw, dict):
        raise SheetError("评分表格式错误。")
    name = str(raw.get("name") or "").strip()
    if not name or len(name) > 64:
        raise SheetError("评分表需要名称（不超过 64 字）。")
    items_raw = raw.get("items")
    if not isinstance(items_raw, list) or not 0 < len(items_raw) <= MAX_ITEMS:
        raise SheetError(f"评分表需要 1 到 {MAX_ITEMS} 个评分项。")
    items: list[dict[str, Any]] = []
    keys: set[str] = set()
    for index, item in enumerate(items_raw, start=1):
        if not isinstance(item, dict):
            raise SheetError(f"第 {index} 个评分项格式错误。")
        key = str(item.get("key") or "").strip()
        label = str(item.get("name") or "").strip()
        weight = item.get("weight")
        kind = item.get("kind")
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,40}", key) or key in keys:
            raise SheetError(f"第 {index} 个评分项的编号缺失、格式不对或重复。")
        if not label:
            raise SheetError(f"第 {index} 个评分项需要名称。")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            raise SheetError(f"评分项“{label}”的分值必须大于 0。")
        if kind not in ("auto", "manual"):
            raise SheetError(f"评分项“{label}”的类型只能是自动或人工。")
        rules = [str(r) for r in item.get("rules") or []]
        unknown = [r for r in rules if r not in rule_ids]
        if kind == "auto" and not rules:
            raise SheetError(f"自动评分项“{label}”需要关联至少一条规则。")
        if unknown:
            raise SheetError(f"评分项“{label}”关联的规则不存在：{'、'.join(unknown)}。")
        keys.add(key)
        items.append({"key": key, "name": label, "weight": float(weight), "kind": kind, "rules": rules})
    total = sum(item["weight"] for item in items)
    pass_mark = raw.get("pass_mark")
    if isinstance(pass_mark, bool) or not isinstance(pass_mark, int | float) or not 0 < pass_mark <= total:
        raise SheetError(f"及格分必须大于 0 且不超过满分 {total:g}。")
    return {"name": name, "items": items, "pass_mark": float(pass_mark)}


def auto_scores(items: list[dict[str, Any]], hits: list[Hit] | list[dict[str, Any]]) -> dict[str, float]:
    """Each item's points before a person looks: an automatic item loses its rules' deductions (never
    below 0); a manual item starts at full marks."""
    lost: dict[str, float] = {}
    for hit in hits:
        rule_id = hit.rule_id if isinstance(hit, Hit) else hit["rule_id"]
        deduct = hit.deduct if isinstance(hit, Hit) else float(hit.get("deduct", 0))
        lost[rule_id] = lost.get(rule_id, 0.0) + deduct
    scores: dict[str, float] = {}
    for item in items:
        if item["kind"] == "auto":
            scores[item["key"]] = max(0.0, item["weight"] - sum(lost.get(r, 0.0) for r in item["rules"]))
        else:
            scores[item["key"]] = item["weight"]
    return scores


def check_scores(items: list[dict[str, Any]], raw: Any) -> dict[str, float]:
    """An inspector's filled sheet: every item present, each between 0 and its weight."""
    if not isinstance(raw, dict):
        raise SheetError("请填写评分表。")
    scores: dict[str, float] = {}
    for item in items:
        value = raw.get(item["key"])
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= item["weight"]:
            raise SheetError(f"评分项“{item['name']}”的得分必须在 0 到 {item['weight']:g} 之间。")
        scores[item["key"]] = float(value)
    return scores
