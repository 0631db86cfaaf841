"""The bot's answer path: the published KB as a retrieval engine, kept in step on every worker.

Each worker keeps its own engine in memory and checks one Redis counter per question; an
editor's publish increments it, so every worker rebuilds (incrementally: the embedder
caches texts it has seen) before its next answer. No Rasa restart is involved. Entries
outside their validity window are left out, and the engine is rebuilt when the clock
crosses the next window boundary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from core.models.base import as_utc
from core.redis_client import Keys
from kb_sync.retrieval import DEFAULT_THRESHOLD, AnswerEngine, Embedder, Hit, KbDoc
from kb_sync.retrieval.answerable import CLARIFY_MIN, CLOSE_CALL, Answerability, EntryText
from kb_sync.sanitize import plain_text
from kb_sync.store import EntryView, KbStore


@dataclass(frozen=True)
class KbAnswer:
    entry_id: str
    branch: str
    question: str
    answer: str  # plain text, for every channel
    answer_html: str  # the editor's sanitised rich text
    short_answer: str  # for WeChat and voice, when the editor wrote one
    keywords: tuple[str, ...]
    score: float


@dataclass(frozen=True)
class AnswerOutcome:
    """Answer with ``answer``; else ask back with ``clarify`` (2-3 entries) when it is not empty;
    else decline. ``candidates`` are the ranked entries whatever their confidence."""

    answer: KbAnswer | None  # None: not answered directly
    candidates: list[Hit]
    clarify: list[KbAnswer] = field(default_factory=list)


def to_doc(entry: EntryView) -> KbDoc:
    return KbDoc(entry.id, entry.branch, entry.question, tuple(entry.similar), tuple(entry.keywords))


def next_boundary(entries: Sequence[EntryView], now: datetime) -> datetime | None:
    """The next moment a published entry starts or stops answering."""
    moments = [as_utc(m) for e in entries for m in (e.valid_from, e.valid_to) if m is not None and as_utc(m) > now]
    return min(moments, default=None)


@dataclass(frozen=True)
class AnswerIndex:
    """One snapshot: the engine over the live entries, and those entries by id."""

    engine: AnswerEngine
    entries: dict[str, EntryView]
    expires_at: datetime | None
    answerable: Answerability
    position: dict[str, int]  # entry id -> index in ``answerable``

    @classmethod
    def build(
        cls, published: Sequence[EntryView], embedder: Embedder, now: datetime, calibration: Any = None
    ) -> AnswerIndex:
        live = [e for e in published if e.is_live(now)]
        engine = AnswerEngine.build([to_doc(e) for e in live], embedder, calibration)
        answerable = Answerability(
            [EntryText((e.question, *e.similar), e.branch, plain_text(e.answer)) for e in live])
        return cls(engine, {e.id: e for e in live}, next_boundary(published, now), answerable,
                   {e.id: i for i, e in enumerate(live)})

    def answer(self, text: str, threshold: float, clarify_min: float = CLARIFY_MIN) -> AnswerOutcome:
        """The one decision the bot, the editor's preview and `kb_sync.evaluate` make.

        Answer when the best entry is confident and really answers (the aspect asked is in its
        answer, the object named is its own); else offer the entries that could be meant
        (confidence at least ``clarify_min``, nothing asked that they lack); else decline.
        """
        candidates = [h for h in self.engine.rank(text, k=5) if h.entry_id in self.entries]
        fits = [self.answerable.fit(text, self.position[h.entry_id]) for h in candidates]
        # a close call (another entry that fits is nearly as sure) is asked back, not answered
        rival = max((h.score for h, f in zip(candidates[1:], fits[1:], strict=True) if f.soft), default=0.0)
        if candidates and candidates[0].score >= threshold and fits[0].ok and rival < candidates[0].score - CLOSE_CALL:
            top = candidates[0]
            return AnswerOutcome(self.as_answer(self.entries[top.entry_id], top.score), candidates)
        options = [self.as_answer(self.entries[h.entry_id], h.score)
                   for h, f in zip(candidates, fits, strict=True) if f.soft and h.score >= clarify_min][:3]
        return AnswerOutcome(None, candidates, options)

    def suggest(self, text: str, k: int = 3) -> list[KbAnswer]:
        """The k best live entries for a text whatever their confidence (agent assist)."""
        found = []
        for hit in self.engine.rank(text, k=k):
            entry = self.entries.get(hit.entry_id)
            if entry is not None:
                found.append(self.as_answer(entry, hit.score))
        return found

    @staticmethod
    def as_answer(entry: EntryView, score: float) -> KbAnswer:
        return KbAnswer(
            entry.id,
            entry.branch,
            entry.question,
            plain_text(entry.answer),
            entry.answer,
            getattr(entry, "short_answer", "") or "",
            tuple(entry.keywords),
            score,
        )


class AnswerService:
    def __init__(self, store: KbStore, redis: aioredis.Redis, keys: Keys, threshold: float | None = None) -> None:
        self._store = store
        self._redis = redis
        self._keys = keys
        self.threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        self._embedder = Embedder()
        self._index: AnswerIndex | None = None
        self._version: str | None = None
        self._lock = asyncio.Lock()

    @property
    def store(self) -> KbStore:
        """The KB store this service answers from (the bot's actions read entries through it)."""
        return self._store

    async def notify_changed(self) -> None:
        """Called after any change to published entries: every worker rebuilds before its next answer."""
        await self._redis.incr(self._keys.kb_version())

    def _stale(self, version: str, now: datetime) -> bool:
        index = self._index
        return index is None or version != self._version or (index.expires_at is not None and now >= index.expires_at)

    async def current(self) -> AnswerIndex:
        version = await self._redis.get(self._keys.kb_version()) or "0"
        now = datetime.now(UTC)
        if self._stale(version, now):
            async with self._lock:
                if self._stale(version, now):
                    published = await self._store.published()
                    self._index = await asyncio.to_thread(AnswerIndex.build, published, self._embedder, now)
                    self._version = version
        assert self._index is not None
        return self._index

    async def warm(self) -> None:
        await self.current()

    async def answer(self, text: str) -> AnswerOutcome:
        """Off the event loop: embedding the question and ranking take ~15 ms."""
        index = await self.current()
        return await asyncio.to_thread(index.answer, text, self.threshold)

    async def related(self, entry_id: str, k: int = 3) -> list[KbAnswer]:
        """Other live entries near one (offered after a 👎 on its answer)."""
        index = await self.current()
        entry = index.entries.get(entry_id)
        if entry is None:
            return []
        found = await asyncio.to_thread(index.suggest, entry.question, k + 1)
        return [a for a in found if a.entry_id != entry_id][:k]

    async def entry(self, entry_id: str) -> KbAnswer | None:
        """A live entry as an answer (the citizen picked it from a clarification)."""
        index = await self.current()
        entry = index.entries.get(entry_id)
        return index.as_answer(entry, 1.0) if entry is not None else None

    async def suggest(self, text: str, k: int = 3) -> list[KbAnswer]:
        """Entries an agent may want to insert for a citizen's message, best first."""
        index = await self.current()
        return await asyncio.to_thread(index.suggest, text, k)
