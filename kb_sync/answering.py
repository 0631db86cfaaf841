"""The bot's answer path: the published KB as a retrieval engine, kept in step on every worker.

Each worker keeps its own engine in memory and checks one Redis counter per question; an
editor's publish increments it, so every worker rebuilds (incrementally: the embedder
caches texts it has seen) before its next answer. No Rasa restart is involved.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from hub.redis_client import Keys
from kb_sync.retrieval import DEFAULT_THRESHOLD, AnswerEngine, Embedder, Hit, KbDoc
from kb_sync.store import EntryView, KbStore


@dataclass(frozen=True)
class KbAnswer:
    entry_id: str
    branch: str
    question: str
    answer: str
    score: float


@dataclass(frozen=True)
class AnswerOutcome:
    answer: KbAnswer | None  # None: declined
    candidates: list[Hit]


def to_doc(entry: EntryView) -> KbDoc:
    return KbDoc(entry.id, entry.branch, entry.question, tuple(entry.similar), tuple(entry.keywords))


class AnswerService:
    def __init__(self, store: KbStore, redis: aioredis.Redis, keys: Keys, threshold: float | None = None) -> None:
        self._store = store
        self._redis = redis
        self._keys = keys
        self.threshold = DEFAULT_THRESHOLD if threshold is None else threshold
        self._embedder = Embedder()
        self._engine: AnswerEngine | None = None
        self._entries: dict[str, EntryView] = {}
        self._version: str | None = None
        self._lock = asyncio.Lock()

    async def notify_changed(self) -> None:
        """Called after any change to published entries: every worker rebuilds before its next answer."""
        await self._redis.incr(self._keys.kb_version())

    async def _current(self) -> tuple[AnswerEngine, dict[str, EntryView]]:
        version = await self._redis.get(self._keys.kb_version()) or "0"
        if self._engine is None or version != self._version:
            async with self._lock:
                if self._engine is None or version != self._version:
                    entries = await self._store.published()
                    engine = await asyncio.to_thread(AnswerEngine.build, [to_doc(e) for e in entries], self._embedder)
                    self._engine, self._entries, self._version = engine, {e.id: e for e in entries}, version
        assert self._engine is not None
        return self._engine, self._entries

    async def warm(self) -> None:
        await self._current()

    async def answer(self, text: str) -> AnswerOutcome:
        engine, entries = await self._current()
        decision = engine.decide(text, threshold=self.threshold)
        hit = decision.hit
        now = datetime.now(UTC)
        if hit is None or hit.entry_id not in entries or not entries[hit.entry_id].is_live(now):
            return AnswerOutcome(None, decision.candidates)
        entry = entries[hit.entry_id]
        return AnswerOutcome(KbAnswer(entry.id, entry.branch, entry.question, entry.answer, hit.score), decision.candidates)
