"""Turn pair features into a ranking score and a calibrated answer confidence.

Two small linear models, kept to a few numbers on purpose so they transfer across
knowledge bases:
- ``rank_scores``: a conditional-logit (softmax over the recalled candidates) weight
  vector over the standardised pair features; it only orders candidates.
- ``confidence``: a logistic model of "the top entry is the right answer" from the
  best rank score, its margin over the runner-up entry and the embedding
  similarity; its output is the ``Hit.score`` compared with the threshold.
The numbers come from ``python -m kb_sync.retrieval.calibrate`` (see its docstring
for what data they were fitted on).
"""

from __future__ import annotations

import math

import numpy as np

from .features import FEATURE_NAMES

# --- fitted by kb_sync.retrieval.calibrate; paste its output here -------------
FEAT_MEAN = np.zeros(len(FEATURE_NAMES))
FEAT_STD = np.ones(len(FEATURE_NAMES))
RANK_WEIGHTS = np.array([1.0] + [0.0] * (len(FEATURE_NAMES) - 1))
CONF_BIAS = 0.0
CONF_TOP = 1.0
CONF_MARGIN = 1.0
CONF_E5 = 0.0
MARGIN_CAP = 3.0
DEFAULT_THRESHOLD = 0.5
# -------------------------------------------------------------------------------


def rank_scores(feats: np.ndarray) -> np.ndarray:
    """Linear ranking score of each candidate row (only the order is meaningful)."""
    return ((feats - FEAT_MEAN) / FEAT_STD) @ RANK_WEIGHTS


def confidence(score: float, margin: float, feats: np.ndarray) -> float:
    """Probability that answering with this candidate is right, in [0, 1]."""
    e5 = (float(feats[0]) - FEAT_MEAN[0]) / FEAT_STD[0]
    z = CONF_BIAS + CONF_TOP * score + CONF_MARGIN * min(margin, MARGIN_CAP) + CONF_E5 * e5
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
