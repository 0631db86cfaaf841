"""The refusal every handoff action raises: a code for clients, a reason in Chinese."""

from __future__ import annotations


class HandoffError(ValueError):
    """A refused request, with a code for clients and a reason in Chinese."""

    REASONS = {
        "bad_field": "请求内容不完整。",
        "empty": "内容不能为空。",
        "too_long": "内容太长了。",
        "bad_status": "状态只能是 在线、忙碌 或 离开。",
        "bad_score": "评分只能是 1 到 5 分。",
        "bad_disposition": "结束原因不正确。",
        "not_yours": "该会话不在您的接待列表中。",
        "taken": "该会话已被其他坐席接入或已结束。",
        "at_capacity": "对方接待的会话已达上限。",
        "unknown_agent": "找不到该坐席。",
        "unknown_group": "找不到该技能组。",
        "agent_unavailable": "对方当前不在线或已设置为离开。",
        "not_offered": "该会话没有待评价的服务。",
        "not_found": "找不到该会话。",
    }

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
        self.reason = self.REASONS.get(code, "操作失败。")
