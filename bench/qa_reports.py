"""QA and service report queries over `--items` scored items (default 100,000, 90 days, 40 agents) on
PostgreSQL: every period (day/week/month) × grouping (none/agent/group) for the last 30 and 90 days,
each run `--runs` times; p50/p99 per report kind (target p99 ≤ 300 ms). A scratch database is built
and dropped unless `--database-url` names one built by bench.qa_dataset. Prints one JSON object.

    python -m bench.qa_reports [--items 100000] [--runs 10] [--database-url URL]
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

from bench.qa_dataset import Dataset, percentiles
from core.db import make_engine, make_sessionmaker
from core.models.qa import QaItem
from qa.reports import qa_report, service_report


async def measure(url: str, runs: int) -> dict[str, Any]:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    timings: dict[str, list[float]] = {"qa": [], "service": []}
    today = date.today()
    try:
        async with sessions() as session:  # warm the pool and the plan cache
            await qa_report(session, None, None)
            items = (await session.execute(select(func.count(QaItem.id)))).scalar_one()
        for _ in range(runs):
            for days in (30, 90):
                first = (today - timedelta(days=days - 1)).isoformat()
                for period in ("day", "week", "month"):
                    for by in ("none", "agent", "group"):
                        for kind, report in (("qa", qa_report), ("service", service_report)):
                            async with sessions() as session:
                                started = time.perf_counter()
                                data = await report(session, first, today.isoformat(), period, by)
                                timings[kind].append(time.perf_counter() - started)
                                assert data["from"] == first
    finally:
        await engine.dispose()
    return {"items": items, **{kind: percentiles(samples) for kind, samples in timings.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with Dataset(args.database_url, args.items, args.messages) as url:
        result = {"bench": "qa_reports", "load_average_1m": os.getloadavg()[0],
                  **asyncio.run(measure(url, args.runs)), "target_p99_ms": 300}
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
