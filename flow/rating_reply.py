"""A citizen's reply to the 满意度评价 prompt is a rating, on every channel, not a question for the bot.

After 结束会话 the hub asks "请您对本次服务进行评价：1-5 分…". Whatever the citizen sends next
("5", "5分，服务很好", "非常满意", "不满意") is read here; if it holds a score it becomes the
closed conversation's rating (Handoff.rate) and is thanked for, and the bot never sees it. Any other
reply (a new question) goes to the bot as usual. Only the first message after the prompt is read.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from core.redis_client import Keys
from handoff import ConversationView

PROMPT_TTL_SECONDS = 24 * 3600  # a reply a day later is a new matter, not a rating

# longest first: "非常不满意" before "不满意" before "满意"
WORDS: tuple[tuple[str, int], ...] = (
    ("非常不满意", 1), ("很不满意", 1), ("特别不满意", 1), ("太差", 1), ("很差", 1),
    ("不满意", 2), ("不太满意", 2), ("差评", 1),
    ("一般", 3), ("还行", 3), ("还可以", 3),
    ("非常满意", 5), ("很满意", 5), ("特别满意", 5), ("十分满意", 5), ("好评", 5), ("非常好", 5),
    ("满意", 4), ("不错", 4), ("挺好", 4), ("很好", 5),
)
DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
# "5", "5分", "五分", "打5分", "评5星", "５": a lone score, or a score with 分/星 anywhere
LONE = re.compile(r"^\s*(?:打|给|评)?\s*([1-5一二两三四五])\s*(?:分|星)?\s*[。.!！,，]?\s*$")
SCORED = re.compile(r"([1-5一二两三四五])\s*(?:分|星|颗星)")
MAX_RATING_TEXT = 200  # a long message is a new matter even if it says 满意
NOT_A_RATING = ("?", "？", "吗", "怎么", "如何", "投诉", "人工")  # a question or a new request, even if it says 满意


class Rater(Protocol):
    async def rate(
        self, conversation_id: Any, channel_user_id: str | None, score: Any, comment: Any = "", *, thank: bool = True
    ) -> dict[str, Any]: ...


def read_rating(text: str) -> tuple[int, str] | None:
    """(score, comment) when the text rates the service, else None. The comment is the text itself
    unless it is only the score."""
    text = (text or "").strip()
    if not text or len(text) > MAX_RATING_TEXT or any(word in text for word in NOT_A_RATING):
        return None
    text = text.translate(str.maketrans("１２３４５", "12345"))
    lone = LONE.match(text)
    if lone:
        return DIGITS[lone.group(1)], ""
    scored = SCORED.search(text)
    if scored:
        return DIGITS[scored.group(1)], text
    for word, score in WORDS:
        if word in text:
            return score, text
    return None


class RatingReplies:
    """Remembers, per citizen and channel, that the rating prompt was the last thing said to them."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def _key(self, channel: str, channel_user_id: str) -> str:
        return self.keys.csat_prompt(channel, channel_user_id)

    async def prompted(self, conversation: ConversationView) -> None:
        """The rating prompt was sent for this (closed) conversation."""
        key = self._key(conversation.channel, conversation.channel_user_id)
        await self.redis.set(key, conversation.id, ex=PROMPT_TTL_SECONDS)

    async def take(self, conversation: ConversationView, text: str, rater: Rater) -> int | None:
        """If this message answers the rating prompt with a score, record it and return the score
        (the caller thanks the citizen); else None. Either way the prompt is spent."""
        rated = await self.redis.getdel(self._key(conversation.channel, conversation.channel_user_id))
        if not rated:
            return None
        reading = read_rating(text)
        if reading is None:
            return None
        score, comment = reading
        try:
            await rater.rate(rated, conversation.channel_user_id, score, comment, thank=False)
        except Exception as error:  # HandoffError: no longer offered, not theirs: the bot answers instead
            if getattr(error, "code", None) is None:
                raise
            return None
        return score
