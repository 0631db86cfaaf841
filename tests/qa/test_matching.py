"""The shared word matcher (core.wordmatch), number masking for inspectors, and a call's recording
with its timed text attached to a QA item (the call center's way in)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from core.db import make_engine, make_sessionmaker
from core.errors import Refusal
from core.models import Conversation, User
from core.models.base import utcnow
from core.wordmatch import WordMatcher
from qa import QaCenter
from qa.masking import mask_text
from qa.search_terms import terms
from tests.qa.crafted import Script, served, store


def test_the_matcher_is_width_and_case_insensitive_and_reports_places() -> None:
    matcher = WordMatcher([("ＳＢ", "bad"), ("不知道", "bad"), ("投诉", "anger"), ("投诉", "bad")])
    text = "你是sb吗，我不知道，我要投诉"
    hits = matcher.find(text)
    assert [(h.word, h.tag, text[h.start:h.end]) for h in hits] == [
        ("ＳＢ", "bad", "sb"), ("不知道", "bad", "不知道"), ("投诉", "anger", "投诉"), ("投诉", "bad", "投诉"),
    ]
    assert [h.tag for h in matcher.find(text, tags=["anger"])] == ["anger"]
    assert WordMatcher([]).find(text) == [] and WordMatcher([("  ", "x")]).size == 0


@pytest.mark.parametrize("raw, shown", [
    ("电话13912345678", "电话*******5678"),
    ("+86 139-1234-5678 打我", "++++"),  # placeholder replaced below
    ("身份证53032119900101123X", "身份证**************123X"),
    ("座机0871-65432100", "座机*********2100"),
    ("订单2026113012345678不是号码", "订单2026113012345678不是号码"),
    ("办了3次，12345热线", "办了3次，12345热线"),
])
def test_phone_and_id_numbers_are_masked_in_text(raw: str, shown: str) -> None:
    if shown == "++++":
        assert "1234" not in mask_text(raw) and mask_text(raw).endswith("5678 打我")
    else:
        assert mask_text(raw) == shown


def test_search_terms_leave_numbers_out() -> None:
    found = terms("我的电话13912345678，社保卡ABC 12号")
    assert "社保" in found and "保卡" in found and "abc" in found and "12" in found
    assert not any("1391" in t for t in found)


async def test_a_calls_recording_and_text_are_scored_on_its_item(settings) -> None:
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session:
            agent = User(username="v1", display_name="张敏", password_hash="x", role="agent")
            inspector = User(username="q1", display_name="陈静", password_hash="x", role="inspector")
            session.add_all([agent, inspector])
            await session.flush()
            call = await store(session, Script(
                lines=[(0, "citizen", "（电话接入）"), (12, "agent", "您好，政务热线"),
                       (60, "agent", "感谢来电，再见")],
                events=served(agent.id), channel="voice",
            ))
            await session.execute(update(Conversation).values(closed_at=utcnow() - timedelta(minutes=1)))
            await session.commit()
        center = QaCenter(sessions, settings.with_overrides({"qa.csat_grace_seconds": 0}))
        segments = [
            {"start": 0, "end": 3, "speaker": "agent", "text": "您好，政务热线"},
            {"start": 3.5, "end": 10, "speaker": "citizen", "text": "我的电话是13912345678，社保卡丢了"},
            {"start": 8, "end": 12, "speaker": "agent", "text": "我不知道"},  # cuts in, and a forbidden word
            {"start": 40, "end": 44, "speaker": "agent", "text": "感谢来电，再见"},  # 28 s of silence before
        ]
        with pytest.raises(Refusal):
            await center.attach_recording(call, "/rec/1.wav", 44, [{"start": 1, "speaker": "robot"}])
        item = await center.attach_recording(call, "/rec/1.wav", 44.0, segments)  # no item yet: scored first
        assert item.recording_path == "/rec/1.wav" and item.recording_seconds == 44
        seconds = sorted((h["rule_id"], h.get("second")) for h in item.hits)
        assert seconds == [("forbidden", 8.0), ("silence", 12.0), ("talk_over", 8.0)]
        assert item.auto_score == 100 - 10 - 3 - 2 and item.score == item.auto_score
        assert "社保" in item.search_text.split()

        class Inspector:
            id, role, display_name = inspector.id, "inspector", "陈静"

            def may(self, *roles: str) -> bool:
                return self.role in roles

        view = await center.desk.view(item.id, Inspector())
        assert view["recording"]["seconds"] == 44
        said = [s["text"] for s in view["recording"]["segments"]]
        assert "我的电话是*******5678，社保卡丢了" in said  # masked for the inspector
    finally:
        await engine.dispose()
