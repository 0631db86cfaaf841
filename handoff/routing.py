"""What the `handoff:` section of config.yml says: triggers, skill groups, routes, working hours.

Pure code (no Redis, no database), so that each rule is tested alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

STRATEGIES = ("longest_idle", "least_busy", "last_agent")
WEEKDAYS_CN = "一二三四五六日"


class PhraseMatcher:
    """Finds any of a list of phrases in a text in one pass (a regex alternation is an automaton).

    Case- and width-insensitive for Latin letters; longest phrases first so the reported
    match is the most specific one."""

    def __init__(self, phrases: list[str]) -> None:
        cleaned = sorted({p.strip().lower() for p in phrases if p and p.strip()}, key=len, reverse=True)
        self.phrases = cleaned
        self._pattern = re.compile("|".join(re.escape(p) for p in cleaned)) if cleaned else None

    def find(self, text: str) -> str | None:
        if self._pattern is None or not text:
            return None
        found = self._pattern.search(_normalise(text))
        return found.group(0) if found else None


def _normalise(text: str) -> str:
    # full-width ASCII to half-width, lower case, no spaces (citizens type "转 人 工")
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            ch = chr(code - 0xFEE0)
        if not ch.isspace():
            out.append(ch)
    return "".join(out).lower()


@dataclass(frozen=True)
class Span:
    start: time
    end: time  # time(23, 59, 59, 999999) stands for 24:00


def parse_spans(text: str) -> list[Span]:
    """ "08:30-12:00,14:00-17:30" → spans; "00:00-24:00" is the whole day."""
    spans = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        start_text, end_text = (p.strip() for p in part.split("-", 1))
        start = time.fromisoformat(start_text.zfill(5))
        end = time.max if end_text in {"24:00", "24:00:00"} else time.fromisoformat(end_text.zfill(5))
        if end <= start:
            raise ValueError(f"bad working-hours span {part!r}")
        spans.append(Span(start, end))
    return sorted(spans, key=lambda s: s.start)


def is_workday(day: date) -> bool:
    """A mainland working day: Monday–Friday except public holidays, plus the 调休 weekend days.

    chinese_calendar covers the years the State Council has published; past its data we fall
    back to plain weekdays."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def holiday_name(day: date) -> str | None:
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return None
    if not on_holiday or not name:
        return None
    names = {
        "New Year's Day": "元旦",
        "Spring Festival": "春节",
        "Tomb-sweeping Day": "清明节",
        "Labour Day": "劳动节",
        "Dragon Boat Festival": "端午节",
        "National Day": "国庆节",
        "Mid-autumn Festival": "中秋节",
    }
    return names.get(str(name), str(name))


@dataclass(frozen=True)
class WorkingHours:
    """When a group's people are at work: which days (`workdays` = the mainland calendar with
    holidays and 调休, or `everyday`) and which spans of those days."""

    spans: list[Span]
    days: str = "workdays"  # workdays | everyday
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))

    def _day_open(self, day: date) -> bool:
        return self.days == "everyday" or is_workday(day)

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz)
        if not self._day_open(local.date()):
            return False
        now = local.time()
        return any(span.start <= now < span.end or (span.end == time.max and now >= span.start) for span in self.spans)

    def next_opening(self, moment: datetime) -> datetime | None:
        """The next moment people are back (None when never: no spans)."""
        if not self.spans:
            return None
        local = moment.astimezone(self.tz)
        for offset in range(0, 60):
            day = local.date() + timedelta(days=offset)
            if not self._day_open(day):
                continue
            for span in self.spans:
                start = datetime.combine(day, span.start, self.tz)
                if start > local:
                    return start
        return None


def describe_opening(opening: datetime, now: datetime) -> str:
    """ "今天 14:00" / "明天 08:30" / "10月9日（周四）08:30" — when people are back, in Chinese."""
    local_now = now.astimezone(opening.tzinfo)
    days = (opening.date() - local_now.date()).days
    clock = opening.strftime("%H:%M")
    if days == 0:
        return f"今天 {clock}"
    if days == 1:
        return f"明天 {clock}"
    return f"{opening.month}月{opening.day}日（周{WEEKDAYS_CN[opening.weekday()]}）{clock}"


@dataclass(frozen=True)
class Group:
    name: str
    agents: tuple[str, ...]  # usernames; "*" = every agent
    strategy: str
    auto_assign: bool
    hours: WorkingHours | None

    def has_member(self, username: str, role: str) -> bool:
        if username in self.agents:
            return True
        return "*" in self.agents and role == "agent"


@dataclass(frozen=True)
class HandoffConfig:
    default_group: str
    groups: dict[str, Group]
    routes: dict[str, str]  # KB branch or intent → group
    capacity: int
    keywords: PhraseMatcher
    anger_words: PhraseMatcher
    flagged_tags: frozenset[str]
    kb_marker: str
    working_hours_enabled: bool
    heartbeat_timeout: float
    sweep_interval: float
    offer_message_after: float
    default_handle_seconds: float
    ticket_due_hours: float
    texts: dict[str, str]

    @classmethod
    def from_settings(cls, settings: Any) -> HandoffConfig:
        get = settings.get
        tz = ZoneInfo(str(get("handoff.working_hours.timezone", "Asia/Shanghai")))
        default_hours = get("handoff.working_hours.default", "08:30-12:00,14:00-17:30")
        default_group = str(get("handoff.default_group", "综合"))
        raw_groups = get("handoff.groups") or {}
        auto_default = bool(get("handoff.auto_assign", False))
        groups: dict[str, Group] = {}
        for name, raw in raw_groups.items():
            raw = raw or {}
            strategy = str(raw.get("strategy", "longest_idle"))
            if strategy not in STRATEGIES:
                raise ValueError(f"handoff.groups.{name}.strategy must be one of {STRATEGIES}")
            hours_text = raw.get("hours", default_hours)
            groups[str(name)] = Group(
                str(name),
                tuple(str(a) for a in raw.get("agents", ["*"])),
                strategy,
                bool(raw.get("auto_assign", auto_default)),
                WorkingHours(parse_spans(hours_text), str(raw.get("days", "workdays")), tz) if hours_text else None,
            )
        if default_group not in groups:
            groups[default_group] = Group(
                default_group,
                ("*",),
                "longest_idle",
                auto_default,
                WorkingHours(parse_spans(default_hours), "workdays", tz),
            )
        routes = {str(k): str(v) for k, v in (get("handoff.routes") or {}).items() if str(v) in groups}
        texts = {key: str(get(f"handoff.{key}", fallback)) for key, fallback in DEFAULT_TEXTS.items()}
        return cls(
            default_group=default_group,
            groups=groups,
            routes=routes,
            capacity=int(get("handoff.agent_capacity", 5)),
            keywords=PhraseMatcher(list(get("handoff.keywords") or [])),
            anger_words=PhraseMatcher(list(get("handoff.anger_words") or [])),
            flagged_tags=frozenset(str(t) for t in (get("handoff.flagged_citizen_tags") or [])),
            kb_marker=str(get("handoff.kb_handoff_marker", "#转人工")),
            working_hours_enabled=bool(get("handoff.working_hours.enabled", False)),
            heartbeat_timeout=float(get("handoff.heartbeat_timeout_seconds", 20)),
            sweep_interval=float(get("handoff.sweep_interval_seconds", 5)),
            offer_message_after=float(get("handoff.offer_message_after_seconds", 120)),
            default_handle_seconds=float(get("handoff.default_handle_seconds", 240)),
            ticket_due_hours=float(get("handoff.ticket_due_hours", 24)),
            texts=texts,
        )

    def group_for(self, *, explicit: str | None = None, intent: str | None = None, branch: str | None = None) -> str:
        """The skill group a handoff goes to: an explicit group, the intent's route, the last KB
        branch's route (the branch path's first part counts too), else the default group."""
        if explicit and explicit in self.groups:
            return explicit
        if intent and intent in self.routes:
            return self.routes[intent]
        if branch:
            if branch in self.routes:
                return self.routes[branch]
            top = branch.split("/", 1)[0]
            if top in self.routes:
                return self.routes[top]
            if top in self.groups:
                return top
        return self.default_group

    def group(self, name: str | None) -> Group:
        return self.groups.get(name or "", self.groups[self.default_group])

    def closed_text(self, group: str, now: datetime) -> str | None:
        """None when the group is at work now (or working hours are off); else the citizen's message."""
        if not self.working_hours_enabled:
            return None
        hours = self.group(group).hours
        if hours is None or hours.is_open(now):
            return None
        opening = hours.next_opening(now)
        local = now.astimezone(hours.tz)
        holiday = holiday_name(local.date())
        reason = f"今天是{holiday}假期，" if holiday else ""
        when = describe_opening(opening, now) if opening else "工作时间"
        return self.texts["off_hours_reply"].format(reason=reason, when=when)


DEFAULT_TEXTS = {
    "queued_reply": "已为您转接人工客服，当前排队第 {position} 位，请稍候。",
    "assigned_reply": "人工客服 {agent} 已接入，请问有什么可以帮您？",
    "closed_reply": "本次人工服务已结束，感谢您的咨询。如还有问题，可以继续向智能客服提问。",
    "returned_reply": "已为您转回智能客服，您可以继续提问。",
    "transferred_reply": "已为您转接到{target}，请稍候。",
    "off_hours_reply": "{reason}现在是非工作时间，人工客服将于 {when} 恢复服务。您可以留言，工作人员上班后会尽快处理。",
    "offer_message_reply": "目前排队人数较多，您可以继续等待，也可以留言，工作人员会在 24 小时内处理并回复您。",
    "ticket_reply": "您的留言已提交（工单号 {ticket}），工作人员会在 24 小时内处理。",
    "csat_question": "请您对本次服务进行评价：1-5 分（5 分为非常满意），也可以留下您的意见。",
    "csat_thanks": "感谢您的评价！",
    "agent_offline_reply": "当前坐席连接中断，已为您优先重新排队，请稍候。",
}
