"""Web chat latency through the hub vs. the same messages straight to Rasa's REST channel.

Starts its own Rasa server and hub on free ports (SQLite scratch database, the configured
Redis), drives `--conversations` concurrent conversations of `--messages` questions each
(the demo KB's evaluation questions), alternating hub rounds and Rasa rounds so that both
see the same machine load, and prints one JSON object: p50/p99 reply latency of each path,
their ratio, messages per second. Both paths run the same custom actions in the hub (the
KB answer), so the ratio is the hub's own overhead: persistence, state, delivery.

    python -m bench.chat_latency [--conversations 8] [--messages 10] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bot import ensure_model, start_rasa, stop_rasa, wait_ready
from core.config import PROJECT_ROOT, load_settings
from core.migrate import upgrade
from core.secrets import action_webhook_url
from hub.seed import seed
from tests.support import ChatClient, free_port, start_hub, stop_process

QUESTIONS_FILE = PROJECT_ROOT / "kb_sync" / "demo" / "queries.jsonl"


def questions() -> list[str]:
    lines = QUESTIONS_FILE.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def hub_conversation(hub_url: str, texts: list[str], out: list[float]) -> None:
    async with ChatClient(hub_url) as chat:
        for text in texts:
            started = time.perf_counter()
            await chat.ask(text)
            out.append((time.perf_counter() - started) * 1000)


async def rasa_conversation(client: httpx.AsyncClient, texts: list[str], out: list[float]) -> None:
    sender = f"bench-{uuid.uuid4().hex}"
    for text in texts:
        started = time.perf_counter()
        reply = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
        reply.raise_for_status()
        out.append((time.perf_counter() - started) * 1000)


async def drive(hub_url: str, rasa_url: str, conversations: int, messages: int, rounds: int) -> dict[str, object]:
    pool = questions()
    hub_ms: list[float] = []
    rasa_ms: list[float] = []
    hub_seconds = rasa_seconds = 0.0
    limits = httpx.Limits(max_connections=conversations * 2)
    async with httpx.AsyncClient(base_url=rasa_url, timeout=60, limits=limits) as rasa:
        # Warm both paths and the answer engine's embedding cache with every question once, so
        # neither path pays for embedding a text the other already embedded (that would bias
        # whichever runs second); then alternate which path goes first in each round.
        await hub_conversation(hub_url, pool[:2], [])
        for start in range(0, len(pool), 10):
            await rasa_conversation(rasa, pool[start : start + 10], [])
        for round_number in range(rounds):
            batches = [
                [pool[(round_number * 997 + c * messages + m) % len(pool)] for m in range(messages)]
                for c in range(conversations)
            ]
            order = ("hub", "rasa") if round_number % 2 == 0 else ("rasa", "hub")
            for path in order:
                started = time.perf_counter()
                if path == "hub":
                    await asyncio.gather(*(hub_conversation(hub_url, batch, hub_ms) for batch in batches))
                    hub_seconds += time.perf_counter() - started
                else:
                    await asyncio.gather(*(rasa_conversation(rasa, batch, rasa_ms) for batch in batches))
                    rasa_seconds += time.perf_counter() - started

    def figures(values: list[float], seconds: float) -> dict[str, float]:
        return {
            "p50_ms": round(statistics.median(values), 2),
            "p99_ms": round(percentile(values, 0.99), 2),
            "mean_ms": round(statistics.fmean(values), 2),
            "messages": len(values),
            "messages_per_second": round(len(values) / seconds, 1),
        }

    hub_figures, rasa_figures = figures(hub_ms, hub_seconds), figures(rasa_ms, rasa_seconds)
    return {
        "benchmark": "web_chat_vs_rasa_rest",
        "concurrent_conversations": conversations,
        "messages_per_conversation": messages,
        "rounds": rounds,
        "hub": hub_figures,
        "rasa_rest": rasa_figures,
        "ratio_p50": round(hub_figures["p50_ms"] / rasa_figures["p50_ms"], 3),
        "ratio_p99": round(hub_figures["p99_ms"] / rasa_figures["p99_ms"], 3),
        "target_ratio": 1.15,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zwkf-bench-"))
    database_url = f"sqlite:///{tmp / 'bench.db'}"
    prefix = f"bench{uuid.uuid4().hex[:6]}:"
    settings = load_settings().with_overrides(
        {"storage.database_url": database_url, "storage.redis_key_prefix": prefix}
    )
    upgrade(database_url)
    asyncio.run(seed(settings))
    hub_port, rasa_port = free_port(), free_port()
    rasa_url = f"http://127.0.0.1:{rasa_port}"
    os.environ["RASA_REDIS_KEY_PREFIX"] = prefix.strip(":")
    rasa = start_rasa(
        ensure_model(),
        rasa_port,
        action_webhook_url(f"http://127.0.0.1:{hub_port}", settings.secret_key),
        settings.redis_url,
        tmp / "rasa.log",
    )
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.redis_url,
        "RASA_URL": rasa_url,
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": prefix,
    }
    hub = start_hub(env, hub_port, tmp / "hub.log")
    try:
        wait_ready(rasa_url, timeout=240, proc=rasa)
        result = asyncio.run(
            drive(f"http://127.0.0.1:{hub_port}", rasa_url, args.conversations, args.messages, args.rounds)
        )
    finally:
        stop_process(hub)
        stop_rasa(rasa)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
