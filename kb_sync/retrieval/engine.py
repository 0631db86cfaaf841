"""AnswerEngine: rank published KB entries for a question, then answer or decline.

Pipeline for one query (a few ms plus one embedding):
1. recall: every KB text (standard + similar questions) gets a cheap fused score
   (embedding cosine + normalised BM25 over words and character bigrams); the best
   ``RECALL_TEXTS`` texts go on.
2. rerank: each recalled text gets the pair features of ``features.py``; a linear
   scorer (``scorer.rank_score``) orders them; each entry keeps its best text.
3. decide: ``scorer.confidence_logit`` turns the best score and its margin over the
   runner-up into log-odds that the answer is right; ``selfcal`` adapts them to this
   KB when it lists similar questions (a per-KB shift, plus how well the query
   matches *all* of the entry's phrasings); below the threshold the engine declines
   (the bot offers a human).

The engine is immutable after ``build``, so concurrent reads need no lock.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from .embedding import Embedder
from .features import QueryView, pair_features
from .lexical import Bm25Index
from .scorer import DEFAULT_THRESHOLD, confidence_logit, rank_scores
from .selfcal import Calibration, self_calibration
from .text import char_ngrams, normalize, words
from .types import Decision, Hit, KbDoc

__all__ = ["DEFAULT_THRESHOLD", "AnswerEngine"]

RECALL_TEXTS = 12
DENSITY_K = 5
_DEFAULT_EMBEDDER: Embedder | None = None


def default_embedder() -> Embedder:
    """The process-wide embedder (its cache survives rebuilds) used when build() gets none."""
    global _DEFAULT_EMBEDDER
    if _DEFAULT_EMBEDDER is None:
        _DEFAULT_EMBEDDER = Embedder()
    return _DEFAULT_EMBEDDER


def _doc_texts(doc: KbDoc) -> list[str]:
    """The texts an entry can be matched by: its standard question, then its similar questions."""
    seen: set[str] = set()
    out: list[str] = []
    for t in (doc.question, *doc.similar):
        t = (t or "").strip()
        if t and normalize(t) and t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _density(vectors: np.ndarray, owner: np.ndarray, block: int = 1024) -> np.ndarray:
    """Mean cosine of each text to its DENSITY_K nearest texts of *other* entries.

    A text in a crowded neighbourhood (many same-topic entries) needs a higher
    similarity before it is the one meant; discounting by this (as in CSLS
    retrieval) makes cosines comparable across entries.  O(n^2 d) in blocks:
    about a second for 8,000 texts.
    """
    n = len(vectors)
    out = np.zeros(n, dtype=np.float32)
    if n < 2:
        return out
    k = min(DENSITY_K, n - 1)
    for start in range(0, n, block):
        sims = vectors[start : start + block] @ vectors.T
        same = owner[start : start + block, None] == owner[None, :]
        sims[same] = -1.0
        part = np.partition(sims, n - k, axis=1)[:, n - k :]
        out[start : start + block] = np.maximum(part, -1.0).mean(axis=1)
    return out


class AnswerEngine:
    """Immutable index over one snapshot of the published entries."""

    def __init__(
        self,
        docs: Sequence[KbDoc],
        texts: list[str],
        text_entry: np.ndarray,
        vectors: np.ndarray,
        embedder: Embedder,
        calibration: Calibration | None = None,
    ) -> None:
        self.docs = list(docs)
        self.texts = texts
        self.text_entry = text_entry
        self.vectors = vectors
        self.embedder = embedder
        self.density = _density(vectors, text_entry)
        self.words_index = Bm25Index([words(t) for t in texts])
        self.chars_index = Bm25Index([char_ngrams(t) for t in texts])
        df: Counter[str] = Counter()
        for t in texts:
            df.update(set(normalize(t)))
        n = max(1, len(texts))
        self.char_idf = {c: math.log(1.0 + (n - k + 0.5) / (k + 0.5)) for c, k in df.items()}
        order = np.argsort(text_entry, kind="stable")
        bounds = np.searchsorted(text_entry[order], np.arange(len(self.docs) + 1))
        self.entry_texts = [order[bounds[i] : bounds[i + 1]] for i in range(len(self.docs))]
        self.calibration: Calibration = calibration if calibration is not None else self_calibration(self)

    @classmethod
    def build(
        cls, docs: Sequence[KbDoc], embedder: Embedder | None = None, calibration: Calibration | None = None
    ) -> AnswerEngine:
        """Index the entries; only texts the embedder has not seen before are embedded. ``calibration``:
        keep another index's confidence scale instead of anchoring a new one (the editor's preview)."""
        embedder = default_embedder() if embedder is None else embedder
        texts: list[str] = []
        owner: list[int] = []
        for i, doc in enumerate(docs):
            for t in _doc_texts(doc):
                texts.append(t)
                owner.append(i)
        vectors = embedder.embed(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        return cls(docs, texts, np.array(owner, dtype=np.int32), vectors, embedder, calibration)

    # -- scoring ---------------------------------------------------------------

    def candidate_features(self, text: str) -> tuple[list[int], np.ndarray]:
        """Recalled text indices and their pair-feature rows (also used by calibration)."""
        if not self.texts or not normalize(text):
            return [], np.zeros((0, 0))
        idx, feats, _ = self._candidates(QueryView.of(text), self.embedder.embed_one(text))
        return idx, feats

    def _candidates(
        self, q: QueryView, qvec: np.ndarray, exclude: np.ndarray | None = None
    ) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Recall and featurise, also returning every text's cosine to the query.

        ``exclude`` (bool per text) hides texts, as if absent from the KB (self-calibration).
        """
        cos = self.vectors @ qvec
        sw = self.words_index.scores(q.words) / self.words_index.self_score(q.words)
        sc = self.chars_index.scores(q.bigrams) / self.chars_index.self_score(q.bigrams)
        fused = 2.0 * cos + 0.3 * sw + 0.3 * sc
        live = len(self.texts)
        dcos = cos
        if exclude is not None:
            fused = np.where(exclude, -np.inf, fused)
            dcos = np.where(exclude, -1.0, cos)
            live -= int(exclude.sum())
        if live <= 0:
            return [], np.zeros((0, 0)), cos
        kd = min(DENSITY_K, live)
        qdens = float(np.partition(dcos, len(dcos) - kd)[len(dcos) - kd :].mean())
        k = min(RECALL_TEXTS, live)
        top = np.argpartition(-fused, k - 1)[:k]
        top = top[np.argsort(-fused[top])]
        rows = [
            pair_features(
                q, self.texts[j], float(cos[j]), float(sw[j]), float(sc[j]),
                float(self.density[j]), qdens, self.words_index, self.char_idf,
            )
            for j in top
        ]
        return [int(j) for j in top], np.array(rows, dtype=np.float64), cos

    def _ordered(self, idx: list[int], feats: np.ndarray) -> list[tuple[int, int, int, float, float]]:
        """Entries best first as (entry, text index, row, rank score, margin over the best other entry)."""
        scores = rank_scores(feats)
        best: dict[int, tuple[float, int, int]] = {}  # entry -> (score, text index, row)
        for row, (j, s) in enumerate(zip(idx, scores, strict=True)):
            e = int(self.text_entry[j])
            if e not in best or s > best[e][0]:
                best[e] = (float(s), j, row)
        ordered = sorted(best.items(), key=lambda kv: -kv[1][0])
        raw = [v[0] for _, v in ordered]
        out = []
        for pos, (e, (s, j, row)) in enumerate(ordered):
            other = raw[1] if pos == 0 else raw[0]
            if len(raw) == 1:
                other = s - 1e9  # alone: the margin is as large as it gets (capped by the scorer)
            out.append((e, j, row, s, s - other))
        return out

    def rank(self, text: str, k: int = 5) -> list[Hit]:
        """Best entries first, each with its calibrated confidence and best-matching text."""
        if not self.texts or not normalize(text):
            return []
        idx, feats, cos = self._candidates(QueryView.of(text), self.embedder.embed_one(text))
        if not idx:
            return []
        cal = self.calibration
        return [
            Hit(self.docs[e].entry_id, cal.confidence(confidence_logit(s, m, feats[row]), self.support(cos, e)),
                self.texts[j])
            for e, j, row, s, m in self._ordered(idx, feats)[:k]
        ]

    def support(self, cos: np.ndarray, entry: int, exclude: np.ndarray | None = None) -> float:
        """Mean cosine of the query to all of an entry's texts (not just its best one)."""
        texts = self.entry_texts[entry]
        if exclude is not None:
            texts = texts[~exclude[texts]]
        return float(cos[texts].mean()) if len(texts) else 0.0

    def decide(self, text: str, threshold: float = DEFAULT_THRESHOLD) -> Decision:
        """Answer with the best entry when its confidence reaches the threshold, else decline."""
        candidates = self.rank(text, k=5)
        hit = candidates[0] if candidates and candidates[0].score >= threshold else None
        return Decision(hit=hit, candidates=candidates)
