"""LIKE wildcards a person types in a search box are taken literally (issue #12): "%" or "_" does not
list every KB entry or every citizen."""

from __future__ import annotations

from core.config import Settings
from core.db import make_engine, make_sessionmaker
from crm import CitizenDirectory
from kb_sync import KbStore


async def test_wildcards_in_searches_match_only_themselves(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        kb = KbStore(sessions)
        branch = await kb.create_branch("测试", None)
        for question in ("居住证怎么办理？", "护照怎么办理？", "满意度达到100%怎么算？", "a_b 是什么？"):
            await kb.create_entry({"branch_id": branch.id, "question": question, "answer": f"{question}答"}, "编辑")
        assert [e.question for e in await kb.search("%")] == ["满意度达到100%怎么算？"]
        assert [e.question for e in await kb.search("_")] == ["a_b 是什么？"]
        assert await kb.search("居%办理") == []
        assert len(await kb.search("办理")) == 2  # an ordinary search still finds what it should

        citizens = CitizenDirectory(sessions)
        for phone in ("13812345678", "13987654321"):
            await citizens.update(await citizens.resolve("web", phone), phone=phone, name="张三")
        assert await citizens.search("%") == []
        assert await citizens.search("1381234567_") == []
        assert [c.phone for c in await citizens.search("1381234")] == ["13812345678"]
    finally:
        await engine.dispose()
