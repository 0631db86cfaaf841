"""Turn pair features into a ranking score and a calibrated answer confidence.

Two small models, kept to a few numbers on purpose so they transfer across
knowledge bases:
- ``rank_scores``: a conditional-logit (softmax over the recalled candidates) weight
  vector over the standardised pair features; it only orders candidates.
- ``confidence``: a logistic model of "the top entry is the right answer" over a
  quadratic in three things: the rank score, its margin over the runner-up entry and
  the embedding similarity, plus the intent-cue mismatch and its interaction with
  the similarity (a near-identical wording that asks something else is the typical
  wrong answer).  Its output is the ``Hit.score`` compared with the threshold.
The numbers come from ``python -m kb_sync.retrieval.calibrate`` (see its docstring
for what data they were fitted on).
"""

from __future__ import annotations

import math

import numpy as np

from .features import FEATURE_NAMES

# --- fitted by kb_sync.retrieval.calibrate; paste its output here -------------
FEAT_MEAN = np.array([2.90906, 0.440335, 0.326455, 0.333719, 0.492331, 0.497833, 0.613458, 0.573331, 18.455, 14.9442, 1.83316, 0.835443, 0.182836, 0.114094, 0.188056, 0.304815, 0.571359, 0.541233, -0.0184202, 0.952427])
FEAT_STD = np.array([0.607695, 0.236613, 0.193902, 0.163118, 0.176412, 0.175268, 0.217703, 0.21623, 11.5041, 9.50898, 1.39276, 0.874694, 0.386532, 0.317926, 0.13203, 0.186355, 0.196573, 0.188038, 0.0199836, 0.0192422])
RANK_WEIGHTS = np.array([0.0805, 0.0124, 0.3317, -0.3821, 0.7938, 0.1765, 0.3562, 0.1049, -1.0306, -0.2116, -0.3539, -0.4377, 0.1214, 0.2480, -0.2920, 0.1462, 0.5461, -0.0622, 3.2452, -0.0000])
CONF_WEIGHTS = np.array([-0.4675, 0.5268, 1.6569, -0.1241, -0.8088, 0.2637, -0.0301, 0.0311])
CONF_BIAS = -3.2176
MARGIN_CAP = 18.2908
DEFAULT_THRESHOLD = 0.46
# -------------------------------------------------------------------------------



_E5 = FEATURE_NAMES.index("e5")
_CUE = FEATURE_NAMES.index("cue_only")


def standardise(feats: np.ndarray) -> np.ndarray:
    """Features on a common scale (the means/stds of the calibration data)."""
    return (feats - FEAT_MEAN) / FEAT_STD


def rank_scores(feats: np.ndarray) -> np.ndarray:
    """Linear ranking score of each candidate row (only the order is meaningful)."""
    return standardise(feats) @ RANK_WEIGHTS


def decision_terms(score: float, margin: float, z: np.ndarray, cap: float | None = None) -> np.ndarray:
    """The confidence model's inputs from a candidate's rank score, margin and standardised features."""
    m = min(margin, MARGIN_CAP if cap is None else cap)
    e, cu = float(z[_E5]), float(z[_CUE])
    return np.array([score, m, e, e * e, cu, e * cu, m * m, score * score])


def confidence(score: float, margin: float, feats: np.ndarray) -> float:
    """Probability that answering with this candidate is right, in [0, 1]."""
    z = CONF_BIAS + float(CONF_WEIGHTS @ decision_terms(score, margin, standardise(feats)))
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
