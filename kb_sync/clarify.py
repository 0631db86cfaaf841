"""The "您是想问：" step: offer the entries the bot was unsure between, read the citizen's pick.

When the answer engine is unsure (``AnswerOutcome.clarify``), the bot offers 2-3 entries and
都不是（转人工）: as quick-reply buttons on the web chat, numbered on WeChat and Telegram. The
offer waits in Redis for the citizen's next message; "2", "第二个", the button's title or the
entry's question picks an entry, "都不是"/"转人工" (or the last number) asks for a person,
anything else is a new question. Every pick is kept as a labelled pair (question -> entry, or
-> none) in ``bot_clarify_picks`` for the editors to add as a similar question.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import ClarifyPick
from core.redis_client import Keys

PROMPT = "您是想问："
NONE_TITLE = "都不是（转人工）"
TEXT_CHANNEL_HINT = "（回复序号即可）"
PENDING_SECONDS = 30 * 60
_NONE_WORDS = re.compile(r"^(?:都不是|都不对|不是|没有|转人工|人工|人工客服|找人工|以上都不是)")
_CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_NUMBER = re.compile(r"^(?:第)?([1-9一二两三四五])(?:个|条|项)?(?:[.、．:：)）\s]|$)")


@dataclass(frozen=True)
class Offer:
    """What the citizen was offered: the question, and (entry id, entry question) best first."""

    question: str
    options: tuple[tuple[str, str], ...]

    def to_json(self) -> str:
        return json.dumps({"question": self.question, "options": [list(o) for o in self.options]},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Offer:
        data = json.loads(raw)
        return cls(str(data["question"]), tuple((str(i), str(q)) for i, q in data["options"]))


@dataclass(frozen=True)
class Pick:
    offer: Offer
    entry_id: str | None  # None: 都不是 (the citizen wants a person)


def offer_reply(offer: Offer, numbered: bool) -> tuple[str, list[dict[str, str]]]:
    """The bot's text and quick replies; ``numbered`` for channels where a citizen types a number."""
    titles = [q for _, q in offer.options] + [NONE_TITLE]
    if numbered:
        titles = [f"{n}. {t}" for n, t in enumerate(titles, 1)]
    buttons = [{"title": t, "payload": str(n)} for n, t in enumerate(titles, 1)]
    return (PROMPT + TEXT_CHANNEL_HINT if numbered else PROMPT), buttons


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().rstrip("。.!！?？ ")


def read_pick(offer: Offer, text: str) -> Pick | None:
    """The citizen's answer to an offer, or None when the message is something else."""
    t = _plain(text)
    if not t:
        return None
    count = len(offer.options)
    m = _NUMBER.match(t)
    if m:
        n = int(m.group(1)) if m.group(1).isdigit() else _CN_DIGITS[m.group(1)]
        if 1 <= n <= count:
            return Pick(offer, offer.options[n - 1][0])
        if n == count + 1:
            return Pick(offer, None)
        return None
    if _NONE_WORDS.match(t) or t == _plain(NONE_TITLE):
        return Pick(offer, None)
    for entry_id, question in offer.options:
        if t == _plain(question):
            return Pick(offer, entry_id)
    return None


class Clarifications:
    """Offers waiting for a pick (Redis, per conversation) and the labelled pairs (database)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, sessions: async_sessionmaker[AsyncSession] | None) -> None:
        self._redis = redis
        self._keys = keys
        self._sessions = sessions

    def _key(self, conversation_id: str) -> str:
        return f"{self._keys.prefix}bot:clarify:{conversation_id}"

    async def offer(self, conversation_id: str, offer: Offer) -> None:
        await self._redis.set(self._key(conversation_id), offer.to_json(), ex=PENDING_SECONDS)

    async def take(self, conversation_id: str, text: str) -> Pick | None:
        """The pick this message makes, if an offer is waiting; any message ends the offer."""
        raw = await self._redis.getdel(self._key(conversation_id))
        if raw is None:
            return None
        return read_pick(Offer.from_json(raw), text)

    async def record(self, conversation_id: str, channel: str, pick: Pick) -> None:
        if self._sessions is None:
            return
        async with self._sessions() as session, session.begin():
            session.add(ClarifyPick(
                conversation_id=conversation_id, channel=channel, question=pick.offer.question[:1000],
                offered=[i for i, _ in pick.offer.options], picked_entry_id=pick.entry_id,
            ))

    async def recent(self, limit: int = 200) -> list[dict[str, Any]]:
        """The latest labelled pairs, newest first (for the editors)."""
        if self._sessions is None:
            return []
        async with self._sessions() as session:
            rows = (await session.execute(
                select(ClarifyPick).order_by(ClarifyPick.id.desc()).limit(limit))).scalars().all()
        return [{"question": r.question, "offered": list(r.offered or []), "picked": r.picked_entry_id,
                 "channel": r.channel, "created_at": r.created_at.isoformat()} for r in rows]
