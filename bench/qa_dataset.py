"""A large QA dataset on PostgreSQL for the report and search benchmarks: `--items` scored QA items
(default 100,000) over 90 days, 40 agents in 4 groups, each with its conversation, a 转人工 event and
`--messages` transcript lines (default 10: 1,000,000 messages), written with COPY. Realistic Chinese
government-service text from templates; one rare phrase in 1 item of 1,000 for the search bench."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from qa.search_terms import terms

TOPICS = ["社保卡补办", "公积金提取", "居住证签注", "户口迁移", "营业执照", "医保报销", "不动产登记", "新生儿落户",
          "护照办理", "驾驶证换证", "残疾人补贴", "低保申请", "养老保险", "失业登记", "出生证明", "结婚登记"]
CITIZEN = ["我想问一下{t}怎么办理", "{t}需要带什么材料", "请问{t}在哪里办", "{t}多久能办好", "为什么我的{t}还没下来",
           "{t}可以网上办吗", "我的{t}被退回了"]
AGENT = ["您好，{t}需要携带身份证到服务大厅办理", "{t}一般需要三个工作日", "您可以在网上办理{t}",
         "请稍等，我帮您查询{t}", "{t}的材料清单已发给您", "感谢您的咨询，再见"]
RARE = "跨省通办异地备案"
ZONE = ZoneInfo("Asia/Shanghai")


def rows(items: int, messages: int, agents: list[int], citizen: int, seed: int = 3) -> Any:
    """Yield (conversation, event, item, message rows) per item."""
    chooser = random.Random(seed)
    now = datetime.now(UTC)
    for index in range(items):
        conversation_id = str(uuid.UUID(int=chooser.getrandbits(128)))
        start = now - timedelta(days=chooser.random() * 90 + 1)
        agent = chooser.choice(agents)
        group = ["综合", "社保", "户籍", "公积金"][agent % 4]
        topic = chooser.choice(TOPICS)
        lines = []
        for n in range(messages):
            who = "agent" if n % 2 else "citizen"
            text = chooser.choice(AGENT if who == "agent" else CITIZEN).format(t=topic)
            if who == "citizen" and n == 2 and index % 1000 == 7:
                text += "，" + RARE
            lines.append((conversation_id, "web", who, "张敏" if who == "agent" else "市民", text, "{}",
                          start + timedelta(seconds=20 * n + 10)))
        closed = start + timedelta(seconds=20 * messages + 30)
        wait = chooser.uniform(3, 120)
        first = chooser.uniform(5, 90)
        score = float(chooser.choice([100, 95, 90, 85, 80, 75, 70, 60]))
        csat = chooser.choice([None, None, 5, 5, 4, 3, 2, 1])
        text = " ".join(line[4] for line in lines)
        conversation = (conversation_id, citizen, chooser.choice(["web", "web", "wechat", "telegram"]), "v", "closed",
                        "bot", None, group, "resolved", start, closed)
        reason = chooser.choice(["button", "keyword", "fallback", "anger"])
        event = (conversation_id, "request_human", "bot", "queued", "citizen", json.dumps({"reason": reason}), start)
        item = (conversation_id, conversation[2], citizen, agent, "[]", group, start, closed,
                closed.astimezone(ZONE).strftime("%Y-%m-%d"), start.astimezone(ZONE).hour, True, reason, wait, first,
                float(20 * messages), 40.0, chooser.choice([0, 0, 0, 1, 3]), "resolved", csat, "[]", messages, "[]",
                "[]", chooser.choice([0, 0, 1, 2]), False, 1, 1, score, score, score >= 80, "scored",
                " ".join(terms(text)), closed)
        yield conversation, event, item, lines


ITEM_COLUMNS = [
    "conversation_id", "channel", "citizen_id", "agent_id", "agent_ids", "group", "started_at", "closed_at", "day",
    "hour", "handed_off", "handoff_reason", "wait_seconds", "first_response_seconds", "handle_seconds",
    "longest_gap_seconds", "transfers", "disposition", "csat", "ticket_ids", "message_count", "segments", "hits",
    "hit_count", "complaint", "ruleset_version", "sheet_version", "auto_score", "score", "passed", "status",
    "search_text", "created_at",
]


async def build(url: str, items: int, messages: int, progress: Any = print) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        agents = []
        for n in range(40):
            agents.append(await conn.fetchval(
                "INSERT INTO users (username, display_name, password_hash, role, created_at) "
                "VALUES ($1, $2, 'x', 'agent', now()) RETURNING id", f"bench{n}", f"坐席{n:02d}"))
        citizen = await conn.fetchval("INSERT INTO citizens (name, tags, notes, created_at, address, vip, flagged) "
                                      "VALUES ('市民', '[]', '', now(), '', false, false) RETURNING id")
        chunk: dict[str, list] = {"c": [], "e": [], "i": [], "m": []}

        async def flush() -> None:
            await conn.copy_records_to_table("conversations", records=chunk["c"], columns=[
                "id", "citizen_id", "channel", "channel_user_id", "status", "owner", "agent_id", "group",
                "disposition", "started_at", "closed_at"])
            await conn.copy_records_to_table("conversation_events", records=chunk["e"], columns=[
                "conversation_id", "kind", "from_state", "to_state", "actor", "data", "created_at"])
            await conn.copy_records_to_table("qa_items", records=chunk["i"], columns=ITEM_COLUMNS)
            await conn.copy_records_to_table("messages", records=chunk["m"], columns=[
                "conversation_id", "channel", "sender", "sender_name", "text", "meta", "created_at"])
            for rows_ in chunk.values():
                rows_.clear()

        for index, (conversation, event, item, lines) in enumerate(rows(items, messages, agents, citizen), start=1):
            chunk["c"].append(conversation)
            chunk["e"].append(event)
            chunk["i"].append(item)
            chunk["m"].extend(lines)
            if index % 5000 == 0:
                await flush()
                progress(f"[qa_dataset] {index}/{items} items")
        await flush()
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


if __name__ == "__main__":
    import sys

    asyncio.run(build(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)

    return {"p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": round(ordered[-1] * 1000, 1), "runs": len(ordered)}


class Dataset:
    """A scratch PostgreSQL database with the dataset (dropped afterwards), or `existing` as it is."""

    def __init__(self, existing: str | None, items: int, messages: int) -> None:
        self.existing, self.items, self.messages = existing, items, messages
        self.url = existing or ""

    def __enter__(self) -> str:
        import sys

        from core.migrate import upgrade
        from tests.support import create_postgres_database

        if self.existing:
            return self.existing
        url, why = create_postgres_database()
        if url is None:
            raise SystemExit(why)
        self.url = url
        upgrade(url)
        asyncio.run(build(url, self.items, self.messages, progress=lambda line: print(line, file=sys.stderr)))
        return url

    def __exit__(self, *exc: object) -> None:
        from tests.support import drop_postgres_database

        if not self.existing:
            drop_postgres_database(self.url)
