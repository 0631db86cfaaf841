"""Training hash and model cache, without running Rasa (a fake trainer records calls)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import training

QUESTIONS = ["居住证怎么办理？", "办居住证要准备哪些材料", "公积金怎么提取"]


def test_hash_changes_with_kb_data_and_ignores_order() -> None:
    base = training.training_hash(QUESTIONS)
    assert training.training_hash(list(reversed(QUESTIONS))) == base
    assert training.training_hash(QUESTIONS + ["护照怎么办理"]) != base
    assert training.training_hash([]) != base


def test_hash_changes_when_hand_written_data_changes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    base = training.training_hash(QUESTIONS)
    original = training._training_inputs

    def edited(generated: str) -> list[tuple[str, bytes]]:
        inputs = original(generated)
        return [(n, c + b"\n      - new example\n" if n.endswith("nlu.yml") else c) for n, c in inputs]

    monkeypatch.setattr(training, "_training_inputs", edited)
    assert training.training_hash(QUESTIONS) != base


@pytest.fixture
def fake_trainer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Point the cache at tmp_path and replace `rasa train` with a file write."""
    monkeypatch.setenv("ZWKF_CACHE_DIR", str(tmp_path / "cache"))
    runs: list[str] = []

    def fake_run(generated_file: Path, out_dir: Path, name: str) -> None:
        assert "kb_question" in generated_file.read_text(encoding="utf-8")
        runs.append(name)
        (out_dir / f"{name}.tar.gz").write_bytes(b"model")

    monkeypatch.setattr(training, "_run_rasa_train", fake_run)
    return runs


def test_second_ensure_model_reuses_the_cache(fake_trainer: list[str], tmp_path: Path) -> None:
    first = training.ensure_model(QUESTIONS)
    digest = training.training_hash(QUESTIONS)
    assert first == tmp_path / "cache" / "models" / f"{digest}.tar.gz"
    assert first.read_bytes() == b"model"
    assert fake_trainer == [digest]

    assert training.ensure_model(QUESTIONS) == first
    assert fake_trainer == [digest], "a cached model must not be retrained"
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")], "temp files left behind"

    training.ensure_model(QUESTIONS + ["护照怎么办理"])
    assert len(fake_trainer) == 2


def test_existing_cache_file_is_used_without_training(fake_trainer: list[str], tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "models" / f"{training.training_hash(QUESTIONS)}.tar.gz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"previously trained")
    assert training.ensure_model(QUESTIONS) == cached
    assert fake_trainer == []


def test_kb_examples_are_cleaned_deduped_capped_and_conflicts_dropped() -> None:
    questions = ["  护照 怎么\n办理 ", "护照 怎么 办理", "转人工", "营业执照怎么办理", "办证[加急](急)"]
    questions += [f"问题{i}" for i in range(50)]
    chosen = training.select_kb_examples(questions, cap=10)
    assert len(chosen) == 10 and chosen == sorted(chosen)
    assert "护照 怎么 办理" in chosen
    assert "转人工" not in chosen  # a hand-written request_human example
    assert "营业执照怎么办理" not in chosen  # already a hand-written kb_question example
    assert "办证【加急】（急）" in chosen  # no accidental Rasa entity markup


def test_kb_file_is_read_round_robin(tmp_path: Path) -> None:
    kb = tmp_path / "kb.jsonl"
    rows = [
        {"id": "A", "branch": "x", "question": "A标准", "similar": ["A1", "A2"], "answer": "."},
        {"id": "B", "branch": "x", "question": "B标准", "similar": ["B1"], "answer": "."},
    ]
    kb.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", encoding="utf-8")
    assert training.load_kb_questions(kb) == ["A标准", "B标准", "A1", "B1", "A2"]
    assert training.load_kb_questions(tmp_path / "missing.jsonl") == []


def test_generated_nlu_is_valid_yaml() -> None:
    import yaml

    doc = yaml.safe_load(training.render_kb_nlu(["护照怎么办理", "#号开头也行: 冒号"]))
    assert doc["nlu"][0]["examples"].splitlines() == ["- 护照怎么办理", "- #号开头也行: 冒号"]
    assert yaml.safe_load(training.render_kb_nlu([])) == {"version": "3.1", "nlu": []}
