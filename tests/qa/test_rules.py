"""Automatic rules on crafted transcripts: each hit points at its message (or second) and deducts."""

from __future__ import annotations

import random
import time

import pytest

from qa.defaults import DEFAULT_RULES, DEFAULT_SHEET
from qa.rules import CompiledRules, RuleError, clean_rules
from qa.sheets import auto_scores
from tests.qa.crafted import Script, served, transcript

RULES = CompiledRules(1, clean_rules(DEFAULT_RULES))


def good_script() -> Script:
    return Script(
        lines=[
            (0, "citizen", "转人工"),
            (12, "agent", "您好，我是客服张敏，请问有什么可以帮您？"),
            (20, "citizen", "居住证怎么办理"),
            (40, "agent", "携带身份证到服务中心办理即可。"),
            (50, "citizen", "好的谢谢"),
            (60, "agent", "感谢您的咨询，再见。"),
        ],
        events=served(),
        csat=5,
    )


def by_rule(hits) -> dict[str, list]:
    found: dict[str, list] = {}
    for hit in hits:
        found.setdefault(hit.rule_id, []).append(hit)
    return found


def test_a_good_conversation_has_no_hits_and_full_automatic_marks() -> None:
    hits = RULES.evaluate(transcript(good_script()))
    assert hits == []
    scores = auto_scores(DEFAULT_SHEET["items"], hits)
    assert sum(scores.values()) == 100


def test_forbidden_words_by_the_agent_point_at_the_message_and_the_word() -> None:
    script = good_script()
    script.lines[3] = (40, "agent", "这个我不知道，你自己看官网。")
    t = transcript(script)
    hits = by_rule(RULES.evaluate(t))
    words = sorted(hit.word for hit in hits["forbidden"])
    assert words == ["不知道", "你自己看"]
    line = t.lines[3]
    for hit in hits["forbidden"]:
        assert hit.message_id == line.id
        assert line.text[hit.start:hit.end] == hit.word
    # the same words said by the citizen are not the agent's fault
    script.lines[3] = (40, "agent", "携带身份证办理。")
    script.lines[2] = (20, "citizen", "我不知道怎么办")
    assert "forbidden" not in by_rule(RULES.evaluate(transcript(script)))


def test_notes_and_whispers_are_not_scored() -> None:
    script = good_script()
    script.lines.append((45, "agent", "这人不知道在说什么", {"note": True}))
    assert RULES.evaluate(transcript(script)) == []


def test_citizen_anger_marks_a_complaint_without_deducting() -> None:
    script = good_script()
    script.lines[4] = (50, "citizen", "你们态度恶劣，我要投诉！")
    hits = RULES.evaluate(transcript(script))
    anger = by_rule(hits)["citizen_anger"]
    assert {hit.word for hit in anger} == {"态度恶劣", "投诉"}
    assert RULES.complaint(hits)
    assert sum(auto_scores(DEFAULT_SHEET["items"], hits).values()) == 100


def test_missing_greeting_and_closing() -> None:
    script = good_script()
    script.lines[1] = (12, "agent", "请讲。")
    script.lines[5] = (60, "agent", "好的。")
    t = transcript(script)
    hits = by_rule(RULES.evaluate(t))
    assert hits["greeting"][0].message_id == t.lines[1].id
    assert hits["closing"][0].message_id == t.lines[5].id
    assert auto_scores(DEFAULT_SHEET["items"], RULES.evaluate(t))["language"] == 20


def test_slow_first_response_and_long_gaps() -> None:
    script = good_script()
    script.lines[1] = (90, "agent", "您好，请问有什么可以帮您？")  # 80 s after assignment (limit 60)
    script.lines[3] = (300, "agent", "携带身份证办理即可。")  # the citizen waited 280 s (limit 120)
    t = transcript(script)
    hits = by_rule(RULES.evaluate(t))
    assert hits["first_response"][0].message_id == t.lines[1].id
    assert [h.message_id for h in hits["gap"]] == [t.lines[3].id]
    assert t.first_response_seconds() == 80
    assert t.longest_gap_seconds() == 280


def test_transfers_low_csat_and_a_promised_ticket() -> None:
    script = good_script()
    script.events[2:2] = [(30 + i, "transfer", "agent:1", {}) for i in range(3)]
    script.csat = 1
    script.lines[3] = (40, "agent", "我这边给您登记工单，稍后有人联系您。")
    t = transcript(script)
    hits = by_rule(RULES.evaluate(t))
    assert hits["transfers"][0].detail == "转接 3 次"
    assert hits["low_csat"][0].detail == "满意度 1 分"
    assert hits["ticket_promised"][0].message_id == t.lines[3].id
    script.tickets = 1
    assert "ticket_promised" not in by_rule(RULES.evaluate(transcript(script)))


def test_regex_rule() -> None:
    rules = CompiledRules(2, clean_rules([
        {"id": "promise", "name": "不当承诺", "kind": "regex", "who": "agent", "deduct": 4,
         "pattern": r"保证.{0,4}(办好|通过)"},
    ]))
    script = good_script()
    script.lines[3] = (40, "agent", "我保证一定办好。")
    hits = rules.evaluate(transcript(script))
    assert [(h.rule_id, h.word, h.message_id) for h in hits] == [("promise", "保证一定办好", 4)]


def test_calls_silence_and_talk_over_point_at_seconds() -> None:
    t = transcript(good_script())
    t.lines = []
    t.segments = [
        {"start": 0.0, "end": 4.0, "speaker": "agent", "text": "您好，这里是政务服务热线"},
        {"start": 4.5, "end": 12.0, "speaker": "citizen", "text": "我想问一下社保卡补办"},
        {"start": 9.0, "end": 15.0, "speaker": "agent", "text": "社保卡补办需要身份证"},  # cut in 3 s early
        {"start": 35.0, "end": 40.0, "speaker": "agent", "text": "我不知道，感谢来电"},  # 20 s silence before
    ]
    hits = by_rule(RULES.evaluate(t))
    assert [h.second for h in hits["talk_over"]] == [9.0]
    assert [h.second for h in hits["silence"]] == [15.0]
    assert [(h.second, h.word) for h in hits["forbidden"]] == [(35.0, "不知道")]


def test_a_ten_thousand_word_list_is_matched_by_the_automaton() -> None:
    chooser = random.Random(7)
    alphabet = "的一是不了人我在有他这为之大来以个中上们到说时国和地要就出也得里后自会"
    words = {"".join(chooser.choice(alphabet) for _ in range(chooser.randint(3, 5))) for _ in range(12_000)}
    words = sorted(words)[:10_000]
    assert len(words) == 10_000
    planted = words[1234]
    rules = CompiledRules(3, clean_rules([
        {"id": "big", "name": "大词表", "kind": "words", "who": "agent", "deduct": 1, "words": words},
    ]))
    assert rules.matcher.size == 10_000
    text = "您好，" + planted + "，请稍等。"
    script = good_script()
    script.lines = [(10 + i, "agent" if i % 2 else "citizen", text if i == 25 else "您好谢谢") for i in range(50)]
    started = time.perf_counter()
    hits = rules.evaluate(transcript(script))
    elapsed = time.perf_counter() - started
    found = {h.word for h in hits}
    assert planted in found
    # every reported word is really in the list and really at that place
    for hit in hits:
        assert hit.word in words
    # no word of the list occurring in the texts is missed (checked the slow way)
    expected = {w for w in words if w in text or w in "您好谢谢"}
    assert found == expected
    assert elapsed < 5  # sanity only; throughput is in bench/qa_scoring.py


@pytest.mark.parametrize("bad, reason", [
    ([{"id": "a", "name": "x", "kind": "nope", "deduct": 1}], "类型"),
    ([{"id": "a", "name": "x", "kind": "regex", "who": "agent", "deduct": 1, "pattern": "("}], "正则"),
    ([{"id": "a", "name": "x", "kind": "words", "who": "agent", "deduct": 1, "words": []}], "至少"),
    ([{"id": "a", "name": "x", "kind": "gap", "deduct": 1, "max_seconds": 0}], "max_seconds"),
    ([{"id": "a", "name": "x", "kind": "gap", "deduct": 1, "max_seconds": 5}] * 2, "重复"),
])
def test_bad_rules_are_refused_with_a_chinese_reason(bad, reason) -> None:
    with pytest.raises(RuleError) as caught:
        clean_rules(bad)
    assert reason in caught.value.reason
    assert caught.value.status == 400
