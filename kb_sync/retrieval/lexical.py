"""BM25 over a bag of terms, with postings in numpy arrays.

Used twice: over jieba words (precise when segmentation agrees) and over character
bigrams (robust when it does not, e.g. 肺气肿 vs 肺 气肿).  Scoring a query touches only
the postings of its own terms, so it stays well under a millisecond for a few
thousand texts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np


class Bm25Index:
    """Immutable BM25 index over pre-tokenised texts (one row per text)."""

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.n = len(docs)
        self.k1 = k1
        lengths = np.array([len(d) for d in docs], dtype=np.float32)
        avg = float(lengths.mean()) if self.n else 1.0
        df: Counter[str] = Counter()
        for d in docs:
            df.update(set(d))
        self.idf = {t: math.log(1.0 + (self.n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        rows: dict[str, list[int]] = {}
        vals: dict[str, list[float]] = {}
        norm = k1 * (1.0 - b + b * lengths / max(avg, 1e-6))
        for i, d in enumerate(docs):
            for t, tf in Counter(d).items():
                w = self.idf[t] * tf * (k1 + 1.0) / (tf + norm[i])
                rows.setdefault(t, []).append(i)
                vals.setdefault(t, []).append(w)
        self.postings = {
            t: (np.array(rows[t], dtype=np.int32), np.array(vals[t], dtype=np.float32)) for t in rows
        }
        # Unseen-term IDF: as rare as a term seen once.
        self.max_idf = math.log(1.0 + (self.n - 0.5) / 1.5) if self.n else 1.0

    def term_idf(self, term: str) -> float:
        """IDF of a term; terms absent from the KB count as rare (they are informative)."""
        return self.idf.get(term, self.max_idf)

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """BM25 score of every text for the query (zeros where nothing is shared)."""
        out = np.zeros(self.n, dtype=np.float32)
        for t in set(query):
            p = self.postings.get(t)
            if p is not None:
                out[p[0]] += p[1]
        return out

    def self_score(self, query: Sequence[str]) -> float:
        """Upper bound used to normalise: the score a text made of exactly the query would get."""
        return float(sum(self.idf.get(t, 0.0) for t in set(query))) * 1.0 or 1.0
