"""Score the answer engine on an evaluation folder (kb.jsonl + queries.jsonl).

    python -m kb_sync.evaluate DIR [--threshold X]

Embeddings are cached on disk between runs (``retrieval.embedding.cache_file``; keyed by
model and package version), so a re-run embeds only new texts; ``--no-cache`` skips it.

Figures (see shared/eval/README.md): ``top1`` and ``answered_right`` over queries
with an expected entry, ``declined_right`` over queries without one, ``wrong`` over
all queries.  Per-kind breakdowns are printed first; the LAST stdout line is one
JSON object so scripts can read it with ``tail -1``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from kb_sync.retrieval import DEFAULT_THRESHOLD, AnswerEngine, Embedder, KbDoc
from kb_sync.retrieval.embedding import cache_file

# text, threshold -> (best entry, answered entry, entries offered as "您是想问")
Decide = Callable[[str, float], tuple[str | None, str | None, tuple[str, ...]]]


def load_kb_jsonl(path: str | Path) -> list[KbDoc]:
    """Entries from a kb.jsonl file: {"id","branch","question","similar":[...],"answer"} per line."""
    docs: list[KbDoc] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            docs.append(
                KbDoc(
                    entry_id=str(row["id"]),
                    branch=str(row.get("branch") or ""),
                    question=str(row["question"]),
                    similar=tuple(str(s) for s in row.get("similar") or ()),
                    keywords=tuple(str(s) for s in row.get("keywords") or ()),
                )
            )
    return docs


def load_queries(path: str | Path) -> list[dict]:
    """Queries from a queries.jsonl file: {"text","expected","kind"} per line."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def engine_decide(engine: AnswerEngine) -> Decide:
    def decide(text: str, threshold: float) -> tuple[str | None, str | None, tuple[str, ...]]:
        d = engine.decide(text, threshold=threshold)
        return (d.candidates[0].entry_id if d.candidates else None), (d.hit.entry_id if d.hit else None), ()

    return decide


def cached_embedder(use_cache: bool) -> Embedder:
    """The e5 embedder, pre-filled from the on-disk cache (``embedding.cache_file``) when asked."""
    emb = Embedder("e5")
    if use_cache:
        emb.load(cache_file(emb.model))
    return emb


def save_embedder(emb: Embedder) -> None:
    emb.save(cache_file(emb.model))


def load_into_scratch_store(kb_file: Path, embedder: Embedder | None = None) -> Decide:
    """Load kb.jsonl into a scratch SQLite store as published entries and answer through the
    bot's own path (`kb_sync.answering.AnswerIndex`), so the figures are the bot's."""
    from core.db import make_engine, make_sessionmaker
    from core.migrate import upgrade
    from kb_sync.answering import AnswerIndex
    from kb_sync.store import KbStore

    scratch = Path(tempfile.mkdtemp(prefix="zwkf-eval-")) / "kb.db"
    url = f"sqlite:///{scratch}"
    upgrade(url)

    async def load() -> list:
        engine = make_engine(url)
        try:
            store = KbStore(make_sessionmaker(engine))
            rows = [dict(row, answer=row.get("answer") or row["question"]) for row in load_queries(kb_file)]
            await store.upsert(rows, status="published", editor="evaluate")
            return await store.published()
        finally:
            await engine.dispose()

    index = AnswerIndex.build(asyncio.run(load()), embedder or Embedder(), datetime.now(UTC))

    def decide(text: str, threshold: float) -> tuple[str | None, str | None, tuple[str, ...]]:
        outcome = index.answer(text, threshold)
        best = outcome.candidates[0].entry_id if outcome.candidates else None
        return best, (outcome.answer.entry_id if outcome.answer else None), tuple(a.entry_id for a in outcome.clarify)

    return decide


def score(decide: Decide, queries: Iterable[dict], threshold: float, progress: bool = True) -> dict:
    """Ask every query; return the README's figures plus per-kind answer/decline rates."""
    queries = list(queries)
    n = len(queries)
    with_expected = top1 = answered_right = without = declined_right = wrong = clarified = clarified_right = 0
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    step = max(1, n // 100)
    for i, q in enumerate(queries, 1):
        best, answered, offered = decide(q["text"], threshold)
        expected = q.get("expected")
        kind = by_kind[q.get("kind") or "unknown"]
        kind["n"] += 1
        if expected is not None:
            with_expected += 1
            top1 += best == expected
            answered_right += answered == expected
        else:
            without += 1
            declined_right += answered is None  # asking back is not answering
        if answered is not None and answered != expected:
            wrong += 1
            kind["wrong"] += 1
        if answered is None and offered:
            clarified += 1
            kind["clarified"] += 1
            if expected is not None and expected in offered:
                clarified_right += 1
                kind["clarified_right"] += 1
        elif answered is None:
            kind["declined"] += 1
        elif answered == expected:
            kind["right"] += 1
        if progress and (i % step == 0 or i == n):
            print(f"\r{i}/{n} ({100 * i // max(1, n)}%)", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)

    def frac(a: int, b: int) -> float:
        return round(a / b, 4) if b else 0.0

    result: dict = {
        "top1": frac(top1, with_expected),
        "answered_right": frac(answered_right, with_expected),
        "declined_right": frac(declined_right, without),
        "wrong": frac(wrong, n),
        "clarified": frac(clarified, n),
        "clarified_right": frac(clarified_right, with_expected),
        "queries": n,
    }
    result["by_kind"] = {
        k: {m: frac(v[m], v["n"]) for m in ("right", "declined", "clarified", "clarified_right", "wrong")}
        | {"n": v["n"]}
        for k, v in sorted(by_kind.items())
    }
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kb_sync.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("dir", type=Path, help="folder with kb.jsonl and queries.jsonl")
    ap.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    ap.add_argument("--no-cache", action="store_true",
                    help=f"embed every text afresh instead of reusing {cache_file('e5').parent}")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    embedder = cached_embedder(not args.no_cache)
    decide = functools.lru_cache(maxsize=None)(load_into_scratch_store(args.dir / "kb.jsonl", embedder))
    print(f"loaded {args.dir / 'kb.jsonl'} into a scratch store in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    queries = load_queries(args.dir / "queries.jsonl")
    result = score(decide, queries, args.threshold)
    halves = sorted({str(q["half"]) for q in queries if q.get("half")})
    half_results = {h: score(decide, [q for q in queries if q.get("half") == h], args.threshold, progress=False)
                    for h in halves}
    if not args.no_cache:
        save_embedder(embedder)
    by_kind = result.pop("by_kind")
    for kind, figs in by_kind.items():
        print(json.dumps({"kind": kind, **figs}, ensure_ascii=False))
    for half, figs in half_results.items():  # a set split in two (tune on one, check the other)
        figs.pop("by_kind")
        print(json.dumps({"half": half, **figs}, ensure_ascii=False))
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
