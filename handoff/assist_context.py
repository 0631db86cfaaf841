"""智能推荐 reads the conversation, not only the citizen's last line: "需要带什么" after "我想办居住证"
is about 居住证. The console keeps each served conversation's last few citizen lines in memory
(from the assigned transcript and the message events it already receives) and asks the KB for
both the last line and the lines together; the better matches of either come first."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

LINES = 3  # the citizen's last lines read together
CONVERSATIONS = 5000  # remembered at most (least recently used dropped first)

Suggest = Callable[[str, int], Awaitable[list[Any]]]


class RecentLines:
    def __init__(self) -> None:
        self._lines: OrderedDict[str, deque[tuple[Any, str]]] = OrderedDict()

    def remember(self, conversation_id: str, message: dict[str, Any]) -> None:
        text = str(message.get("text") or "").strip()
        if not text:
            return
        lines = self._lines.pop(conversation_id, None) or deque(maxlen=LINES)
        if all(known_id != message.get("id") or known_id is None for known_id, _ in lines):
            lines.append((message.get("id"), text))
        self._lines[conversation_id] = lines
        while len(self._lines) > CONVERSATIONS:
            self._lines.popitem(last=False)

    def seed(self, conversation_id: str, messages: Iterable[dict[str, Any]]) -> None:
        for message in messages:
            self.remember(conversation_id, message)

    def context(self, conversation_id: str, upto: Any) -> str:
        """The citizen's last lines up to (and including) message `upto`, joined."""
        lines = list(self._lines.get(conversation_id) or ())
        ids = [known_id for known_id, _ in lines]
        if upto in ids:
            lines = lines[: ids.index(upto) + 1]
        return "\n".join(text for _, text in lines)


async def suggest_in_context(suggest: Suggest, last: str, context: str, k: int) -> list[Any]:
    """The best k entries for the last line or for the lines together (each entry once, best score)."""
    found = list(await suggest(last, k))
    if context and context != last:
        found += list(await suggest(context, k))
    best: dict[Any, Any] = {}
    for answer in found:
        known = best.get(answer.entry_id)
        if known is None or float(answer.score) > float(known.score):
            best[answer.entry_id] = answer
    return sorted(best.values(), key=lambda a: float(a.score), reverse=True)[:k]
