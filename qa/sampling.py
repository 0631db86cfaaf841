"""Sampling plans: which scored items people inspect, and who inspects them.

The plan (config `qa.sampling`): a share drawn at random (stable: the same conversation is always in
or out, so several scorers agree), every item under the pass mark, every complaint, every CSAT at or
below a threshold, and at least N per agent per week (topped up by `weekly_minimum`). Tasks go to
the inspector with the fewest open tasks (ties: lowest id), so work spreads evenly."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import User
from core.models.base import utcnow
from core.models.qa import QaItem, QaTask


@dataclass(frozen=True)
class Plan:
    random_share: float = 0.05
    below_pass: bool = True
    complaints: bool = True
    csat_at_most: int = 2
    per_agent_week: int = 3
    due_days: int = 3

    @classmethod
    def from_config(cls, raw: dict[str, Any] | None) -> Plan:
        raw = raw or {}
        return cls(
            random_share=float(raw.get("random_share", 0.05)),
            below_pass=bool(raw.get("below_pass", True)),
            complaints=bool(raw.get("complaints", True)),
            csat_at_most=int(raw.get("csat_at_most", 2)),
            per_agent_week=int(raw.get("per_agent_week", 3)),
            due_days=int(raw.get("due_days", 3)),
        )


def drawn(conversation_id: str, share: float) -> bool:
    """The random share, decided by a hash of the conversation id (stable across workers and retries)."""
    digest = int.from_bytes(hashlib.sha256(conversation_id.encode()).digest()[:8], "big")
    return digest / 2**64 < share


def reason_for(plan: Plan, conversation_id: str, passed: bool, complaint: bool, csat: int | None) -> str | None:
    """Why an item must be inspected, or None. Mandatory reasons come before the random draw."""
    if plan.below_pass and not passed:
        return "below_pass"
    if plan.complaints and complaint:
        return "complaint"
    if csat is not None and csat <= plan.csat_at_most:
        return "low_csat"
    if drawn(conversation_id, plan.random_share):
        return "random"
    return None


async def inspectors(session: AsyncSession) -> list[int]:
    return list((await session.execute(select(User.id).where(User.role == "inspector").order_by(User.id))).scalars())


async def open_loads(session: AsyncSession, people: list[int]) -> dict[int, int]:
    rows = await session.execute(
        select(QaTask.inspector_id, func.count(QaTask.id))
        .where(QaTask.status == "open", QaTask.inspector_id.in_(people))
        .group_by(QaTask.inspector_id)
    )
    loads = dict.fromkeys(people, 0)
    loads.update({int(who): int(count) for who, count in rows})
    return loads


def least_loaded(loads: dict[int, int]) -> int:
    return min(loads, key=lambda who: (loads[who], who))


async def assign(session: AsyncSession, items: list[tuple[QaItem, str]], plan: Plan) -> list[QaTask]:
    """Tasks for `items` (item, reason), each to the least-loaded inspector at that moment. Nobody to
    give them to (no inspector account): none are made, the items stay findable in search."""
    people = await inspectors(session)
    if not people or not items:
        return []
    loads = await open_loads(session, people)
    tasks = []
    now = utcnow()
    for item, reason in items:
        who = least_loaded(loads)
        loads[who] += 1
        task = QaTask(item_id=item.id, inspector_id=who, reason=reason, due_at=now + timedelta(days=plan.due_days))
        session.add(task)
        item.status = "sampled"
        tasks.append(task)
    return tasks


def week_bounds(day: str) -> tuple[str, str]:
    """Monday and Sunday (YYYY-MM-DD) of the week holding `day`."""
    moment = datetime.strptime(day, "%Y-%m-%d")
    monday = moment - timedelta(days=moment.weekday())
    return monday.strftime("%Y-%m-%d"), (monday + timedelta(days=6)).strftime("%Y-%m-%d")


async def weekly_minimum(session: AsyncSession, plan: Plan, day: str, seed: int | None = None) -> int:
    """Top up the week holding `day`: every agent with fewer than `per_agent_week` sampled items gets
    more, drawn at random from their unsampled ones. Returns how many tasks were made."""
    first, last = week_bounds(day)
    in_week = (QaItem.day >= first) & (QaItem.day <= last) & QaItem.agent_id.is_not(None)
    sampled = dict(
        (await session.execute(
            select(QaItem.agent_id, func.count(QaTask.id)).join(QaTask, QaTask.item_id == QaItem.id)
            .where(in_week).group_by(QaItem.agent_id)
        )).all()
    )
    agents = list((await session.execute(select(QaItem.agent_id).where(in_week).distinct())).scalars())
    chooser = random.Random(seed)
    picked: list[tuple[QaItem, str]] = []
    for agent in sorted(agents):
        short = plan.per_agent_week - int(sampled.get(agent, 0))
        if short <= 0:
            continue
        pool = list((await session.execute(
            select(QaItem).outerjoin(QaTask, QaTask.item_id == QaItem.id)
            .where(in_week, QaItem.agent_id == agent, QaTask.id.is_(None)).order_by(QaItem.id)
        )).scalars())
        picked += [(item, "weekly_minimum") for item in chooser.sample(pool, min(short, len(pool)))]
    tasks = await assign(session, picked, plan)
    await session.commit()
    return len(tasks)
