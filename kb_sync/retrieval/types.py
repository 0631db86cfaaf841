"""The engine's public value types (others code against these; keep them stable)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KbDoc:
    """One published KB entry as the engine sees it (the answer text lives elsewhere)."""

    entry_id: str
    branch: str
    question: str
    similar: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hit:
    """A ranked entry."""

    entry_id: str
    score: float  # calibrated confidence in [0, 1]
    matched_text: str  # the standard/similar question that matched best


@dataclass(frozen=True)
class Decision:
    """Answer with ``hit`` or decline (``hit is None``); ``candidates`` are the top-k, best first."""

    hit: Hit | None
    candidates: list[Hit] = field(default_factory=list)
