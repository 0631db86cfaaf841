"""The KB's pure rules, without a database: what an editor is told when an entry is refused,
how a branch's path reads, and the version list's change lines (kb_sync.rules, .branches, .versions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kb_sync.branches import BranchTree, check_branch_name, split_path
from kb_sync.rules import KbError, check_window, clean_entry, parse_moment, question_key
from kb_sync.versions import diff_snapshots


def test_an_entry_is_cleaned_or_refused_in_chinese() -> None:
    values = clean_entry({
        "question": " 居住证怎么办理？ ", "answer": "<p>带身份证</p><script>x()</script>",
        "similar": "居住证怎么办理?||如何办居住证\n如何办居住证", "keywords": "居住证，办理、证件",
        "valid_from": "2026-01-31", "valid_to": "",
    })
    assert values["question"] == "居住证怎么办理？"
    assert "<script" not in values["answer"] and "带身份证" in values["answer"]
    # the standard question is not also a similar one (NFKC: full- and half-width ? are one); no repeats
    assert values["similar"] == ["如何办居住证"]
    assert values["keywords"] == ["居住证", "办理", "证件"]
    assert values["valid_from"] == datetime(2026, 1, 30, 16, 0, tzinfo=UTC)  # Beijing midnight
    assert values["valid_to"] is None
    with pytest.raises(KbError, match="标准问题不能为空"):
        clean_entry({"question": "  ", "answer": "有"})
    with pytest.raises(KbError, match="生效时间格式不正确"):
        parse_moment("31/01/2026", "生效时间")
    with pytest.raises(KbError, match="失效时间必须晚于生效时间"):
        check_window({"valid_from": parse_moment("2026-02-01", "x"), "valid_to": parse_moment("2026-01-01", "x")})
    assert question_key("ＡＢＣ 居住证") == question_key("abc居住证")


def test_branch_paths_and_names() -> None:
    tree = BranchTree([(1, "户籍", None), (2, "迁移", 1), (3, "落户", 2), (4, "社保", None)], {2: 5})
    assert tree.by_id[3].path == "户籍/迁移/落户"
    assert tree.by_path["户籍/迁移"] == 2 and tree.by_id[2].entry_count == 5
    assert sorted(tree.descendants(1)) == [1, 2, 3]
    assert [b.path for b in tree.ordered()] == ["户籍", "户籍/迁移", "户籍/迁移/落户", "社保"]
    assert split_path(" 户籍 ／迁移\\落户/ ") == ["户籍", "迁移", "落户"]
    with pytest.raises(KbError, match="不能包含"):
        check_branch_name("户籍/迁移")


def test_a_versions_change_lines_read_as_the_editor_sees_them() -> None:
    before = {"branch_id": 1, "branch": "户籍", "question": "怎么迁户口", "similar": ["户口迁移"],
              "status": "draft", "valid_to": None}
    after = dict(before, question="户口怎么迁", similar=["户口迁移", "迁户口流程"], status="published",
                 valid_to="2026-03-01T00:00:00+00:00")
    lines = [change["text"] for change in diff_snapshots(before, after)]
    assert lines == [
        "标准问题：由「怎么迁户口」改为「户口怎么迁」",
        "相似问法：新增「迁户口流程」",
        "失效时间：由「（空）」改为「2026-03-01 08:00」",
        "状态：由「草稿」改为「已发布」",
    ]
    assert diff_snapshots(before, dict(before)) == []
