"""Handoff latency: a citizen's 转人工 → the screen-pop (`assigned` frame) on the agent's socket.

Starts two hub workers on free ports (scratch SQLite database, or `--database-url`; the
configured Redis under a fresh key prefix) with auto-assignment on, connects `--agents`
agents (half on each worker), then `--conversations` citizens press 转人工 at once, spread
over both workers. Each conversation's latency runs from its `human` frame being sent to
its `assigned` frame arriving on whichever agent socket it was assigned to. Capacity is
raised so that every conversation can be assigned. Prints one JSON object.

    python -m bench.handoff_latency [--conversations 200] [--agents 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis
import yaml

from hub.auth import hash_password
from hub.config import DEFAULT_CONFIG_PATH, load_settings
from hub.db import make_engine, make_sessionmaker
from hub.migrate import upgrade
from hub.models import User
from tests.support import AgentClient, ChatClient, free_port, start_hub, stop_process, unique_prefix


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


async def seed_agents(database_url: str, count: int) -> None:
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        password = hash_password("pass")
        async with sessions() as session, session.begin():
            for number in range(1, count + 1):
                session.add(
                    User(username=f"b{number:03d}", display_name=f"坐席{number}", password_hash=password, role="agent")
                )
    finally:
        await engine.dispose()


async def one_round(urls: list[str], agents: list[AgentClient], conversations: int) -> list[float]:
    citizens = [ChatClient(urls[n % 2]) for n in range(conversations)]
    await asyncio.gather(*(c.__aenter__() for c in citizens))
    sent: dict[str, float] = {}
    popped: dict[str, float] = {}
    done = asyncio.Event()

    async def watch(agent: AgentClient) -> None:
        while not done.is_set():
            try:
                frame = await agent.next_frame("assigned", 60)
            except TimeoutError:
                return
            popped.setdefault(frame["conversation_id"], time.perf_counter())
            if len(popped) >= conversations:
                done.set()

    watchers = [asyncio.create_task(watch(agent)) for agent in agents]

    async def press(citizen: ChatClient) -> None:
        sent[citizen.conversation_id] = time.perf_counter()
        await citizen.send_frame({"type": "human"})

    await asyncio.gather(*(press(c) for c in citizens))
    try:
        await asyncio.wait_for(done.wait(), 120)
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    latencies = [(popped[c] - sent[c]) * 1000 for c in sent if c in popped]
    # free the agents for the next round
    for agent in agents:
        for frame in [f for f in agent.frames if f["type"] == "assigned"]:
            await agent.send({"type": "close", "conversation_id": frame["conversation_id"], "disposition": "resolved"})
        agent.frames.clear()
    await asyncio.gather(*(c.__aexit__(None, None, None) for c in citizens))
    await asyncio.sleep(1.0)
    return latencies


async def run(args: argparse.Namespace, tmp: Path, database_url: str) -> dict:
    await seed_agents(database_url, args.agents)
    tree = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    capacity = max(5, -(-args.conversations // args.agents))
    tree["handoff"].update({"auto_assign": True, "agent_capacity": capacity})
    config = tmp / "config.yml"
    config.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    redis_url = load_settings().redis_url
    prefix = unique_prefix()
    env = {
        "ZWKF_CONFIG": str(config),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RASA_URL": "http://127.0.0.1:9",
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": prefix,
    }
    hubs = []
    try:
        ports = [free_port(), free_port()]
        for index, port in enumerate(ports):
            hubs.append(start_hub(env, port, tmp / f"hub{index}.log"))
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        agents = [AgentClient(urls[n % 2], f"b{n:03d}", "pass") for n in range(1, args.agents + 1)]
        await asyncio.gather(*(a.__aenter__() for a in agents))
        await asyncio.gather(*(a.next_frame("presence") for a in agents))
        latencies: list[float] = []
        started = time.perf_counter()
        for _ in range(args.rounds):
            latencies += await one_round(urls, agents, args.conversations)
        elapsed = time.perf_counter() - started
        await asyncio.gather(*(a.__aexit__(None, None, None) for a in agents))
    finally:
        for hub in hubs:
            stop_process(hub)
        client = aioredis.from_url(redis_url, decode_responses=True)
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()
    expected = args.rounds * args.conversations
    return {
        "bench": "handoff_latency",
        "what": "转人工 frame sent → assigned frame (screen-pop) on the agent socket, ms",
        "workers": 2,
        "agents": args.agents,
        "capacity": capacity,
        "concurrent_conversations": args.conversations,
        "rounds": args.rounds,
        "assigned": len(latencies),
        "expected": expected,
        "p50_ms": round(percentile(latencies, 0.5), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "handoffs_per_second": round(len(latencies) / elapsed, 1) if elapsed else None,
        "database": database_url.split(":", 1)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zwkf-handoff-bench-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'hub.db'}"
    upgrade(database_url)  # synchronous (Alembic runs its own loop)
    print(json.dumps(asyncio.run(run(args, tmp, database_url)), ensure_ascii=False))


if __name__ == "__main__":
    main()
