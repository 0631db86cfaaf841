"""QA scoring throughput: items per second for 50-message transcripts against the default rules
plus a 10,000-word 服务禁语 list (one Aho-Corasick automaton), measured two ways:

  rules:  in memory: evaluate every rule, score the sheet, build the search terms (one core);
  stored: the real scorer (`qa.scorer.Scorer.sweep`) over conversations stored in a scratch
          SQLite database (or `--database-url`): load the transcript, score, insert item and task.

Prints one JSON object.  python -m bench.qa_scoring [--items 2000] [--stored 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from core.db import make_engine, make_sessionmaker
from core.migrate import upgrade
from qa.defaults import DEFAULT_RULES, DEFAULT_SHEET
from qa.rules import CompiledRules, clean_rules
from qa.sampling import Plan
from qa.scorer import build_item
from qa.versions import Versions

ALPHABET = "的一是不了人我在有他这为之大来以个中上们到说时国和地要就出也得里后自会办理社保医公积金户籍居住证"
CITIZEN = ["我想问一下{t}怎么办理", "{t}需要带什么材料", "请问{t}在哪里办", "{t}多久能办好", "为什么我的{t}还没下来"]
AGENT = ["您好，{t}需要携带身份证到服务大厅办理", "{t}一般需要三个工作日", "您可以在网上办理{t}",
         "请稍等，我帮您查询{t}"]
TOPICS = ["社保卡补办", "公积金提取", "居住证签注", "户口迁移", "营业执照", "医保报销", "不动产登记", "新生儿落户"]


def word_list(size: int, seed: int = 7) -> list[str]:
    chooser = random.Random(seed)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(chooser.choice(ALPHABET) for _ in range(chooser.randint(3, 5))))
    return sorted(words)


def rules_with(words: list[str]) -> list[dict[str, Any]]:
    rules = [dict(r) for r in DEFAULT_RULES]
    forbidden = next(r for r in rules if r["id"] == "forbidden")
    forbidden["words"] = [*forbidden["words"], *words]
    return clean_rules(rules)


def script(chooser: random.Random, messages: int, agent_id: int = 1) -> Any:
    from tests.qa.crafted import Script, served

    topic = chooser.choice(TOPICS)
    lines = [(0, "citizen", "转人工")]
    for index in range(1, messages):
        who = "agent" if index % 2 else "citizen"
        text = chooser.choice(AGENT if who == "agent" else CITIZEN).format(t=topic)
        lines.append((10 + index * 15, who, text))
    closed = 10 + messages * 15 + 30
    return Script(lines=lines, events=served(agent_id, closed=closed), closed_at=closed)


def bench_rules(items: int, messages: int, words: list[str]) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from tests.qa.crafted import transcript

    started = time.perf_counter()
    compiled = CompiledRules(1, rules_with(words))
    build_seconds = time.perf_counter() - started
    chooser = random.Random(1)
    transcripts = [transcript(script(chooser, messages)) for _ in range(items)]
    zone = ZoneInfo("Asia/Shanghai")
    started = time.perf_counter()
    hits = 0
    for t in transcripts:
        item = build_item(t, compiled, 1, DEFAULT_SHEET["items"], DEFAULT_SHEET["pass_mark"], zone)
        hits += len(item.hits)
    seconds = time.perf_counter() - started
    return {"items": items, "messages_per_item": messages, "words": compiled.matcher.size,
            "automaton_build_seconds": round(build_seconds, 3), "items_per_second": round(items / seconds, 1),
            "hits": hits}


async def bench_stored(database_url: str, items: int, messages: int, words: list[str]) -> dict[str, Any]:
    from datetime import timedelta

    from sqlalchemy import update

    from core.models import Conversation, User
    from core.models.base import utcnow
    from qa.scorer import Scorer
    from tests.qa.crafted import store

    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    try:
        versions = Versions(sessions)
        await versions.save_rules(rules_with(words), "bench")
        chooser = random.Random(2)
        async with sessions() as session:
            agent = User(username="bench_agent", display_name="坐席", password_hash="x", role="agent")
            session.add(agent)
            await session.flush()
            for _ in range(items):
                await store(session, script(chooser, messages, agent.id))
            await session.execute(update(Conversation).values(closed_at=utcnow() - timedelta(seconds=60)))
            await session.commit()
        scorer = Scorer(sessions, versions, Plan(), batch=200)
        started = time.perf_counter()
        made = await scorer.sweep()
        seconds = time.perf_counter() - started
        return {"items": made, "messages_per_item": messages, "database": database_url.split(":", 1)[0],
                "items_per_second": round(made / seconds, 1)}
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--stored", type=int, default=500)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--words", type=int, default=10_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    words = word_list(args.words)
    result: dict[str, Any] = {"bench": "qa_scoring", "load_average_1m": os.getloadavg()[0]}
    result["rules"] = bench_rules(args.items, args.messages, words)
    if args.stored:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
            upgrade(url)
            result["stored"] = asyncio.run(bench_stored(url, args.stored, args.messages, words))
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
