"""Per-KB recalibration of the confidence from the KB's own similar questions.

The global confidence model (``scorer``) was fitted on one FAQ whose queries reword
their standard question only slightly.  On a KB whose citizens reword freely the
right entry still ranks first, but its log-odds sit about 3 units lower (the demo KB),
so the engine would decline nearly everything.  When the KB lists similar questions it
can show its own scale, with no labelled queries:

1. Probes: each sampled text of an entry that has at least two texts is asked against
   the KB *without that one text*: a held-out paraphrase whose right answer (its own
   entry) is known.  Only probes whose own entry ranks first are used.
2. Support: a query that really asks an entry's question resembles most of the
   entry's phrasings, while a same-topic different question usually resembles just
   one.  ``support`` (mean cosine to all of the entry's texts) is standardised by its
   spread over the probes and added with weight ``SUPPORT_WEIGHT`` (log-odds per
   standard deviation).
3. Anchor: the ``ANCHOR_QUANTILE`` quantile of the probes' log-odds is shifted onto
   ``scorer.RIGHT_ANCHOR_LOGIT``, the same quantile over right answers in the
   calibration data; so at the shipped threshold a KB answers about the same share
   of its right-ranked questions as the calibration FAQ does (about three in four),
   whatever its wording style.

The ranking is untouched; only ``Hit.score`` changes.  A KB without enough similar
questions (like the calibration FAQ itself) keeps the global model unchanged.
Nothing here reads entry ids or query texts; the labels come from the KB's structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .features import QueryView
from .scorer import ANCHOR_QUANTILE, RIGHT_ANCHOR_LOGIT, confidence_logit, sigmoid

if TYPE_CHECKING:
    from .engine import AnswerEngine

MAX_PROBES = 150  # held-out texts per build: bounds the build cost (~0.3 s for 2,000 entries)
MIN_RIGHT = 40  # fewer right-ranked probes and the quantile is too noisy: keep the global calibration
SUPPORT_WEIGHT = 0.5  # log-odds per standard deviation of the entry-support cosine


@dataclass(frozen=True)
class Calibration:
    """``sigmoid(logit + weight * (support - center) + shift)``; the default is the global model."""

    shift: float = 0.0
    weight: float = 0.0
    center: float = 0.0
    probes: int = 0  # right-ranked probes it was fitted on (0: global model)

    def logit(self, global_logit: float, support: float) -> float:
        return global_logit + self.shift + (self.weight * (support - self.center) if self.weight else 0.0)

    def confidence(self, global_logit: float, support: float) -> float:
        return sigmoid(self.logit(global_logit, support))


def probe_texts(engine: AnswerEngine) -> list[int]:
    """Indices of texts that can be held out (their entry keeps another text), evenly sampled."""
    if not len(engine.texts):
        return []
    counts = np.bincount(engine.text_entry, minlength=len(engine.docs))
    cand = np.flatnonzero(counts[engine.text_entry] >= 2)
    if len(cand) > MAX_PROBES:
        cand = cand[np.linspace(0, len(cand) - 1, MAX_PROBES).round().astype(int)]
    return [int(j) for j in cand]


def right_probes(engine: AnswerEngine, probes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(global log-odds, entry support) for each held-out text whose own entry ranks first."""
    zs: list[float] = []
    ss: list[float] = []
    owner = engine.text_entry
    for j in probes:
        exclude = np.zeros(len(owner), dtype=bool)
        exclude[j] = True
        idx, feats, cos = engine._candidates(QueryView.of(engine.texts[j]), engine.vectors[j], exclude)
        if not idx:
            continue
        top, _, row, s, m = engine._ordered(idx, feats)[0]
        if top == owner[j]:
            zs.append(confidence_logit(s, m, feats[row]))
            ss.append(engine.support(cos, top, exclude))
    return np.array(zs), np.array(ss)


def self_calibration(engine: AnswerEngine) -> Calibration:
    """This KB's calibration; the global model when it has too few similar questions."""
    probes = probe_texts(engine)
    if len(probes) < MIN_RIGHT:
        return Calibration()
    z, s = right_probes(engine, probes)
    if len(z) < MIN_RIGHT:
        return Calibration()
    center, spread = float(s.mean()), float(s.std())
    weight = SUPPORT_WEIGHT / spread if spread > 1e-6 else 0.0
    adjusted = z + weight * (s - center)
    shift = RIGHT_ANCHOR_LOGIT - float(np.quantile(adjusted, ANCHOR_QUANTILE))
    if not math.isfinite(shift):
        return Calibration()
    return Calibration(shift=shift, weight=weight, center=center, probes=len(z))
