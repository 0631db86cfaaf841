"""Preview before publishing: replay recent citizen questions against the KB with a draft published.

Two scratch engines are built with ``AnswerEngine.build`` over one module-level
``Embedder`` (texts already seen are not embedded again): "before" over the live
published entries, "after" with the draft added (or replacing the entry it edits).
Every distinct citizen question of the last N days is decided by both; the ones whose
answer would change are listed, before → after.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import Message
from kb_sync.retrieval import DEFAULT_THRESHOLD, AnswerEngine, Embedder, Hit, KbDoc
from kb_sync.store import EntryView, KbStore, clean_entry

EMBEDDER = Embedder()
DRAFT_ID = "__draft__"
MAX_QUESTIONS = 3000


@dataclass(frozen=True)
class DraftDoc:
    entry_id: str
    branch: str
    question: str
    similar: list[str]
    keywords: list[str]
    answer: str
    valid_from: datetime | None
    valid_to: datetime | None

    def doc(self) -> KbDoc:
        return KbDoc(self.entry_id, self.branch, self.question, tuple(self.similar), tuple(self.keywords))

    def live(self, now: datetime) -> bool:
        if self.valid_from and self.valid_from > now:
            return False
        return not (self.valid_to and self.valid_to <= now)


async def recent_questions(
    sessions: async_sessionmaker[AsyncSession], days: int, now: datetime | None = None
) -> Counter[str]:
    since = (now or datetime.now(UTC)) - timedelta(days=days)
    async with sessions() as session:
        rows = await session.execute(
            select(Message.text).where(Message.sender == "citizen", Message.created_at >= since)
            .order_by(Message.id.desc()).limit(MAX_QUESTIONS * 10))
        counts: Counter[str] = Counter(t.strip() for t in rows.scalars() if t and t.strip() and len(t) <= 300)
    return Counter(dict(counts.most_common(MAX_QUESTIONS)))


def draft_from(data: dict[str, Any], entry_id: str | None, branch: str) -> DraftDoc:
    values = clean_entry(data)
    return DraftDoc(entry_id or DRAFT_ID, branch, values["question"], values["similar"], values["keywords"],
                    values["answer"], values["valid_from"], values["valid_to"])


def draft_from_view(entry: EntryView) -> DraftDoc:
    return DraftDoc(entry.id, entry.branch, entry.question, entry.similar, entry.keywords, entry.answer,
                    entry.valid_from, entry.valid_to)


def _hit_json(hit: Hit | None, names: dict[str, str]) -> dict[str, Any] | None:
    if hit is None:
        return None
    return {"entry_id": hit.entry_id, "question": names.get(hit.entry_id, ""), "score": round(hit.score, 4),
            "matched": hit.matched_text}


def replay(
    published: list[EntryView], draft: DraftDoc, questions: Counter[str], threshold: float, now: datetime
) -> dict[str, Any]:
    live = [e for e in published if e.is_live(now)]
    before_docs = [KbDoc(e.id, e.branch, e.question, tuple(e.similar), tuple(e.keywords)) for e in live]
    after_docs = [d for d in before_docs if d.entry_id != draft.entry_id]
    if draft.live(now):
        after_docs.append(draft.doc())
    texts = list(questions)
    EMBEDDER.embed(texts)  # one batched pass fills the cache for both engines
    before = AnswerEngine.build(before_docs, EMBEDDER)
    after = AnswerEngine.build(after_docs, EMBEDDER)
    names = {e.id: e.question for e in live}
    names[draft.entry_id] = draft.question
    old_answer = {e.id: e.answer for e in live}
    changed = []
    for text in texts:
        b = before.decide(text, threshold=threshold).hit
        a = after.decide(text, threshold=threshold).hit
        b_id, a_id = (b.entry_id if b else None), (a.entry_id if a else None)
        same_entry_new_text = (
            a_id == b_id == draft.entry_id and old_answer.get(draft.entry_id) != draft.answer
        )
        if b_id != a_id or same_entry_new_text:
            changed.append({"question": text, "count": questions[text], "before": _hit_json(b, names),
                            "after": _hit_json(a, names), "answer_text_changed": same_entry_new_text})
    changed.sort(key=lambda c: -c["count"])
    return {"questions": len(texts), "asked": sum(questions.values()), "changed": changed,
            "draft_live": draft.live(now)}


async def preview_draft(
    store: KbStore, draft: DraftDoc, *, days: int = 30, threshold: float = DEFAULT_THRESHOLD,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    published = await store.published()
    questions = await recent_questions(store.sessions, days, now)
    result = await asyncio.to_thread(replay, published, draft, questions, threshold, now)
    result["days"] = days
    return result
