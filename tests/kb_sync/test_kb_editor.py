"""The KB editor's service layer on real SQLite and PostgreSQL with real Redis: versions and
rollback, the branch tree, import/export, 未解决问题, preview and publishing to every worker."""
from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.config import PROJECT_ROOT, Settings
from core.db import make_engine, make_sessionmaker
from core.models import Citizen, Conversation, KbEntry, KbEntryVersion, Message
from core.redis_client import Keys
from kb_sync import AnswerService, KbStore, read_jsonl
from kb_sync.preview import EMBEDDER, draft_from, preview_draft
from kb_sync.sanitize import sanitize_html
from kb_sync.store import KbError
from kb_sync.transfer import COLUMNS, KbImporter, export_entries, parse_table
from kb_sync.unanswered import collect, group_questions, mark_resolved, record_feedback
from tests.support import xlsx_bytes

EDITOR = "王编辑"


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> KbStore:
    return KbStore(make_sessionmaker(engine))


async def _entry(store: KbStore, branch_id: int, question: str, **extra: object) -> str:
    data = {"branch_id": branch_id, "question": question, "answer": f"{question}的答案", **extra}
    change = await store.create_entry(data, EDITOR)
    return change.ids[0]


# ---------------------------------------------------------------------------- versions


async def test_every_save_writes_a_version_and_rollback_makes_a_new_one(store: KbStore) -> None:
    branch = await store.create_branch("户籍", None)
    other = await store.create_branch("迁移", branch.id)
    entry_id = await _entry(store, branch.id, "户口怎么迁移？", similar=["迁户口"])
    first = await store.get(entry_id)
    assert first is not None and first.status == "draft" and first.version == 1

    change = await store.update_entry(entry_id, {"answer": "<p>带户口簿到派出所</p><script>x()</script>",
                                                 "similar": ["迁户口", "户口迁出"]}, "李编辑", expected_version=1)
    assert not change.published_changed  # a draft: the bot is not affected
    with pytest.raises(KbError) as stale:
        await store.update_entry(entry_id, {"answer": "旧页面上的修改"}, EDITOR, expected_version=1)
    assert stale.value.status == 409 and "已被他人修改" in stale.value.reason

    assert (await store.set_status(entry_id, "published", EDITOR)).published_changed
    assert (await store.move_entries([entry_id], other.id, EDITOR)).published_changed
    assert (await store.set_status(entry_id, "draft", EDITOR)).published_changed
    assert (await store.set_status(entry_id, "archived", EDITOR)).published_changed is False

    versions = await store.versions(entry_id)
    assert [v["action"] for v in versions] == ["archive", "draft", "move", "publish", "edit", "create"]
    assert [v["number"] for v in versions] == [6, 5, 4, 3, 2, 1]
    edit = versions[4]
    assert edit["editor"] == "李编辑" and edit["action_label"] == "编辑"
    labels = {d["label"] for d in edit["diff"]}
    assert labels == {"答案", "相似问法"}
    similar = next(d for d in edit["diff"] if d["label"] == "相似问法")
    assert similar["added"] == ["户口迁出"] and "新增「户口迁出」" in similar["text"]
    assert "script" not in edit["snapshot"]["answer"]
    assert versions[3]["diff"][0]["text"] == "状态：由「草稿」改为「已发布」"
    assert versions[2]["diff"][0]["label"] == "知识分类" and versions[2]["snapshot"]["branch"] == "户籍/迁移"

    await store.set_status(entry_id, "published", EDITOR)
    change = await store.rollback(entry_id, 1, "李编辑")
    assert change.published_changed
    now = await store.get(entry_id)
    assert now is not None
    assert now.answer == "户口怎么迁移？的答案" and now.similar == ["迁户口"] and now.branch_id == branch.id
    assert now.status == "published"  # rollback restores content, not the status
    latest = (await store.versions(entry_id))[0]
    assert latest["action"] == "rollback" and latest["number"] == 8 and latest["note"] == "回滚到版本 1"
    assert {d["label"] for d in latest["diff"]} == {"知识分类", "答案", "相似问法"}


async def test_entry_validation_reasons_are_chinese_and_nothing_is_written(store: KbStore) -> None:
    branch = await store.create_branch("社保", None)
    await _entry(store, branch.id, "社保卡怎么办？")
    cases = [
        ({"branch_id": branch.id, "question": "", "answer": "x"}, "标准问题不能为空"),
        ({"branch_id": branch.id, "question": "社保卡怎么办？", "answer": "x"}, "已存在"),
        ({"branch_id": branch.id, "question": "新问题", "answer": "x" * 5001}, "答案不能超过"),
        ({"branch_id": 999999, "question": "新问题", "answer": "x"}, "知识分类不存在"),
        ({"branch_id": branch.id, "question": "新问题", "answer": "x", "valid_from": "明天"}, "生效时间格式不正确"),
        ({"branch_id": branch.id, "question": "新问题", "answer": "x", "valid_from": "2026-02-01",
          "valid_to": "2026-01-01"}, "失效时间必须晚于生效时间"),
        ({"branch_id": branch.id, "question": "新问题", "answer": "<script>alert(1)</script>"}, "答案不能为空"),
    ]
    for data, reason in cases:
        with pytest.raises(KbError) as refused:
            await store.create_entry(data, EDITOR)
        assert reason in refused.value.reason and 400 <= refused.value.status < 500
    assert await store.count() == 1


def test_answer_html_is_sanitised() -> None:
    dirty = ('<p onclick="steal()">办理<a href="javascript:alert(1)">链接</a>'
             '<a href="https://zwfw.example.cn/a?b=1&c=2">指南</a><img src="x" onerror="alert(1)">'
             '<img src="https://zwfw.example.cn/x.png" alt="流程"><iframe src="https://evil"></iframe></p>')
    clean = sanitize_html(dirty)
    assert "onclick" not in clean and "javascript" not in clean and "onerror" not in clean and "iframe" not in clean
    assert '<a href="https://zwfw.example.cn/a?b=1&amp;c=2" rel="noopener noreferrer">指南</a>' in clean
    assert '<img src="https://zwfw.example.cn/x.png" alt="流程">' in clean
    assert sanitize_html(clean) == clean


# ---------------------------------------------------------------------------- branches


async def test_branch_tree_and_delete_refusal(store: KbStore) -> None:
    root = await store.create_branch("出入境", None)
    child = await store.create_branch("护照", root.id)
    leaf = await store.create_branch("补办", child.id)
    assert leaf.path == "出入境/护照/补办"
    with pytest.raises(KbError) as duplicate:
        await store.create_branch("护照", root.id)
    assert duplicate.value.status == 409

    entry_id = await _entry(store, leaf.id, "护照丢了怎么补办？")
    with pytest.raises(KbError) as has_entries:
        await store.delete_branch(leaf.id)
    assert has_entries.value.status == 409 and "1 个知识条目" in has_entries.value.reason
    with pytest.raises(KbError) as has_children:
        await store.delete_branch(root.id)
    assert has_children.value.status == 409 and "下级分类" in has_children.value.reason
    with pytest.raises(KbError) as cycle:
        await store.move_branch(root.id, leaf.id)
    assert cycle.value.status == 409

    renamed, _ = await store.rename_branch(child.id, "普通护照")
    assert renamed.path == "出入境/普通护照"
    moved, _ = await store.move_branch(leaf.id, None)
    assert moved.path == "补办"
    await store.delete_entries([entry_id], EDITOR)
    await store.delete_branch(leaf.id)
    assert [b.path for b in await store.branches()] == ["出入境", "出入境/普通护照"]
    history = await store.versions(entry_id)
    assert history[0]["action"] == "delete"  # the history outlives the entry


# ---------------------------------------------------------------------------- import / export


def _xlsx(rows: list[list[object]]) -> bytes:
    return xlsx_bytes(COLUMNS, rows)


def _generated_rows(n: int) -> list[list[object]]:
    statuses = ["草稿", "已发布", "已归档", ""]
    return [
        [f"分类{i % 10}", f"第{i}号事项怎么办理？", f"第{i}号事项办理流程||办第{i}号事项要带什么",
         f"第{i}号事项请到政务服务中心{i % 7 + 1}号窗口办理。", f"去{i % 7 + 1}号窗口", "办理，窗口",
         "2026-01-01 08:00" if i % 3 == 0 else "", "2030-12-31" if i % 5 == 0 else "", statuses[i % 4]]
        for i in range(1, n + 1)
    ]


async def _branches_for_import(store: KbStore) -> None:
    for i in range(10):
        await store.create_branch(f"分类{i}", None)


async def test_import_of_2000_rows_is_fast_and_complete(store: KbStore) -> None:
    await _branches_for_import(store)
    data = _xlsx(_generated_rows(2000))
    seen: list[tuple[str, int, int]] = []

    async def progress(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, total))

    started = time.perf_counter()
    rows = parse_table(data, "kb.xlsx")
    report = await KbImporter(store).run(rows, EDITOR, progress=progress)
    seconds = time.perf_counter() - started
    print(f"\n[kb import] 2000 rows in {seconds:.2f}s ({store.sessions.kw['bind'].dialect.name})")
    assert report.ok and report.created == 2000 and report.errors == []
    assert report.published == 500
    assert await store.count() == 2000
    assert any(stage == "writing" and 0 < done < 2000 for stage, done, _ in seen)
    assert seen[-1] == ("done", 2000, 2000)
    async with store.sessions() as session:
        versions = (await session.execute(select(func.count(KbEntryVersion.id)))).scalar_one()
        assert versions == 2000
    sample = (await store.search("第7号事项怎么办理"))[0]
    assert sample.similar == ["第7号事项办理流程", "办第7号事项要带什么"]
    assert sample.keywords == ["办理", "窗口"] and sample.status == "draft"  # a blank 状态 is a draft
    assert sample.valid_to is None and sample.valid_from is None


async def test_one_bad_row_imports_nothing_and_names_every_bad_row(store: KbStore) -> None:
    await _branches_for_import(store)
    existing = await _entry(store, (await store.branches())[0].id, "已有的问题？")
    assert existing
    rows = _generated_rows(2000)
    rows[998][1] = ""  # file row 1000: no standard question
    rows[1200][3] = "长" * 5001  # row 1202
    rows[1300][0] = "不存在的分类"  # row 1302
    rows[1400][1] = rows[10][1]  # row 1402 repeats row 12
    rows[1500][6] = "2026年13月"  # row 1502
    rows[1600][1] = "已有的问题？"  # row 1602
    rows[1700][8] = "待审核"  # row 1702
    report = await KbImporter(store).run(parse_table(_xlsx(rows), "kb.xlsx"), EDITOR)
    assert not report.ok and report.created == 0
    by_row = {e.row: e.reason for e in report.errors}
    assert sorted(by_row) == [1000, 1202, 1302, 1402, 1502, 1602, 1702]
    assert "标准问题为空" in by_row[1000]
    assert "答案超过 5000 字" in by_row[1202]
    assert "知识分类“不存在的分类”不存在" in by_row[1302]
    assert "与第 12 行重复" in by_row[1402]
    assert "生效时间" in by_row[1502]
    assert "已存在" in by_row[1602]
    assert "状态“待审核”无效" in by_row[1702]
    assert await store.count() == 1  # nothing written

    # ticking "create missing branches" only fixes the branch problem
    fixed = _generated_rows(30)
    fixed[5][0] = "新分类/子分类"
    report = await KbImporter(store).run(parse_table(_xlsx(fixed), "kb.xlsx"), EDITOR, create_branches=True)
    assert report.ok and report.created_branches == ["新分类/子分类"]
    assert "新分类/子分类" in [b.path for b in await store.branches()]


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "photo.xlsx"),
        (b"PK\x03\x04" + b"\x00" * 200, "broken.xlsx"),
        (b"%PDF-1.7\x00\x01binary", "kb.csv"),
        ("问题,回答\n怎么办,这样办\n".encode(), "kb.csv"),  # a table, but not ours
        (b"", "kb.xlsx"),
    ],
)
def test_a_file_that_is_not_a_kb_spreadsheet_is_refused(data: bytes, name: str) -> None:
    with pytest.raises(KbError) as refused:
        parse_table(data, name)
    assert refused.value.status == 400 and refused.value.reason


def test_csv_in_gbk_and_excel_dates_are_read() -> None:
    text = ("知识分类,标准问题,相似问法,答案,状态,生效时间\n"
            "户籍,户口怎么迁？,迁户口||户口迁出,带户口簿,已发布,2026/3/1\n")
    rows = parse_table(text.encode("gb18030"), "kb.csv")
    assert rows == [(2, {"知识分类": "户籍", "标准问题": "户口怎么迁？", "相似问法": "迁户口||户口迁出",
                         "答案": "带户口簿", "状态": "已发布", "生效时间": "2026/3/1"})]
    from kb_sync.transfer import validate_rows

    clean, errors, _ = validate_rows(rows, branch_paths={"户籍": 1}, existing_questions={}, create_branches=False)
    assert errors == [] and clean[0]["similar"] == ["迁户口", "户口迁出"]
    assert clean[0]["valid_from"] == datetime(2026, 2, 28, 16, 0, tzinfo=UTC)  # Beijing midnight
    book_rows = parse_table(_xlsx([["户籍", "问？", "", "答", "", "", datetime(2026, 3, 1, 8, 0), "", ""]]), "k.xlsx")
    clean, errors, _ = validate_rows(book_rows, branch_paths={"户籍": 1}, existing_questions={}, create_branches=False)
    assert errors == [] and clean[0]["valid_from"] == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


async def test_export_then_import_into_an_empty_kb_round_trips(store: KbStore) -> None:
    root = await store.create_branch("不动产登记", None)
    sub = await store.create_branch("抵押", root.id)
    other = await store.create_branch("税务", None)
    await _entry(store, root.id, "房产证怎么办？", similar=["办房产证", "不动产权证书怎么领"],
                 answer='<p>到<a href="https://bdc.example.cn/">不动产登记中心</a>办理</p><img src="/static/x.png">',
                 short_answer="到不动产登记中心办理", keywords=["房产证", "不动产"],
                 valid_from="2026-01-01 08:00", valid_to="2031-06-30 18:30", status="published")
    await _entry(store, sub.id, "抵押登记要什么材料？", answer="身份证, \"合同\"\n和 = 申请书", status="draft")
    await _entry(store, other.id, "个税怎么退？", similar=["=SUM(A1)", "退税"], status="archived")

    def shape(entries: list) -> list[tuple]:
        return sorted((e.branch_path, e.question, tuple(e.similar), e.answer, e.short_answer, tuple(e.keywords),
                       e.valid_from.astimezone(UTC) if e.valid_from else None,
                       e.valid_to.astimezone(UTC) if e.valid_to else None, e.status) for e in entries)

    original = shape(await store.all_entries())
    published_only = export_entries(await store.all_entries(status="published"), "csv")
    assert parse_table(published_only, "x.csv")[0][1]["标准问题"] == "房产证怎么办？"
    assert len(parse_table(export_entries(await store.all_entries(branch_id=root.id), "xlsx"), "x.xlsx")) == 2

    for kind in ("xlsx", "csv"):
        data = export_entries(await store.all_entries(), kind)
        entries = await store.all_entries()
        await store.delete_entries([e.id for e in entries], EDITOR)
        for branch in sorted(await store.branches(), key=lambda b: -b.path.count("/")):
            await store.delete_branch(branch.id)
        assert await store.count() == 0 and await store.branches() == []
        report = await KbImporter(store).run(parse_table(data, f"kb.{kind}"), EDITOR, create_branches=True)
        assert report.ok, report.errors
        assert shape(await store.all_entries()) == original, kind


# ---------------------------------------------------------------------------- publishing to every worker


async def test_publish_reaches_a_second_worker_and_unpublish_and_expiry_stop_it(
    store: KbStore, settings: Settings, redis_client: aioredis.Redis
) -> None:
    keys = Keys(settings.redis_prefix)
    worker_a = AnswerService(store, redis_client, keys)
    worker_b = AnswerService(store, redis_client, keys)
    await store.upsert(read_jsonl(PROJECT_ROOT / "kb_sync/demo/kb.jsonl"), status="published", editor="demo")
    await worker_a.warm()
    await worker_b.warm()
    question = "无人机飞行需要去哪里登记备案？"
    before = await worker_b.answer(question)
    assert before.answer is None or before.answer.question != question

    branch = await store.create_branch("低空飞行", None)
    change = await store.create_entry({
        "branch_id": branch.id, "question": question, "answer": "请在民航局无人机实名登记系统登记。",
        "similar": ["无人机要登记吗", "买了无人机怎么备案"], "status": "draft"}, EDITOR)
    entry_id = change.ids[0]
    assert not change.published_changed
    publish = await store.set_status(entry_id, "published", EDITOR)
    assert publish.published_changed
    await worker_a.notify_changed()  # worker A published; worker B must follow within 2 s
    started = time.perf_counter()
    after = await worker_b.answer("买了无人机怎么备案")
    print(f"\n[kb publish] second worker rebuilt and answered in {time.perf_counter() - started:.2f}s")
    assert after.answer is not None and after.answer.entry_id == entry_id

    await store.set_status(entry_id, "draft", EDITOR)
    await worker_a.notify_changed()
    gone = await worker_b.answer("买了无人机怎么备案")
    assert gone.answer is None or gone.answer.entry_id != entry_id

    await store.update_entry(entry_id, {"valid_to": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
                                        "valid_from": (datetime.now(UTC) - timedelta(days=30)).isoformat()}, EDITOR)
    await store.set_status(entry_id, "published", EDITOR)
    await worker_a.notify_changed()
    expired = await worker_b.answer("买了无人机怎么备案")
    assert expired.answer is None or expired.answer.entry_id != entry_id


# ---------------------------------------------------------------------------- 未解决问题 and preview


async def _conversation(store: KbStore, visitor: str, turns: list[tuple[str, str, dict]]) -> tuple[str, list[int]]:
    """A web conversation with (sender, text, meta) turns; returns its id and the message ids."""
    conversation_id = str(uuid.uuid4())
    ids = []
    async with store.sessions() as session, session.begin():
        citizen = Citizen(name=None)
        session.add(citizen)
        await session.flush()
        session.add(Conversation(id=conversation_id, citizen_id=citizen.id, channel="web", channel_user_id=visitor))
        await session.flush()
        for sender, text, meta in turns:
            message = Message(conversation_id=conversation_id, channel="web", sender=sender, text=text, meta=meta)
            session.add(message)
            await session.flush()
            ids.append(message.id)
    return conversation_id, ids


DECLINED = {"declined": True, "reason": "kb_declined"}


async def test_unanswered_questions_are_grouped_and_ranked(store: KbStore) -> None:
    phrasings = ["无人机怎么登记", "无人机要怎么登记", "我买了无人机怎么登记", "无人机怎么登记？", "无人机怎么登记"]
    for text in phrasings:
        await _conversation(store, str(uuid.uuid4()), [("citizen", text, {}), ("bot", "抱歉", DECLINED)])
    await _conversation(store, "v-other", [("citizen", "量子纠缠的原理是什么", {}), ("bot", "抱歉", DECLINED)])
    await _conversation(store, "v-low", [("citizen", "公积金贷款额度怎么算", {}),
                                         ("bot", "答案", {"kb_entry_id": "D1", "kb_score": 0.5})])
    await _conversation(store, "v-good", [("citizen", "身份证怎么补办", {}),
                                          ("bot", "答案", {"kb_entry_id": "D2", "kb_score": 0.95})])
    _conv, ids = await _conversation(store, "v-down", [("citizen", "社保卡密码忘了", {}),
                                                       ("bot", "答案", {"kb_entry_id": "D3", "kb_score": 0.9})])
    await record_feedback(store.sessions, ids[1], "v-down", "down")

    items = await collect(store.sessions, days=30, low_score=0.6)
    assert {i.reason for i in items} == {"declined", "low_confidence", "downvoted"}
    assert "身份证怎么补办" not in {i.question for i in items}
    groups = group_questions(items, EMBEDDER)
    top = groups[0]
    assert top.count == 5 and set(top.texts) == set(phrasings)
    assert top.representative == "无人机怎么登记"
    assert top.to_json()["reasons"][0] == {"reason": "declined", "label": "机器人未能回答", "count": 5}
    others = {g.representative: g.count for g in groups[1:]}
    assert others == {"量子纠缠的原理是什么": 1, "公积金贷款额度怎么算": 1, "社保卡密码忘了": 1}

    await mark_resolved(store.sessions, ["无人机怎么登记"], None, EDITOR)
    left = {i.question for i in await collect(store.sessions, days=30, low_score=0.6)}
    assert "无人机怎么登记" not in left and "我买了无人机怎么登记" in left


async def test_feedback_is_checked_against_the_visitors_own_conversation(store: KbStore) -> None:
    _conv, ids = await _conversation(store, "visitor-1", [("citizen", "你好", {}), ("bot", "您好", {})])
    assert (await record_feedback(store.sessions, ids[1], "visitor-1", "up"))["vote"] == "up"
    assert (await record_feedback(store.sessions, ids[1], "visitor-1", "down"))["vote"] == "down"
    for message_id, visitor, vote, status in [
        (ids[1], "visitor-2", "down", 404),
        (ids[0], "visitor-1", "down", 400),
        (ids[1], "visitor-1", "meh", 400),
        (999999, "visitor-1", "up", 404),
    ]:
        with pytest.raises(KbError) as refused:
            await record_feedback(store.sessions, message_id, visitor, vote)
        assert refused.value.status == status


async def test_preview_lists_the_questions_whose_answer_would_change(store: KbStore) -> None:
    await store.upsert(read_jsonl(PROJECT_ROOT / "kb_sync/demo/kb.jsonl"), status="published", editor="demo")
    asked = ["无人机飞行要去哪里登记", "无人机飞行要去哪里登记", "身份证丢了怎么补办", "公积金怎么提取"]
    for text in asked:
        await _conversation(store, str(uuid.uuid4()), [("citizen", text, {}), ("bot", "…", DECLINED)])
    draft = draft_from({"question": "无人机飞行需要登记吗？", "similar": ["无人机去哪里登记", "无人机飞行要登记备案吗"],
                        "answer": "请在民航局无人机实名登记系统登记。"}, None, "低空飞行")
    result = await preview_draft(store, draft, days=30)
    assert result["questions"] == 3 and result["asked"] == 4
    changed = {c["question"]: c for c in result["changed"]}
    assert "无人机飞行要去哪里登记" in changed
    row = changed["无人机飞行要去哪里登记"]
    assert row["count"] == 2 and row["after"]["entry_id"] == "__draft__"
    assert row["before"] is None or row["before"]["entry_id"] != "__draft__"
    assert "身份证丢了怎么补办" not in changed and "公积金怎么提取" not in changed
    async with store.sessions() as session:  # a preview writes nothing
        assert (await session.execute(select(func.count(KbEntry.id)))).scalar_one() == 106
