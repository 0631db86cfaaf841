"""Pair features: how well one KB text answers one query.

Each feature is generic to Chinese questions (no domain vocabulary): embedding
similarity (meaning), BM25 over words and character bigrams (shared specifics),
edit similarity (near-verbatim rewordings), the informative words only one side has
(a paraphrase adds or drops little; a different question adds its own specifics) and
intent-cue mismatch (same topic, different question).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .intent import intent_features
from .lexical import Bm25Index
from .text import char_ngrams, normalize, words

FEATURE_NAMES: tuple[str, ...] = (
    "e5", "bm25w", "bm25c", "dice", "qcov", "ccov",
    "qonlyf", "conlyf", "qonly", "conly",
    "cue_only", "cue_shared", "neg", "num", "lenratio",
    "edit", "qchar_only", "cchar_only", "csls", "qdens",
)


@dataclass(frozen=True)
class QueryView:
    """A query's tokenisation, computed once and reused for every candidate."""

    text: str
    norm: str
    words: tuple[str, ...]
    bigrams: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> QueryView:
        return cls(text, normalize(text), words(text), char_ngrams(text))


def edit_similarity(a: str, b: str) -> float:
    """1 - Levenshtein distance / longer length, on characters (questions are short)."""
    if not a or not b:
        return 0.0
    a, b = a[:80], b[:80]
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return 1.0 - prev[-1] / max(len(a), len(b))


def _log_stretch(cos: float) -> float:
    """Cosines that matter sit in 0.9..1.0; -log(1-cos) spreads them out for a linear scorer."""
    return -math.log(max(1.0 - cos, 1e-4))


def pair_features(
    q: QueryView,
    cand: str,
    cos_e5: float,
    bm25w: float,
    bm25c: float,
    density: float,
    qdens: float,
    words_index: Bm25Index,
    char_idf: dict[str, float],
) -> list[float]:
    """The FEATURE_NAMES vector for (query, candidate text); lexical BM25s come pre-normalised."""
    cw = set(words(cand))
    qw = set(q.words)
    idf = words_index.term_idf
    qonly = sum(idf(w) for w in qw - cw)
    conly = sum(idf(w) for w in cw - qw)
    qtot = sum(idf(w) for w in qw) or 1.0
    ctot = sum(idf(w) for w in cw) or 1.0
    cn = normalize(cand)
    qch, cch = set(q.norm), set(cn)
    a, b = set(q.bigrams), set(char_ngrams(cand))
    dice = 2.0 * len(a & b) / max(1, len(a) + len(b))
    shared = len(qch & cch)
    cidf_max = max(char_idf.values()) if char_idf else 1.0
    qco = sum(char_idf.get(c, cidf_max) for c in qch - cch) / (sum(char_idf.get(c, cidf_max) for c in qch) or 1.0)
    cco = sum(char_idf.get(c, cidf_max) for c in cch - qch) / (sum(char_idf.get(c, cidf_max) for c in cch) or 1.0)
    return [
        _log_stretch(cos_e5), bm25w, bm25c, dice,
        shared / max(1, len(qch)), shared / max(1, len(cch)),
        qonly / qtot, conly / ctot, qonly, conly,
        *intent_features(q.text, cand),
        abs(len(q.norm) - len(cn)) / max(len(q.norm), len(cn), 1),
        edit_similarity(q.norm, cn), qco, cco,
        cos_e5 - 0.5 * (density + qdens), qdens,
    ]
