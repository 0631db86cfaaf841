"""The handoff rules alone: trigger phrases, group routing, working hours on the mainland calendar."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from core.config import load_settings
from handoff.routing import HandoffConfig, PhraseMatcher, WorkingHours, describe_opening, is_workday, parse_spans

SH = ZoneInfo("Asia/Shanghai")


def _config(**overrides: object) -> HandoffConfig:
    return HandoffConfig.from_settings(load_settings().with_overrides(overrides))


def test_keywords_match_inside_text_ignoring_spaces_and_width() -> None:
    matcher = PhraseMatcher(["转人工", "人工客服", "找真人"])
    assert matcher.find("你好，我要转 人工") == "转人工"
    assert matcher.find("请帮我接人工客服！") == "人工客服"
    assert matcher.find("居住证怎么办理") is None
    assert PhraseMatcher(["ＡＢＣ"]).find("abc") is None  # phrases are stored as given, texts are normalised
    assert PhraseMatcher(["abc"]).find("ＡＢＣ") == "abc"
    assert PhraseMatcher([]).find("转人工") is None


def test_shipped_config_triggers() -> None:
    config = _config()
    assert config.keywords.find("我要转人工")
    assert config.keywords.find("能不能找真人回答")
    assert config.anger_words.find("你们这什么破系统")
    assert not config.anger_words.find("居住证到期了怎么续签")
    assert "重点关注" in config.flagged_tags
    assert config.kb_marker == "#转人工"


def test_group_routing_by_intent_then_branch_then_default() -> None:
    config = _config()
    assert config.group_for(branch="公积金") == "社保"
    assert config.group_for(branch="户籍/迁移") == "户籍"  # the branch path's first part
    assert config.group_for(branch="不动产") == "综合"
    assert config.group_for(intent="complaint", branch="公积金") == "综合"  # the intent's route wins
    assert config.group_for(explicit="户籍", branch="公积金") == "户籍"
    assert config.group_for() == "综合"
    assert config.groups["社保"].strategy == "last_agent"
    assert config.groups["综合"].has_member("anyone", "agent")
    assert not config.groups["综合"].has_member("super1", "supervisor")
    assert config.groups["社保"].has_member("agent1", "agent") and not config.groups["社保"].has_member(
        "agent2", "agent"
    )


def test_bad_strategy_is_refused() -> None:
    with pytest.raises(ValueError):
        _config(**{"handoff.groups": {"综合": {"strategy": "random"}}})


def test_spans() -> None:
    spans = parse_spans("14:00-17:30, 8:30-12:00")
    assert [(s.start.hour, s.start.minute) for s in spans] == [(8, 30), (14, 0)]
    assert parse_spans("00:00-24:00")[0].end.hour == 23
    with pytest.raises(ValueError):
        parse_spans("12:00-08:00")


def test_tiaoxiu_saturday_is_a_working_day_and_a_holiday_is_not() -> None:
    # 2025-10-11 is a Saturday worked in exchange for the National Day holiday (调休); 2025-10-01 is National Day
    assert datetime(2025, 10, 11).weekday() == 5 and is_workday(datetime(2025, 10, 11).date())
    assert not is_workday(datetime(2025, 10, 1).date())
    assert not is_workday(datetime(2025, 10, 18).date())  # an ordinary Saturday
    assert is_workday(datetime(2027, 3, 3).date())  # past the package's data: plain weekdays


def test_working_hours_on_tiaoxiu_saturday_holiday_and_lunch_break() -> None:
    hours = WorkingHours(parse_spans("08:30-12:00,14:00-17:30"), "workdays", SH)
    assert hours.is_open(datetime(2025, 10, 11, 9, 0, tzinfo=SH))  # 调休 Saturday morning
    assert not hours.is_open(datetime(2025, 10, 11, 12, 30, tzinfo=SH))  # lunch break
    assert hours.next_opening(datetime(2025, 10, 11, 12, 30, tzinfo=SH)) == datetime(2025, 10, 11, 14, 0, tzinfo=SH)
    assert not hours.is_open(datetime(2025, 10, 3, 10, 0, tzinfo=SH))  # National Day holiday
    # the first working day after the 2025 National Day + Mid-autumn holiday is Thursday 10-09
    opening = hours.next_opening(datetime(2025, 10, 3, 10, 0, tzinfo=SH))
    assert opening == datetime(2025, 10, 9, 8, 30, tzinfo=SH)
    assert describe_opening(opening, datetime(2025, 10, 3, 10, 0, tzinfo=SH)) == "10月9日（周四）08:30"
    # Friday evening → the next working day is Saturday 10-11 (调休)
    assert hours.next_opening(datetime(2025, 10, 10, 18, 0, tzinfo=SH)) == datetime(2025, 10, 11, 8, 30, tzinfo=SH)
    assert describe_opening(datetime(2025, 10, 11, 8, 30, tzinfo=SH), datetime(2025, 10, 10, 18, 0, tzinfo=SH)) == (
        "明天 08:30"
    )
    assert WorkingHours(parse_spans("00:00-24:00"), "everyday", SH).is_open(datetime(2025, 10, 1, 23, 59, tzinfo=SH))


def test_closed_text_tells_when_people_are_back() -> None:
    config = _config(**{"handoff.working_hours.enabled": True})
    holiday = datetime(2025, 10, 2, 10, 0, tzinfo=SH)
    text = config.closed_text("综合", holiday)
    assert text is not None and "国庆节" in text and "10月9日（周四）08:30" in text and "留言" in text
    assert config.closed_text("综合", datetime(2025, 10, 11, 10, 0, tzinfo=SH)) is None  # 调休 Saturday: open
    assert _config().closed_text("综合", holiday) is None  # working hours off: always open
