"""智能推荐 (agent assist): the top KB answers for a citizen's message, shown beside the reply box."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from handoff.assist_context import RecentLines, suggest_in_context

log = logging.getLogger(__name__)

ASSIST_K = 3
ASSIST_MIN_SCORE = 0.02  # calibrated confidence below which a KB entry is noise, not a suggestion
TEXT_KINDS = (None, "text", "voice")  # what a KB answer can be suggested for (not images, files …)

Suggest = Callable[[str, int], Awaitable[list[Any]]]  # kb_sync.AnswerService.suggest


def suggestible(message: Mapping[str, Any]) -> bool:
    """A citizen's line the KB could answer: text (or recognised voice), not a picture or a file."""
    meta = message.get("meta") or {}
    return (
        bool(str(message.get("text") or "").strip()) and meta.get("kind") in TEXT_KINDS and not meta.get("attachment")
    )


def last_suggestible(transcript: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The citizen's last message the KB could answer (a picture after a question keeps the question)."""
    return next((m for m in reversed(transcript) if m.get("sender") == "citizen" and suggestible(m)), None)


def assist_items(found: list[Any]) -> list[dict[str, Any]]:
    """KB answers as the console shows them (智能推荐 and the KB search box), noise left out."""
    return [
        {
            "entry_id": a.entry_id,
            "branch": a.branch,
            "question": a.question,
            "answer": a.answer,
            "short_answer": a.short_answer,
            "score": round(float(a.score), 3),
        }
        for a in found
        if float(a.score) >= ASSIST_MIN_SCORE
    ]


class Assist:
    def __init__(self, suggest: Suggest | None) -> None:
        self._suggest = suggest
        self.recent = RecentLines()  # the citizen's last lines, read together (handoff.assist_context)

    async def frame(self, conversation_id: str, message: Mapping[str, Any]) -> dict[str, Any]:
        """The `assist` frame for one citizen message (no items when the KB cannot say)."""
        items: list[dict[str, Any]] = []
        if self._suggest is not None:
            try:
                last = str(message.get("text") or "")
                context = self.recent.context(conversation_id, message.get("id"))
                found = await suggest_in_context(self._suggest, last, context, ASSIST_K)
            except Exception:
                log.exception("agent assist failed for %s", conversation_id)
                found = []
            items = assist_items(found)
        return {
            "type": "assist",
            "conversation_id": conversation_id,
            "message_id": message.get("id"),
            "text": message.get("text") or "",
            "items": items,
        }

    async def json(self, conversation_id: str, message: Mapping[str, Any]) -> str:
        return json.dumps(await self.frame(conversation_id, message), ensure_ascii=False)
