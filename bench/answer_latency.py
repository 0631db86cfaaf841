"""Latency of the KB answer engine at hub scale (2,000 entries x ~4 texts).

    python bench/answer_latency.py [--entries 2000] [--queries 300]

Builds a KB from shared/eval/faq-tianchi-train when it is beside the repo (entries,
with paraphrase queries and light rewordings as similar questions; extra entries from
other queries), else from generated government-service questions.  Prints one JSON
object: cold build (empty embedding cache), incremental rebuild after publishing one
entry, and per-query latency (p50/p99 in ms) for new questions (embedding included)
and for repeated ones (embedding cached).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb_sync.retrieval import AnswerEngine, Embedder, KbDoc  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval" / "faq-tianchi-train"
_PREFIX = ("请问", "你好，", "想问一下，", "咨询一下：")
_SUFFIX = ("？", "呢？", "啊", "")


def _variants(text: str, n: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    for _ in range(n * 4):
        t = rng.choice(_PREFIX) + text.rstrip("？?") + rng.choice(_SUFFIX)
        if t not in out and t != text:
            out.append(t)
        if len(out) == n:
            break
    return out


def kb_from_eval(n: int, rng: random.Random) -> tuple[list[KbDoc], list[str]]:
    """Entries from the eval KB (+ extra ones from its queries), ~4 texts each; and query texts."""
    kb = [json.loads(line) for line in (EVAL / "kb.jsonl").open(encoding="utf-8")]
    qs = [json.loads(line) for line in (EVAL / "queries.jsonl").open(encoding="utf-8")]
    para: dict[str, list[str]] = {}
    for q in qs:
        if q["expected"]:
            para.setdefault(q["expected"], []).append(q["text"])
    docs = []
    for e in kb[:n]:
        sim = para.get(e["id"], [])[:3]
        sim += _variants(e["question"], 3 - len(sim), rng)
        docs.append(KbDoc(e["id"], e["branch"], e["question"], tuple(sim)))
    extra = [q["text"] for q in qs if q["expected"] is None]
    rng.shuffle(extra)
    for i, text in enumerate(extra[: max(0, n - len(docs))]):
        docs.append(KbDoc(f"X{i:05d}", "extra", text, tuple(_variants(text, 3, rng))))
    queries = [q["text"] for q in qs]
    rng.shuffle(queries)
    return docs, queries


def kb_generated(n: int, rng: random.Random) -> tuple[list[KbDoc], list[str]]:
    """Generated government-service questions when no eval data is around."""
    things = (
        "身份证 户口 社保卡 医保 公积金 护照 港澳通行证 驾驶证 行驶证 营业执照 居住证 结婚证 出生证明 退休手续 失业金 "
        "低保 残疾证 不动产证 房产证 税务登记 养老保险 生育津贴 工伤认定 落户 准生证 老年卡 公交卡 健康证 特种设备证 "
        "食品经营许可"
    ).split()
    asks = (
        "怎么办理 需要什么材料 在哪里办 多久能办好 要多少钱 丢了怎么补办 到期了怎么换 可以网上办吗 办理条件是什么 "
        "能委托别人办吗 办理进度怎么查 外地人能办吗"
    ).split()
    places = ["", "在本市", "异地", "在区政务中心", "周末", "在自助机上", "给老人", "给孩子"]
    combos = [(t, a, p) for t in things for a in asks for p in places]
    rng.shuffle(combos)
    docs = []
    for i, (t, a, p) in enumerate(combos[:n]):
        q = f"{p}{t}{a}？"
        docs.append(KbDoc(f"G{i:05d}", t, q, tuple(_variants(q, 3, rng))))
    queries = [f"{p}{t}{a}呢" for t, a, p in combos[n : n + 2000]] or [d.question for d in docs]
    return docs, queries


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    rng = random.Random(7)
    source = "faq-tianchi-train" if (EVAL / "kb.jsonl").exists() else "generated"
    docs, queries = kb_from_eval(args.entries, rng) if source != "generated" else kb_generated(args.entries, rng)
    texts = sum(1 + len(d.similar) for d in docs)

    emb = Embedder()
    t0 = time.perf_counter()
    engine = AnswerEngine.build(docs, emb)
    cold = time.perf_counter() - t0

    new = KbDoc("NEW00001", "new", "新发布的条目怎么查询？", ("刚发布的知识怎么找到", "新条目在哪里看"))
    t0 = time.perf_counter()
    engine = AnswerEngine.build([*docs, new], emb)
    rebuild = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine.decide("刚发布的知识怎么查询")
    first_answer = time.perf_counter() - t0

    fresh, cached = [], []
    for q in queries[: args.queries]:
        t0 = time.perf_counter()
        engine.decide(q)
        fresh.append(time.perf_counter() - t0)
    for q in queries[: args.queries]:
        t0 = time.perf_counter()
        engine.decide(q)
        cached.append(time.perf_counter() - t0)
    print(json.dumps({
        "source": source,
        "entries": len(docs),
        "texts": texts,
        "cold_build_s": round(cold, 2),
        "rebuild_after_one_entry_s": round(rebuild, 3),
        "first_answer_after_rebuild_ms": round(first_answer * 1000, 1),
        "query_p50_ms": pct(fresh, 0.5),
        "query_p99_ms": pct(fresh, 0.99),
        "repeat_query_p50_ms": pct(cached, 0.5),
        "repeat_query_p99_ms": pct(cached, 0.99),
        "queries": len(fresh),
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
