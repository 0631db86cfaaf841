"""Automatic QA rules: each rule looks at a transcript (or a call's timed text) and reports hits, each
pointing at its message (or second of the recording) with the points it deducts on the score sheet.

A rule is a plain dict (edited on the page, stored as one version of the rule set):
`{id, name, kind, enabled, deduct, ...}` with, by kind,
- `words`: `words` (list), `who` (agent | citizen), `complaint` (a hit marks the item a complaint);
- `required_phrase`: `phrases`, `where` (first_agent_reply | last_agent_reply) — a hit when missing;
- `regex`: `pattern`, `who`;
- `first_response`: `max_seconds`;  `gap`: `max_seconds` (each agent reply that kept the citizen waiting);
- `transfers`: `max`;  `low_csat`: `max_score`;
- `ticket_promised`: `phrases` — the agent promised a 工单 but none is linked to the conversation;
- calls: `silence`: `max_seconds` (a pause between segments);  `talk_over`: `min_seconds` (overlap).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import Refusal
from core.wordmatch import WordMatcher, normalise
from qa.transcript import Line, Transcript

KINDS: dict[str, str] = {
    "words": "关键词（词表）",
    "required_phrase": "必说话术",
    "regex": "正则表达式",
    "first_response": "首次响应超时",
    "gap": "回复间隔超时",
    "transfers": "转接次数过多",
    "low_csat": "满意度低",
    "ticket_promised": "承诺工单未创建",
    "silence": "通话静默",
    "talk_over": "通话抢话",
}
WHO = ("agent", "citizen")
MAX_RULES = 200
MAX_WORDS = 50_000


class RuleError(Refusal):
    def __init__(self, reason: str, code: str = "bad_rule") -> None:
        super().__init__(400, reason, code)


@dataclass(frozen=True)
class Hit:
    rule_id: str
    rule_name: str
    kind: str
    deduct: float
    message_id: int | None = None
    second: float | None = None
    word: str = ""
    start: int | None = None  # the word's place inside the message text
    end: int | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != ""} | {"deduct": self.deduct}


def _number(rule: dict[str, Any], key: str, name: str, *, minimum: float = 0) -> float:
    value = rule.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise RuleError(f"规则“{name}”的{key}必须是不小于 {minimum:g} 的数字。")
    return float(value)


def _strings(rule: dict[str, Any], key: str, name: str) -> list[str]:
    raw = rule.get(key)
    if isinstance(raw, str):
        raw = re.split(r"[\n,，、]+", raw)
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise RuleError(f"规则“{name}”的{key}必须是文字列表。")
    items = list(dict.fromkeys(item.strip() for item in raw if item.strip()))
    if not items:
        raise RuleError(f"规则“{name}”至少要有一个词或话术。")
    return items


def clean_rules(raw: Any) -> list[dict[str, Any]]:
    """Check a rule set from the page: every rule complete and sensible, ids unique. Refuses (400,
    Chinese reason) rather than storing half a rule set."""
    if not isinstance(raw, list) or len(raw) > MAX_RULES:
        raise RuleError(f"规则必须是列表，且不超过 {MAX_RULES} 条。")
    seen: set[str] = set()
    rules: list[dict[str, Any]] = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise RuleError(f"第 {index} 条规则格式错误。")
        rule_id = str(item.get("id") or "").strip()
        name = str(item.get("name") or "").strip()
        kind = item.get("kind")
        if not re.fullmatch(r"[A-Za-z0-9_\-]{1,40}", rule_id) or rule_id in seen:
            raise RuleError(f"第 {index} 条规则的编号缺失、格式不对或重复（字母、数字、下划线）。")
        if not name or len(name) > 40:
            raise RuleError(f"第 {index} 条规则需要名称（不超过 40 字）。")
        if kind not in KINDS:
            raise RuleError(f"规则“{name}”的类型不认识。")
        seen.add(rule_id)
        rule: dict[str, Any] = {
            "id": rule_id, "name": name, "kind": kind, "enabled": item.get("enabled", True) is not False,
            "deduct": _number(item, "deduct", name),
        }
        if kind in ("words", "regex"):
            who = item.get("who", "agent")
            if who not in WHO:
                raise RuleError(f"规则“{name}”的对象只能是坐席或市民。")
            rule["who"] = who
        if kind == "words":
            rule["words"] = _strings(item, "words", name)
            if len(rule["words"]) > MAX_WORDS:
                raise RuleError(f"规则“{name}”的词表超过 {MAX_WORDS} 个词。")
            rule["complaint"] = bool(item.get("complaint", False))
        elif kind in ("required_phrase", "ticket_promised"):
            rule["phrases"] = _strings(item, "phrases", name)
            if kind == "required_phrase":
                where = item.get("where", "first_agent_reply")
                if where not in ("first_agent_reply", "last_agent_reply"):
                    raise RuleError(f"规则“{name}”的位置只能是首次回复或最后回复。")
                rule["where"] = where
        elif kind == "regex":
            pattern = item.get("pattern")
            try:
                re.compile(str(pattern))
            except re.error as error:
                raise RuleError(f"规则“{name}”的正则表达式有误：{error}。") from error
            if not isinstance(pattern, str) or not pattern:
                raise RuleError(f"规则“{name}”需要正则表达式。")
            rule["pattern"] = pattern
        elif kind in ("first_response", "gap", "silence"):
            rule["max_seconds"] = _number(item, "max_seconds", name, minimum=1)
        elif kind == "talk_over":
            rule["min_seconds"] = _number(item, "min_seconds", name, minimum=0.1)
        elif kind == "transfers":
            rule["max"] = int(_number(item, "max", name))
        elif kind == "low_csat":
            rule["max_score"] = int(_number(item, "max_score", name, minimum=1))
        rules.append(rule)
    return rules


class CompiledRules:
    """One rule set made ready to run: every word list in one automaton (tags = rule ids)."""

    def __init__(self, version: int, rules: list[dict[str, Any]]) -> None:
        self.version = version
        self.rules = [rule for rule in rules if rule.get("enabled", True)]
        self.by_id = {rule["id"]: rule for rule in self.rules}
        self.matcher = WordMatcher(
            (word, rule["id"]) for rule in self.rules if rule["kind"] == "words" for word in rule["words"]
        )
        self._patterns = {r["id"]: re.compile(r["pattern"]) for r in self.rules if r["kind"] == "regex"}

    def words_of(self, who: str) -> list[str]:
        return [r["id"] for r in self.rules if r["kind"] == "words" and r.get("who") == who]

    def evaluate(self, transcript: Transcript) -> list[Hit]:
        hits: list[Hit] = []
        visible = transcript.visible()
        for line in visible:
            hits += self._word_hits(line)
            hits += self._regex_hits(line)
        for rule in self.rules:
            hits += list(_CHECKS.get(rule["kind"], _none)(rule, transcript))
        for segment in transcript.segments:
            hits += self._segment_words(segment)
        return hits

    def complaint(self, hits: Iterable[Hit]) -> bool:
        return any(self.by_id.get(hit.rule_id, {}).get("complaint") for hit in hits)

    def _word_hits(self, line: Line) -> list[Hit]:
        if line.sender not in WHO:
            return []
        found = []
        for match in self.matcher.find(line.text):
            rule = self.by_id[match.tag]
            if rule.get("who") == line.sender:
                found.append(Hit(rule["id"], rule["name"], "words", rule["deduct"], message_id=line.id,
                                 word=match.word, start=match.start, end=match.end))
        return found

    def _segment_words(self, segment: dict[str, Any]) -> list[Hit]:
        found = []
        for match in self.matcher.find(str(segment.get("text", ""))):
            rule = self.by_id[match.tag]
            if rule.get("who") == segment.get("speaker"):
                found.append(Hit(rule["id"], rule["name"], "words", rule["deduct"],
                                 second=float(segment.get("start", 0)), word=match.word))
        return found

    def _regex_hits(self, line: Line) -> list[Hit]:
        found = []
        for rule_id, pattern in self._patterns.items():
            rule = self.by_id[rule_id]
            if rule.get("who") != line.sender:
                continue
            for match in pattern.finditer(line.text):
                found.append(Hit(rule_id, rule["name"], "regex", rule["deduct"], message_id=line.id,
                                 word=match.group(0), start=match.start(), end=match.end()))
        return found


def _none(_rule: dict[str, Any], _transcript: Transcript) -> list[Hit]:
    return []


def _hit(rule: dict[str, Any], **kwargs: Any) -> Hit:
    return Hit(rule["id"], rule["name"], rule["kind"], rule["deduct"], **kwargs)


@functools.lru_cache(maxsize=4096)
def _folded(phrase: str) -> str:
    return normalise(phrase)


def _contains_any(text: str, phrases: list[str]) -> bool:
    folded = normalise(text)
    return any(_folded(phrase) in folded for phrase in phrases)


def _required_phrase(rule: dict[str, Any], transcript: Transcript) -> list[Hit]:
    replies = transcript.agent_lines()
    if not replies:
        return []
    line = replies[0] if rule["where"] == "first_agent_reply" else replies[-1]
    if _contains_any(line.text, rule["phrases"]):
        return []
    wanted = "、".join(rule["phrases"][:3])
    return [_hit(rule, message_id=line.id, detail=f"缺少：{wanted}")]


def _first_response(rule: dict[str, Any], transcript: Transcript) -> list[Hit]:
    seconds = transcript.first_response_seconds()
    if seconds is None or seconds <= rule["max_seconds"]:
        return []
    first = transcript.agent_lines()[0]
    return [_hit(rule, message_id=first.id, detail=f"首次响应 {seconds:.0f} 秒")]


def _gap(rule: dict[str, Any], transcript: Transcript) -> list[Hit]:
    return [
        _hit(rule, message_id=line.id, detail=f"市民等待 {seconds:.0f} 秒")
        for line, seconds in transcript.agent_gaps()
        if seconds > rule["max_seconds"]
    ]


def _transfers(rule: dict[str, Any], transcript: Transcript) -> list[Hit]:
    count = transcript.transfers
    return [_hit(rule, detail=f"转接 {count} 次")] if count > rule["max"] else []


def _low_csat(rule: dict[str, Any], transcript: Transcript) -> list[Hit]:
    score = transcript.csat
    return [_hit(rule, detail=f"满意度 {score} 分")] if score is not None and score <= rule["max_score"] else []


def _ticket_promised(rule: dict[str, Any], transcript: Transcript) -> list[Hit]:
    if transcript.ticket_ids:
        return []
    promised = next((line for line in transcript.agent_lines() if _contains_any(line.text, rule["phrases"])), None)
    return [] if promised is None else [_hit(rule, message_id=promised.id, detail="承诺了工单，但本会话没有工单")]


def _ordered_segments(transcript: Transcript) -> list[dict[str, Any]]:
    return sorted(transcript.segments, key=lambda s: (float(s.get("start", 0)), float(s.get("end", 0))))


def _silence(rule: dict[str, Any], transcript: Transcript) -> list[Hit]:
    hits = []
    spoken_until: float | None = None
    for segment in _ordered_segments(transcript):
        start, end = float(segment.get("start", 0)), float(segment.get("end", 0))
        if spoken_until is not None and start - spoken_until > rule["max_seconds"]:
            hits.append(_hit(rule, second=spoken_until, detail=f"静默 {start - spoken_until:.1f} 秒"))
        spoken_until = end if spoken_until is None else max(spoken_until, end)
    return hits


def _talk_over(rule: dict[str, Any], transcript: Transcript) -> list[Hit]:
    hits = []
    segments = _ordered_segments(transcript)
    for segment in segments:
        if segment.get("speaker") != "agent":
            continue
        for other in segments:
            if other.get("speaker") != "citizen":
                continue
            overlap = min(float(segment["end"]), float(other["end"])) - max(float(segment["start"]),
                                                                          float(other["start"]))
            # the agent cut in: started while the citizen was speaking
            if overlap >= rule["min_seconds"] and float(other["start"]) <= float(segment["start"]):
                hits.append(_hit(rule, second=float(segment["start"]), detail=f"抢话 {overlap:.1f} 秒"))
                break
    return hits


_CHECKS = {
    "required_phrase": _required_phrase,
    "first_response": _first_response,
    "gap": _gap,
    "transfers": _transfers,
    "low_csat": _low_csat,
    "ticket_promised": _ticket_promised,
    "silence": _silence,
    "talk_over": _talk_over,
}
