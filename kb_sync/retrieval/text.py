"""Text normalisation and tokenisation shared by every signal.

Citizens type with full-width punctuation, greetings and filler ("你好，请问…");
entries are written tidily.  Normalising both sides the same way keeps the lexical
signals from rewarding or punishing noise that carries no meaning.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from functools import lru_cache

_PUNCT = re.compile(
    r"[\s\u3000!-/:-@\[-`{-~\u3001-\u3003\u3008-\u3011\u3014-\u301f"
    r"\uff01-\uff0f\uff1a-\uff20\u2018-\u201f\u2026\u00b7]+"
)
# Politeness and filler that never changes what is being asked.
_FILLER = re.compile(
    r"^(?:(?:你好|您好|请问一下|请问|麻烦问一下|问一下|想问一下|我想问一下|我想知道|想知道|咨询一下|我想咨询"
    r"|老师|工作人员)[,，:： ]*)+"
)
_TRAILING = re.compile(r"(?:呢|啊|呀|吧|哈|哦|嘛|了)+$")

_STOPWORDS = frozenset(
    "的 了 吗 呢 啊 呀 吧 哈 哦 嘛 么 是 我 你 他 她 它 我们 你们 在 有 和 与 及 或 就 都 也 还 要 会 "
    "请问 你好 您好 一下 这个 那个 这种 那种 这样 那样 一个 什么 怎么 如何 为什么 哪些 是否".split()
)

_jieba_lock = threading.Lock()
_jieba = None


def tokenizer():
    """Load jieba once per process (its dictionary load costs ~1 s)."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """NFKC, lower case, no punctuation or leading filler; the canonical form of a text."""
    t = unicodedata.normalize("NFKC", text).lower()
    t = _PUNCT.sub(" ", t).strip()
    t = _FILLER.sub("", t.replace(" ", "")) if t else t
    stripped = _TRAILING.sub("", t)
    return stripped or t


@lru_cache(maxsize=65536)
def words(text: str) -> tuple[str, ...]:
    """jieba words of the normalised text, stop words removed (search mode, so compounds also yield parts)."""
    t = normalize(text)
    toks = tokenizer().lcut_for_search(t)
    return tuple(w for w in toks if w.strip() and w not in _STOPWORDS)


@lru_cache(maxsize=65536)
def char_ngrams(text: str, n: int = 2) -> tuple[str, ...]:
    """Overlapping character n-grams of the normalised text: robust to segmentation errors."""
    t = normalize(text)
    if len(t) < n:
        return (t,) if t else ()
    return tuple(t[i : i + n] for i in range(len(t) - n + 1))
