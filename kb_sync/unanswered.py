"""未解决问题: what citizens asked that the bot could not answer well, grouped and ranked.

Sources (all in the database):
- a bot message with ``meta.declined`` (the bot gave up), or with ``meta.kb_score`` below
  the low-confidence line;
- a bot answer the citizen voted 👎 (``kb_feedback``, written by ``record_feedback``).
The citizen's question is the last citizen message before that bot message in the same
conversation.

Grouping is generic: questions are normalised (the answer engine's ``normalize``) and
embedded with the same sentence model; a question joins the group whose centroid is
closest when the cosine reaches ``JOIN_COSINE`` or their jieba word sets overlap
(Jaccard ≥ ``JOIN_JACCARD``); groups are ranked by how many times they were asked.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.masking import mask_text
from core.models import Conversation, KbFeedback, KbUnansweredResolved, Message, utcnow
from core.models.base import as_utc
from kb_sync.retrieval import Embedder
from kb_sync.retrieval.text import normalize, words
from kb_sync.store import KbError

JOIN_COSINE = 0.925
JOIN_JACCARD = 0.6
REASON_LABELS = {"declined": "机器人未能回答", "low_confidence": "低置信度回答", "downvoted": "市民点踩"}
VOTES = ("up", "down")
MAX_ITEMS = 20000


@dataclass
class Asked:
    message_id: int  # the bot message
    conversation_id: str
    question: str
    reason: str
    at: datetime
    kb_entry_id: str | None = None


@dataclass
class Group:
    key: str
    texts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    last_at: datetime | None = None
    message_ids: list[int] = field(default_factory=list)
    entry_ids: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(self.texts.values())

    @property
    def representative(self) -> str:
        return self.texts.most_common(1)[0][0]

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "question": self.representative,
            "count": self.count,
            "questions": [{"text": t, "count": n} for t, n in self.texts.most_common()],
            "reasons": [{"reason": r, "label": REASON_LABELS[r], "count": n} for r, n in self.reasons.most_common()],
            "last_at": self.last_at.astimezone(UTC).isoformat() if self.last_at else None,
            "answered_with": [e for e, _ in self.entry_ids.most_common(3)],
        }


async def record_feedback(
    sessions: async_sessionmaker[AsyncSession], message_id: Any, visitor_id: Any, vote: Any
) -> dict[str, Any]:
    """A web visitor's 👍/👎 on a bot message of their own conversation (the latest vote wins)."""
    if vote not in VOTES:
        raise KbError(400, "评价只能是 up（有用）或 down（没用）。", "bad_vote")
    if not isinstance(message_id, int) or isinstance(message_id, bool) or message_id <= 0:
        raise KbError(400, "消息编号不正确。", "bad_field")
    if not isinstance(visitor_id, str) or not visitor_id.strip() or len(visitor_id) > 128:
        raise KbError(400, "访客编号不正确。", "bad_field")
    async with sessions() as session, session.begin():
        found = await session.execute(
            select(Message, Conversation).join(Conversation, Message.conversation_id == Conversation.id)
            .where(Message.id == message_id))
        row = found.first()
        if row is None or row[1].channel_user_id != visitor_id or row[1].channel != "web":
            raise KbError(404, "没有找到这条消息。", "no_message")
        if row[0].sender != "bot":
            raise KbError(400, "只能评价智能客服的回答。", "not_bot")
        found_vote = await session.execute(select(KbFeedback).where(KbFeedback.message_id == message_id))
        existing = found_vote.scalar_one_or_none()
        if existing is None:
            session.add(KbFeedback(message_id=message_id, visitor_id=visitor_id, vote=vote, created_at=utcnow()))
        else:
            existing.vote = vote
            existing.created_at = utcnow()
        entry_id = (row[0].meta or {}).get("kb_entry_id")
    return {"ok": True, "message_id": message_id, "vote": vote, "kb_entry_id": entry_id}


async def collect(
    sessions: async_sessionmaker[AsyncSession], *, days: int = 30, low_score: float = 0.6,
    now: datetime | None = None,
) -> list[Asked]:
    """Every citizen question in the window the bot declined, answered weakly, or got a 👎 for."""
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    async with sessions() as session:
        bot_rows = (await session.execute(
            select(Message.id, Message.conversation_id, Message.meta, Message.created_at)
            .where(Message.sender == "bot", Message.created_at >= since)
            .order_by(Message.id.desc()).limit(MAX_ITEMS * 5))).all()
        downs = set((await session.execute(
            select(KbFeedback.message_id).where(KbFeedback.vote == "down", KbFeedback.created_at >= since))).scalars())
        flagged: list[tuple[int, str, str, datetime, str | None]] = []
        for message_id, conversation_id, meta, created_at in bot_rows:
            meta = meta or {}
            reason = None
            if message_id in downs:
                reason = "downvoted"
            elif meta.get("declined"):
                reason = "declined"
            elif isinstance(meta.get("kb_score"), int | float) and float(meta["kb_score"]) < low_score:
                reason = "low_confidence"
            if reason:
                flagged.append((message_id, conversation_id, reason, as_utc(created_at), meta.get("kb_entry_id")))
            if len(flagged) >= MAX_ITEMS:
                break
        if not flagged:
            return []
        conversations = list({c for _, c, *_ in flagged})
        citizen: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for start in range(0, len(conversations), 500):
            rows = await session.execute(
                select(Message.conversation_id, Message.id, Message.text)
                .where(Message.conversation_id.in_(conversations[start:start + 500]), Message.sender == "citizen")
                .order_by(Message.id))
            for conversation_id, message_id, text in rows.all():
                citizen[conversation_id].append((message_id, text))
        resolved: dict[str, datetime] = {}
        for key, at in (await session.execute(
                select(KbUnansweredResolved.text_key, KbUnansweredResolved.created_at))).all():
            resolved[key] = max(as_utc(at), resolved.get(key, as_utc(at)))
    out: list[Asked] = []
    for message_id, conversation_id, reason, at, entry_id in flagged:
        before = [text for mid, text in citizen.get(conversation_id, []) if mid < message_id]
        if not before or not before[-1].strip():
            continue
        question = mask_text(before[-1].strip())  # no citizen's phone or ID number on the editors' list
        key = normalize(question)
        if not key or (key in resolved and resolved[key] >= at):
            continue
        out.append(Asked(message_id, conversation_id, question, reason, at, entry_id))
    return out


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def group_questions(items: list[Asked], embedder: Embedder) -> list[Group]:
    """Cluster the questions (same normalised text first, then by meaning); most asked first."""
    by_key: dict[str, list[Asked]] = defaultdict(list)
    for item in items:
        by_key[normalize(item.question)].append(item)
    keys = sorted(by_key, key=lambda k: (-len(by_key[k]), k))
    if not keys:
        return []
    sample = [by_key[k][0].question for k in keys]
    vectors = embedder.embed(sample)
    token_sets = [set(words(t)) for t in sample]
    groups: list[Group] = []
    sums: list[np.ndarray] = []
    members: list[list[int]] = []
    for i, key in enumerate(keys):
        best, best_sim = -1, -1.0
        for g, total in enumerate(sums):
            centroid = total / max(1e-9, float(np.linalg.norm(total)))
            cos = float(vectors[i] @ centroid)
            jac = max(_jaccard(token_sets[i], token_sets[j]) for j in members[g])
            sim = max(cos, 1.0 if jac >= JOIN_JACCARD else 0.0)
            if (cos >= JOIN_COSINE or jac >= JOIN_JACCARD) and sim > best_sim:
                best, best_sim = g, sim
        if best < 0:
            groups.append(Group(key=key))
            sums.append(vectors[i].astype(np.float64).copy())
            members.append([i])
            best = len(groups) - 1
        else:
            sums[best] += vectors[i] * len(by_key[key])
            members[best].append(i)
        group = groups[best]
        for item in by_key[key]:
            group.texts[item.question] += 1
            group.reasons[item.reason] += 1
            group.message_ids.append(item.message_id)
            if item.kb_entry_id:
                group.entry_ids[item.kb_entry_id] += 1
            group.last_at = item.at if group.last_at is None or item.at > group.last_at else group.last_at
    groups.sort(key=lambda g: (-g.count, -(g.last_at.timestamp() if g.last_at else 0)))
    return groups


async def unanswered_groups(
    sessions: async_sessionmaker[AsyncSession], embedder: Embedder, *, days: int = 30, low_score: float = 0.6,
    now: datetime | None = None,
) -> list[Group]:
    items = await collect(sessions, days=days, low_score=low_score, now=now)
    return await asyncio.to_thread(group_questions, items, embedder)


async def mark_resolved(
    sessions: async_sessionmaker[AsyncSession], texts: list[str], entry_id: str | None, editor: str
) -> int:
    """These questions are dealt with: they leave the list (until asked and missed again)."""
    keys = list(dict.fromkeys(normalize(t) for t in texts if isinstance(t, str) and normalize(t)))
    async with sessions() as session, session.begin():
        for key in keys:
            session.add(KbUnansweredResolved(text_key=key[:500], entry_id=entry_id, resolved_by=editor,
                                             created_at=utcnow()))
    return len(keys)
