"""Transcript search for inspectors and supervisors: by text (every character bigram of the query
must be among the item's terms: on PostgreSQL an array containment served by the GIN index on
`string_to_array(search_text, ' ')`), agent, days, channel and score. Results open the item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, and_, cast, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Refusal
from core.models import Message, User
from core.models.qa import QaItem
from qa.masking import mask_text
from qa.search_terms import terms


@dataclass(frozen=True)
class Query:
    text: str = ""
    agent_id: int | None = None
    day_from: str | None = None
    day_to: str | None = None
    channel: str | None = None
    score_min: float | None = None
    score_max: float | None = None
    limit: int = 50


def text_condition(dialect: str, words: list[str]) -> Any:
    if dialect == "postgresql":
        # the same expression as the index (ix_qa_items_search): string_to_array(search_text, ' ')
        terms_of_item = func.string_to_array(QaItem.search_text, literal_column("' '"), type_=ARRAY(Text))
        return terms_of_item.op("@>")(cast(array(words), ARRAY(Text)))
    padded = literal(" ") + QaItem.search_text + literal(" ")
    return and_(*(padded.like(f"% {word} %") for word in words))


async def search(session: AsyncSession, query: Query, *, masked: bool) -> list[dict[str, Any]]:
    conditions = []
    words = terms(query.text) if query.text.strip() else []
    if query.text.strip() and not words:
        raise Refusal(400, "请输入要查找的文字（至少一个汉字或一个词）。", "bad_query")
    if words:
        conditions.append(text_condition(session.bind.dialect.name, words))  # type: ignore[union-attr]
    if query.agent_id is not None:
        conditions.append(QaItem.agent_id == query.agent_id)
    if query.day_from:
        conditions.append(QaItem.day >= query.day_from)
    if query.day_to:
        conditions.append(QaItem.day <= query.day_to)
    if query.channel:
        conditions.append(QaItem.channel == query.channel)
    if query.score_min is not None:
        conditions.append(QaItem.score >= query.score_min)
    if query.score_max is not None:
        conditions.append(QaItem.score <= query.score_max)
    rows = list((await session.execute(
        select(QaItem.id, QaItem.conversation_id, QaItem.day, QaItem.channel, QaItem.agent_id, QaItem.score,
               QaItem.passed, QaItem.status, QaItem.hit_count, User.display_name)
        .outerjoin(User, User.id == QaItem.agent_id)
        .where(*conditions).order_by(QaItem.closed_at.desc()).limit(max(1, min(query.limit, 200)))
    )).all())
    snippets: dict[str, str] = {}
    needle = query.text.strip()
    if needle and rows:
        found = await session.execute(
            select(Message.conversation_id, Message.text)
            .where(Message.conversation_id.in_([r.conversation_id for r in rows]),
                   Message.text.contains(needle, autoescape=True))
            .order_by(Message.id)
        )
        for conversation_id, text in found:
            snippets.setdefault(conversation_id, text)
    return [
        {
            "item_id": r.id, "day": r.day, "channel": r.channel, "agent_id": r.agent_id,
            "agent_name": r.display_name or "", "score": r.score, "passed": r.passed, "status": r.status,
            "hit_count": r.hit_count,
            "snippet": (mask_text(snippets.get(r.conversation_id, "")) if masked
                        else snippets.get(r.conversation_id, ""))[:200],
        }
        for r in rows
    ]


__all__ = ["Query", "search"]
