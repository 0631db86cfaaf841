"""QA and service reports per day, week or month and per agent or group (none = the whole centre).

QA: items, average score, pass rate, rule hits (from `qa_items`). Service: conversations by channel
and hour, bot containment (never handed to a person) and handoff rate and reasons, queue wait and
abandonment (handed off, never taken), first response and handle time, CSAT. Aggregates run in the
database by day; weeks and months are summed from the days."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Float, Integer, case, cast, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Refusal
from core.models import Conversation, ConversationEvent, User
from core.models.qa import QaItem, QaVolumeDay

PERIODS = ("day", "week", "month")
BY = ("none", "agent", "group")
MAX_DAYS = 366


def check_range(day_from: str | None, day_to: str | None, period: str, by: str,
                timezone: str = "Asia/Shanghai") -> tuple[str, str]:
    """The report's first and last day (default: the last 30 days, in the bureau's time zone)."""
    if period not in PERIODS or by not in BY:
        raise Refusal(400, "统计周期只能是日、周、月；分组只能是全部、坐席或技能组。", "bad_report")
    today = datetime.now(ZoneInfo(timezone)).date()
    try:
        last = date.fromisoformat(day_to) if day_to else today
        first = date.fromisoformat(day_from) if day_from else last - timedelta(days=29)
    except ValueError as error:
        raise Refusal(400, "日期格式应为 YYYY-MM-DD。", "bad_date") from error
    if first > last or (last - first).days >= MAX_DAYS:
        raise Refusal(400, f"开始日期不能晚于结束日期，且范围不超过 {MAX_DAYS} 天。", "bad_date")
    return first.isoformat(), last.isoformat()


def bucket(day: str, period: str) -> str:
    if period == "day":
        return day
    moment = date.fromisoformat(day)
    if period == "month":
        return day[:7]
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


async def _names(session: AsyncSession, by: str, keys: set[Any]) -> dict[Any, str]:
    if by != "agent":
        return {k: (str(k) if k else ("全部" if by == "none" else "未分组")) for k in keys}
    ids = [k for k in keys if k is not None]
    rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(ids))) if ids else []
    names = {int(i): str(n) for i, n in rows}
    return {k: names.get(k, "未知坐席") for k in keys}


def _key(by: str) -> Any:
    return {"agent": QaItem.agent_id, "group": QaItem.group}.get(by, literal("全部"))


async def qa_report(session: AsyncSession, day_from: str | None, day_to: str | None, period: str = "day",
                    by: str = "none", timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    first, last = check_range(day_from, day_to, period, by, timezone)
    key = _key(by).label("k")
    rows = (await session.execute(
        select(QaItem.day, key, func.count(), func.sum(QaItem.score),
               func.sum(case((QaItem.passed, 1), else_=0)), func.sum(QaItem.hit_count),
               func.sum(case((QaItem.status.in_(("inspected", "appealed", "final")), 1), else_=0)))
        .where(QaItem.day >= first, QaItem.day <= last).group_by(QaItem.day, key)
    )).all()
    totals: dict[tuple[str, Any], list[float]] = defaultdict(lambda: [0, 0.0, 0, 0, 0])
    for day, k, count, score_sum, passed, hits, inspected in rows:
        cell = totals[(bucket(day, period), k)]
        for index, value in enumerate((count, score_sum or 0, passed or 0, hits or 0, inspected or 0)):
            cell[index] += float(value)
    names = await _names(session, by, {k for _, k in totals})
    out = [
        {
            "bucket": b, "key": k, "name": names[k], "items": int(c[0]),
            "avg_score": round(c[1] / c[0], 2) if c[0] else None,
            "pass_rate": round(c[2] / c[0], 4) if c[0] else None,
            "hits": int(c[3]), "inspected": int(c[4]),
        }
        for (b, k), c in sorted(totals.items(), key=lambda kv: (kv[0][0], names[kv[0][1]]))
    ]
    return {"from": first, "to": last, "period": period, "by": by, "rows": out}


def _day_range_utc(first: str, last: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(first).replace(tzinfo=zone).astimezone(UTC)
    end = (datetime.fromisoformat(last) + timedelta(days=1)).replace(tzinfo=zone).astimezone(UTC)
    return start, end


def _local(column: Any, dialect: str, zone: ZoneInfo, part: str) -> Any:
    """The local day (YYYY-MM-DD) or hour of a timestamp column, in the database."""
    if dialect == "postgresql":
        local = func.timezone(zone.key, column)
        return cast(local, Date) if part == "day" else cast(func.extract("hour", local), Integer)
    offset = datetime.now(zone).utcoffset() or timedelta(0)
    shift = f"{int(offset.total_seconds() // 3600):+d} hours"
    if part == "day":
        return func.strftime("%Y-%m-%d", column, shift)
    return cast(func.strftime("%H", column, shift), Integer)


async def _count_days(session: AsyncSession, first: str, last: str, zone: ZoneInfo,
                      dialect: str) -> list[tuple[str, str, int, int, int]]:
    """(day, channel, hour, conversations, 0) per started conversation group and (day, "", -1, 0,
    handed) per day with 转人工, counted from the conversations and their events (two group-bys)."""
    start, end = _day_range_utc(first, last, zone)
    day = _local(Conversation.started_at, dialect, zone, "day").label("d")
    hour = _local(Conversation.started_at, dialect, zone, "hour").label("h")
    rows: list[tuple[str, str, int, int, int]] = [
        (str(d), str(channel), int(h), int(count), 0)
        for d, h, channel, count in await session.execute(
            select(day, hour, Conversation.channel, func.count())
            .where(Conversation.started_at >= start, Conversation.started_at < end)
            .group_by(day, hour, Conversation.channel)
        )
    ]
    asked_day = _local(ConversationEvent.created_at, dialect, zone, "day").label("d")
    rows += [
        (str(d), "", -1, 0, int(count))
        for d, count in await session.execute(
            select(asked_day, func.count(func.distinct(ConversationEvent.conversation_id)))
            .where(ConversationEvent.kind == "request_human", ConversationEvent.created_at >= start,
                   ConversationEvent.created_at < end)
            .group_by(asked_day)
        )
    ]
    return rows


async def volume_days(session: AsyncSession, first: str, last: str, zone: ZoneInfo,
                      dialect: str) -> list[tuple[str, str, int, int, int]]:
    """The counts of `_count_days`, from `qa_volume_days` for days that are over (computed once, on
    first use: a marker row per day says it is done) and live for today."""
    today = datetime.now(zone).date().isoformat()
    closed_last = min(last, (date.fromisoformat(today) - timedelta(days=1)).isoformat())
    rows: list[tuple[str, str, int, int, int]] = []
    if first <= closed_last:
        wanted = {(date.fromisoformat(first) + timedelta(days=n)).isoformat()
                  for n in range((date.fromisoformat(closed_last) - date.fromisoformat(first)).days + 1)}
        done = set((await session.execute(
            select(QaVolumeDay.day).where(QaVolumeDay.day >= first, QaVolumeDay.day <= closed_last,
                                          QaVolumeDay.channel == "", QaVolumeDay.hour == -1)
        )).scalars())
        missing = sorted(wanted - done)
        if missing:
            counted = await _count_days(session, missing[0], missing[-1], zone, dialect)
            fresh = [r for r in counted if r[0] in missing]
            markers = {r[0] for r in fresh if r[2] == -1}
            fresh += [(d, "", -1, 0, 0) for d in missing if d not in markers]
            session.add_all(QaVolumeDay(day=d, channel=c, hour=h, conversations=n, handed=k) for d, c, h, n, k in fresh)
            try:
                await session.commit()
            except IntegrityError:  # another report stored them meanwhile
                await session.rollback()
        rows += [
            (str(d), str(c), int(h), int(n), int(k))
            for d, c, h, n, k in await session.execute(
                select(QaVolumeDay.day, QaVolumeDay.channel, QaVolumeDay.hour, QaVolumeDay.conversations,
                       QaVolumeDay.handed)
                .where(QaVolumeDay.day >= first, QaVolumeDay.day <= closed_last)
            )
        ]
    if last >= today:
        rows += await _count_days(session, max(first, today), last, zone, dialect)
    return rows


async def service_report(session: AsyncSession, day_from: str | None, day_to: str | None, period: str = "day",
                         by: str = "none", timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    first, last = check_range(day_from, day_to, period, by, timezone)
    zone = ZoneInfo(timezone)
    dialect = session.bind.dialect.name  # type: ignore[union-attr]
    # volume by channel and hour (every conversation, whoever served it) and bot containment
    volume = await volume_days(session, first, last, zone, dialect)
    by_channel: dict[str, int] = defaultdict(int)
    hours: dict[int, int] = defaultdict(int)
    containment: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for d, channel, h, conversations, handed in volume:
        if h >= 0:
            by_channel[channel] += conversations
            hours[h] += conversations
            containment[bucket(d, period)][0] += conversations
        elif handed:
            containment[bucket(d, period)][1] += handed
    # served conversations (QA items): handoff reasons, waits, abandonment, response and handle times, CSAT
    key = _key(by).label("k")
    number = lambda column: func.sum(cast(column, Float))  # noqa: E731
    counted = lambda column: func.count(column)  # noqa: E731
    rows = (await session.execute(
        select(QaItem.day, key, QaItem.handoff_reason, func.count(),
               func.sum(case((QaItem.handed_off, 1), else_=0)),
               number(QaItem.wait_seconds), counted(QaItem.wait_seconds),
               func.sum(case((QaItem.handed_off & QaItem.wait_seconds.is_(None), 1), else_=0)),
               number(QaItem.first_response_seconds), counted(QaItem.first_response_seconds),
               number(QaItem.handle_seconds), counted(QaItem.handle_seconds),
               number(QaItem.csat), counted(QaItem.csat))
        .where(QaItem.day >= first, QaItem.day <= last).group_by(QaItem.day, key, QaItem.handoff_reason)
    )).all()
    cells: dict[tuple[str, Any], list[float]] = defaultdict(lambda: [0.0] * 11)
    reasons: dict[str | None, int] = defaultdict(int)  # one scan: the reason is a grouping column too
    for d, k, reason, *values in rows:
        cell = cells[(bucket(d, period), k)]
        for index, value in enumerate(values):
            cell[index] += float(value or 0)
        if values[1]:
            reasons[reason] += int(values[1])
    names = await _names(session, by, {k for _, k in cells})

    def avg(total: float, count: float) -> float | None:
        return round(total / count, 1) if count else None

    served = [
        {
            "bucket": b, "key": k, "name": names[k], "closed": int(c[0]), "handed_off": int(c[1]),
            "avg_wait_seconds": avg(c[2], c[3]), "abandoned": int(c[4]),
            "avg_first_response_seconds": avg(c[5], c[6]), "avg_handle_seconds": avg(c[7], c[8]),
            "avg_csat": round(c[9] / c[10], 2) if c[10] else None, "csat_count": int(c[10]),
        }
        for (b, k), c in sorted(cells.items(), key=lambda kv: (kv[0][0], names[kv[0][1]]))
    ]
    return {
        "from": first, "to": last, "period": period, "by": by,
        "by_channel": dict(sorted(by_channel.items())),
        "by_hour": [int(hours.get(h, 0)) for h in range(24)],
        "containment": [
            {"bucket": b, "conversations": c[0], "handed_off": c[1],
             "containment_rate": round(1 - c[1] / c[0], 4) if c[0] else None,
             "handoff_rate": round(c[1] / c[0], 4) if c[0] else None}
            for b, c in sorted(containment.items())
        ],
        "handoff_reasons": {str(k or "unknown"): int(v) for k, v in reasons.items()},
        "served": served,
    }
