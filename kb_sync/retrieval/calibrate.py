"""Fit the scorer's few numbers (``scorer.py``) on one evaluation folder and print them.

    python -m kb_sync.retrieval.calibrate DIR [--wrong 0.075] [--no-cache]

What is fitted, and on what: the ranking weights (one per pair feature, a
conditional logit over each query's recalled candidates), the confidence model
(bias + eight weights over a quadratic in score, margin, embedding similarity and
cue mismatch), the shipped threshold (the lowest one whose ``wrong`` stays
under ``--wrong``) and the anchor the per-KB self-calibration (``selfcal``) shifts
to (a quantile of the log-odds over right answers).  The shipped numbers were fitted on
shared/eval/faq-tianchi-train; to check they are not tied to its topics the
script also reports a two-fold split by branch (fit on half the branches, score the
other half).  Nothing is keyed by entry id or query text.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import numpy as np

from ..evaluate import cached_embedder, load_kb_jsonl, load_queries, save_embedder
from .engine import AnswerEngine
from .features import FEATURE_NAMES
from .scorer import ANCHOR_QUANTILE, decision_terms

L2 = 1e-3


def _clogit(groups: list[tuple[np.ndarray, np.ndarray]], dim: int, iters: int = 40) -> np.ndarray:
    """Conditional logit (softmax over each group's rows) by Newton steps."""
    w = np.zeros(dim)
    for _ in range(iters):
        g = L2 * w
        h = L2 * np.eye(dim)
        for x, y in groups:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            ex = p @ x
            g = g - (y @ x - ex) / len(groups)
            xc = x - ex
            h = h + (xc.T * p) @ xc / len(groups)
        w = w - np.linalg.solve(h, g)
    return w


def _logreg(x: np.ndarray, y: np.ndarray, iters: int = 50) -> np.ndarray:
    """Plain logistic regression (bias last) by Newton steps."""
    x = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(x.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        g = x.T @ (p - y) / len(y) + L2 * w
        h = (x * (p * (1 - p))[:, None]).T @ x / len(y) + L2 * np.eye(len(w))
        w = w - np.linalg.solve(h, g)
    return w


class Data:
    """Every query's recalled candidates, their features and labels."""

    def __init__(self, engine: AnswerEngine, queries: list[dict]) -> None:
        self.rows: list[np.ndarray] = []
        self.entries: list[list[int]] = []
        self.labels: list[np.ndarray] = []
        self.expected: list[bool] = []
        self.branch: list[str] = []
        ids = [d.entry_id for d in engine.docs]
        for i, q in enumerate(queries):
            idx, feats = engine.candidate_features(q["text"])
            ents = [int(engine.text_entry[j]) for j in idx]
            self.rows.append(feats)
            self.entries.append(ents)
            self.labels.append(np.array([ids[e] == q.get("expected") for e in ents], dtype=float))
            self.expected.append(q.get("expected") is not None)
            self.branch.append(engine.docs[ents[0]].branch if ents else "")
            if i % 200 == 0:
                print(f"\rfeatures {i}/{len(queries)}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)


def fit(data: Data, mask: np.ndarray, mean: np.ndarray, std: np.ndarray) -> dict:
    """Fit rank weights, confidence model on the masked queries."""
    groups = [
        ((r - mean) / std, y / y.sum())
        for r, y, m in zip(data.rows, data.labels, mask, strict=True)
        if m and len(r) and y.sum() > 0
    ]
    w = _clogit(groups, len(FEATURE_NAMES))
    x, y = _decision_rows(data, mean, std, w, cap=None, e5_cap=1e9)
    cap = float(np.quantile(x[:, 1][x[:, 1] < 1e8], 0.99))
    e5_cap = 1e9
    for _ in range(2):  # clamp where the quadratics peak, then refit
        x, y = _decision_rows(data, mean, std, w, cap=cap, e5_cap=e5_cap)
        c = _logreg(x[mask], y[mask])
        if c[6] < 0:
            cap = min(cap, -c[1] / (2 * c[6]))
        if c[3] < 0:
            e5_cap = min(e5_cap, -c[2] / (2 * c[3]))
    x, y = _decision_rows(data, mean, std, w, cap=cap, e5_cap=e5_cap)
    c = _logreg(x[mask], y[mask])
    return {"w": w, "conf": c, "cap": cap, "e5_cap": e5_cap}


def _decision_rows(data: Data, mean, std, w, cap, e5_cap) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the confidence model's terms for its best entry, and whether that entry is right."""
    xs, ys = [], []
    for r, ents, lab in zip(data.rows, data.entries, data.labels, strict=True):
        if not len(r):
            xs.append(np.zeros(8))
            ys.append(0.0)
            continue
        z = (r - mean) / std
        s = z @ w
        best: dict[int, int] = {}
        for k, e in enumerate(ents):
            if e not in best or s[k] > s[best[e]]:
                best[e] = k
        order = sorted(best.values(), key=lambda k: -s[k])
        top = order[0]
        margin = s[top] - s[order[1]] if len(order) > 1 else 1e9
        xs.append(decision_terms(s[top], margin, z[top], cap if cap is not None else 1e9, e5_cap))
        ys.append(lab[top])
    return np.array(xs), np.array(ys)


def figures(data: Data, mean, std, model: dict, mask: np.ndarray, thresholds) -> dict:
    """top1 and (answered_right, declined_right, wrong) per threshold over the masked queries."""
    x, right = _decision_rows(data, mean, std, model["w"], model["cap"], model["e5_cap"])
    c = model["conf"]
    p = 1.0 / (1.0 + np.exp(-(x @ c[:-1] + c[-1])))
    has = np.array(data.expected)
    right = right.astype(bool)
    out = {"top1": round(float(right[has & mask].mean()), 4)}
    for t in thresholds:
        a = p >= t
        out[round(float(t), 3)] = (
            round(float((a & right)[has & mask].mean()), 4),
            round(float((~a)[~has & mask].mean()), 4),
            round(float((a & ~right)[mask].mean()), 4),
        )
    return out


def right_anchor(data: Data, mean, std, model: dict) -> float:
    """``ANCHOR_QUANTILE`` quantile of the log-odds over queries whose top entry is right (see ``selfcal``)."""
    x, right = _decision_rows(data, mean, std, model["w"], model["cap"], model["e5_cap"])
    c = model["conf"]
    z = x @ c[:-1] + c[-1]
    ok = (right == 1) & np.array(data.expected)
    return float(np.quantile(z[ok], ANCHOR_QUANTILE))


def _array(name: str, values: np.ndarray, fmt: str) -> str:
    """A numpy array literal, wrapped to fit the line length."""
    body = textwrap.fill(", ".join(format(float(v), fmt) for v in values), 100, initial_indent="    ",
                         subsequent_indent="    ")
    return f"{name} = np.array([\n{body},\n])"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kb_sync.retrieval.calibrate")
    ap.add_argument("dir", type=Path)
    ap.add_argument("--wrong", type=float, default=0.075, help="highest acceptable 'wrong' at the threshold")
    ap.add_argument("--no-cache", action="store_true", help="do not reuse the on-disk embedding cache")
    args = ap.parse_args(argv)
    emb = cached_embedder(not args.no_cache)
    engine = AnswerEngine.build(load_kb_jsonl(args.dir / "kb.jsonl"), emb)
    queries = load_queries(args.dir / "queries.jsonl")
    data = Data(engine, queries)
    if not args.no_cache:
        save_embedder(emb)
    allrows = np.vstack([r for r in data.rows if len(r)])
    mean, std = allrows.mean(0), allrows.std(0) + 1e-9
    everything = np.ones(len(queries), dtype=bool)
    model = fit(data, everything, mean, std)
    grid = np.round(np.arange(0.2, 0.91, 0.01), 3)
    curve = figures(data, mean, std, model, everything, grid)
    ok = [t for t in grid if curve[round(float(t), 3)][2] <= args.wrong]
    threshold = float(min(ok)) if ok else 0.9
    print("in-sample:", curve, file=sys.stderr)
    branches = sorted(set(data.branch))
    half = np.array([b in set(branches[::2]) for b in data.branch])
    for name, train in (("A->B", half), ("B->A", ~half)):
        m = fit(data, train, mean, std)
        print(f"branch split {name}:", figures(data, mean, std, m, ~train, grid), file=sys.stderr)
    c = model["conf"]
    print(_array("FEAT_MEAN", mean, ".6g"))
    print(_array("FEAT_STD", std, ".6g"))
    print(_array("RANK_WEIGHTS", model["w"], ".4f"))
    print(_array("CONF_WEIGHTS", c[:-1], ".4f"))
    print(f"CONF_BIAS = {c[-1]:.4f}")
    print(f"E5_CAP = {model['e5_cap']:.4f}")
    print(f"MARGIN_CAP = {model['cap']:.4f}\nDEFAULT_THRESHOLD = {threshold}")
    print(f"ANCHOR_QUANTILE = {ANCHOR_QUANTILE}\nRIGHT_ANCHOR_LOGIT = {right_anchor(data, mean, std, model):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
