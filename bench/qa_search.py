"""Transcript search over `--items` × `--messages` messages (default 100,000 × 10 = 1,000,000) on
PostgreSQL, through `qa.search.search` (GIN index on the items' bigram terms): common topics, a
rare phrase (1 item in 1,000), text with an agent, a channel, a date range or a score filter; p50/p99
(target p99 ≤ 300 ms). Scratch database unless `--database-url`. Prints one JSON object.

    python -m bench.qa_search [--items 100000] [--runs 20] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from bench.qa_dataset import RARE, TOPICS, Dataset, percentiles
from core.db import make_engine, make_sessionmaker
from core.models import Message, User
from qa.search import Query, search


async def measure(url: str, runs: int) -> dict[str, Any]:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    today = date.today()
    try:
        async with sessions() as session:
            messages = (await session.execute(select(func.count(Message.id)))).scalar_one()
            agent = (await session.execute(select(User.id).where(User.username == "bench7"))).scalar_one()
        queries = {
            "topic": [Query(text=t) for t in TOPICS],
            "rare_phrase": [Query(text=RARE)],
            "topic_and_agent": [Query(text=t, agent_id=agent) for t in TOPICS[:4]],
            "topic_channel_week": [Query(text=t, channel="wechat", day_from=(today - timedelta(days=7)).isoformat())
                                   for t in TOPICS[:4]],
            "low_scores": [Query(score_max=65)],
        }
        timings: dict[str, list[float]] = {name: [] for name in queries}
        found: dict[str, int] = {}
        for _ in range(runs):
            for name, group in queries.items():
                for query in group:
                    async with sessions() as session:
                        started = time.perf_counter()
                        rows = await search(session, query, masked=True)
                        timings[name].append(time.perf_counter() - started)
                        found[name] = len(rows)
        every = [t for samples in timings.values() for t in samples]
        return {"messages": messages, "all": percentiles(every),
                **{name: {**percentiles(samples), "results": found[name]} for name, samples in timings.items()}}
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with Dataset(args.database_url, args.items, args.messages) as url:
        result = {"bench": "qa_search", "load_average_1m": os.getloadavg()[0],
                  **asyncio.run(measure(url, args.runs)), "target_p99_ms": 300}
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
