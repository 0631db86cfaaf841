"""The rule set and score sheet a new deployment starts with (version 1); the page edits them."""

from __future__ import annotations

from typing import Any

DEFAULT_RULES: list[dict[str, Any]] = [
    {"id": "forbidden", "name": "服务禁语", "kind": "words", "who": "agent", "deduct": 10,
     "words": ["不知道", "不归我管", "你自己看", "我也没办法", "爱办不办", "听不懂吗", "找别人去", "烦不烦"]},
    {"id": "citizen_anger", "name": "市民不满/投诉", "kind": "words", "who": "citizen", "deduct": 0,
     "complaint": True, "words": ["投诉", "太差劲", "气死我了", "态度恶劣", "不负责任", "打12345", "曝光"]},
    {"id": "greeting", "name": "首句问候", "kind": "required_phrase", "where": "first_agent_reply",
     "deduct": 5, "phrases": ["您好", "你好"]},
    {"id": "closing", "name": "结束语", "kind": "required_phrase", "where": "last_agent_reply", "deduct": 5,
     "phrases": ["感谢", "还有其他", "再见", "祝您"]},
    {"id": "first_response", "name": "首次响应超时", "kind": "first_response", "max_seconds": 60, "deduct": 5},
    {"id": "gap", "name": "回复间隔超时", "kind": "gap", "max_seconds": 120, "deduct": 3},
    {"id": "transfers", "name": "转接过多", "kind": "transfers", "max": 2, "deduct": 5},
    {"id": "low_csat", "name": "满意度低", "kind": "low_csat", "max_score": 2, "deduct": 10},
    {"id": "ticket_promised", "name": "承诺工单未创建", "kind": "ticket_promised", "deduct": 10,
     "phrases": ["给您登记工单", "为您提交工单", "帮您建工单", "创建工单", "登记一下工单"]},
    {"id": "silence", "name": "通话静默", "kind": "silence", "max_seconds": 15, "deduct": 3},
    {"id": "talk_over", "name": "通话抢话", "kind": "talk_over", "min_seconds": 1.5, "deduct": 2},
]

DEFAULT_SHEET: dict[str, Any] = {
    "name": "标准服务评分表",
    "pass_mark": 80,
    "items": [
        {"key": "language", "name": "服务用语", "weight": 30, "kind": "auto",
         "rules": ["forbidden", "greeting", "closing"]},
        {"key": "timeliness", "name": "响应及时", "weight": 20, "kind": "auto", "rules": ["first_response", "gap"]},
        {"key": "handling", "name": "处理规范", "weight": 20, "kind": "auto",
         "rules": ["transfers", "ticket_promised", "low_csat", "silence", "talk_over"]},
        {"key": "accuracy", "name": "解答准确", "weight": 20, "kind": "manual", "rules": []},
        {"key": "attitude", "name": "服务态度", "weight": 10, "kind": "manual", "rules": []},
    ],
}
