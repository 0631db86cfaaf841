"""The KB answer engine: rank published entries for a citizen's question, answer or decline.

See ``engine.AnswerEngine`` for the pipeline and ``scorer`` for how the decline
threshold is calibrated.
"""

from .embedding import Embedder
from .engine import DEFAULT_THRESHOLD, AnswerEngine
from .types import Decision, Hit, KbDoc

__all__ = ["DEFAULT_THRESHOLD", "AnswerEngine", "Decision", "Embedder", "Hit", "KbDoc"]
