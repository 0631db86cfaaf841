"""Content review (内容审核): an agent's reply is screened against the forbidden-word rules before it
is sent (`screen`, synchronous and fast: the compiled automaton of the newest rule set), and citizen
messages that hit a citizen word rule are listed for supervisors."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import Message
from core.models.base import utcnow
from core.models.qa import QaItem, QaRuleSet
from core.wordmatch import WordHit, WordMatcher
from qa.masking import mask_text


class ContentScreen:
    """Holds the matcher of the agent word rules named in `qa.screen_rules` (all agent word rules
    when empty); `refresh` rebuilds it when a newer rule set exists (checked at most every few seconds)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], rule_ids: list[str], every: float = 5.0) -> None:
        self._sessions = sessions
        self._rule_ids = set(rule_ids)
        self.every = every
        self._checked = 0.0
        self.version = 0
        self._matcher = WordMatcher([])

    def screen(self, text: str) -> list[WordHit]:
        return self._matcher.find(text)

    def use(self, version: int, rules: list[dict[str, Any]]) -> None:
        chosen = [
            r for r in rules
            if r["kind"] == "words" and r.get("who") == "agent" and r.get("enabled", True)
            and (not self._rule_ids or r["id"] in self._rule_ids)
        ]
        self._matcher = WordMatcher((word, rule["name"]) for rule in chosen for word in rule["words"])
        self.version = version

    async def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._checked < self.every:
            return
        self._checked = time.monotonic()
        async with self._sessions() as session:
            newest = (await session.execute(select(func.max(QaRuleSet.version)))).scalar()
            if newest is None or newest == self.version:
                return
            row = (await session.execute(select(QaRuleSet).where(QaRuleSet.version == newest))).scalar_one()
            self.use(row.version, row.rules)


async def flagged_citizen_messages(session: AsyncSession, days: int = 7, limit: int = 200,
                                   masked: bool = True) -> list[dict[str, Any]]:
    """Citizen lines that hit a citizen word rule, newest conversations first."""
    since = utcnow() - timedelta(days=days)
    items = list((await session.execute(
        select(QaItem).where(QaItem.closed_at >= since, QaItem.complaint).order_by(QaItem.closed_at.desc()).limit(limit)
    )).scalars())
    wanted: dict[int, tuple[QaItem, list[str]]] = {}
    for item in items:
        for hit in item.hits:
            if hit.get("kind") == "words" and hit.get("message_id") is not None and hit.get("deduct", 0) == 0:
                entry = wanted.setdefault(int(hit["message_id"]), (item, []))
                if hit.get("word") and hit["word"] not in entry[1]:
                    entry[1].append(hit["word"])
    if not wanted:
        return []
    rows = (await session.execute(
        select(Message).where(Message.id.in_(list(wanted)), Message.sender == "citizen").order_by(Message.id.desc())
    )).scalars()
    return [
        {
            "message_id": row.id, "item_id": wanted[row.id][0].id, "day": wanted[row.id][0].day,
            "channel": row.channel, "words": wanted[row.id][1],
            "text": mask_text(row.text) if masked else row.text, "created_at": row.created_at.isoformat(),
        }
        for row in rows
    ]
