"""Preview before publishing: replay recent citizen questions against the KB with a draft published.

"Before" is the live bot's own index (``AnswerService.current``) when the caller passes the
service, so the preview and the live bot make one decision (``AnswerIndex.answer``: answer,
"您是想问" or decline); "after" is built over one module-level ``Embedder`` (texts already seen
are not embedded again) with the draft added (or replacing the entry it edits). Every distinct
citizen question of the last N days is decided by both; the ones whose outcome would change are
listed, before → after, and those the bot's intent model would take from the KB are flagged.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import Message
from kb_sync.answering import AnswerIndex, AnswerOutcome, AnswerService, KbAnswer
from kb_sync.retrieval import DEFAULT_THRESHOLD, Embedder, KbDoc
from kb_sync.store import EntryView, KbStore, clean_entry

Classify = Callable[[str], Awaitable[tuple[str | None, float]]]  # text -> (intent, confidence)

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


def _hit_json(found: KbAnswer | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {"entry_id": found.entry_id, "question": found.question, "score": round(found.score, 4)}


def _decision(outcome: AnswerOutcome) -> tuple[str, dict[str, Any] | None, list[str]]:
    """(answer | clarify | decline, the entry answered, the entries offered)."""
    if outcome.answer is not None:
        return "answer", _hit_json(outcome.answer), []
    if outcome.clarify:
        return "clarify", None, [a.question for a in outcome.clarify]
    return "decline", None, []


def as_entry(draft: DraftDoc, stored: EntryView | None, now: datetime) -> EntryView:
    return EntryView(draft.entry_id, draft.branch, draft.question, list(draft.similar), draft.answer,
                     list(draft.keywords), "published", draft.valid_from, draft.valid_to, now,
                     short_answer=stored.short_answer if stored else "")


def replay(
    published: list[EntryView], draft: DraftDoc, questions: Counter[str], threshold: float, now: datetime,
    before: AnswerIndex | None = None,
) -> dict[str, Any]:
    """Every question decided the way the live bot decides (``AnswerIndex.answer``), before and after."""
    stored = next((e for e in published if e.id == draft.entry_id), None)
    texts = list(questions)
    EMBEDDER.embed(texts)  # one batched pass fills the cache for both indexes
    if before is None:
        before = AnswerIndex.build(published, EMBEDDER, now)
    after_entries = [e for e in published if e.id != draft.entry_id] + [as_entry(draft, stored, now)]
    # the draft's effect at the live confidence scale: re-anchoring the scale on one more entry would
    # flip unrelated questions near the threshold back and forth (the next publish re-anchors it)
    after = AnswerIndex.build(after_entries, EMBEDDER, now, before.engine.calibration)
    changed = []
    for text in texts:
        b_kind, b, b_offer = _decision(before.answer(text, threshold))
        a_kind, a, a_offer = _decision(after.answer(text, threshold))
        b_id, a_id = (b or {}).get("entry_id"), (a or {}).get("entry_id")
        same_entry_new_text = (
            a_id == b_id == draft.entry_id and (stored.answer if stored else None) != draft.answer
        )
        if b_id != a_id or b_kind != a_kind or same_entry_new_text:
            changed.append({"question": text, "count": questions[text], "before": b, "after": a,
                            "before_kind": b_kind, "after_kind": a_kind, "before_offered": b_offer,
                            "after_offered": a_offer, "answer_text_changed": same_entry_new_text})
    changed.sort(key=lambda c: -c["count"])
    return {"questions": len(texts), "asked": sum(questions.values()), "changed": changed,
            "draft_live": draft.live(now)}


async def preview_draft(
    store: KbStore, draft: DraftDoc, *, days: int = 30, threshold: float = DEFAULT_THRESHOLD,
    now: datetime | None = None, answers: AnswerService | None = None, intents: Classify | None = None,
) -> dict[str, Any]:
    """``answers``: the live bot's service (its index is the "before", so both agree); ``intents``:
    the bot's intent model, to show where an intent would take a question from the KB (#13.25)."""
    now = now or datetime.now(UTC)
    published = await store.published()
    questions = await recent_questions(store.sessions, days, now)
    before = await answers.current() if answers is not None else None
    if before is not None:
        threshold = answers.threshold if answers is not None else threshold
    result = await asyncio.to_thread(replay, published, draft, questions, threshold, now, before)
    if intents is not None:
        await mark_intents(result["changed"], intents)
    result["days"] = days
    return result


# intents that take a question away from the KB when sure (see flow.bot_actions)
HANDOFF_INTENTS = frozenset({"request_human", "complaint"})
SURE_INTENT = 0.9


async def mark_intents(changed: list[dict[str, Any]], intents: Classify) -> None:
    """Flag the questions the draft would answer that the bot's intent model sends elsewhere."""
    for row in changed:
        if row["after_kind"] == "decline":
            continue
        try:
            intent, confidence = await intents(row["question"])
        except Exception:  # the preview still shows the KB's side when Rasa is away
            return
        if intent in HANDOFF_INTENTS and confidence >= SURE_INTENT or intent == "out_of_scope":
            row["intent_takes_over"] = {"intent": intent, "confidence": round(confidence, 4)}
