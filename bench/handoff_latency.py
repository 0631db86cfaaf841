"""Handoff latency under a steady load, as issue #4 states it: two hub workers, `--conversations`
citizens connected on the web chat (500), `--agents` agents online (50, capacity enough for
every handoff), auto-assignment on. Handoffs arrive open-loop at `--rate` per second (each
at its scheduled moment, whether or not the earlier ones are done); each assigned agent
answers `--reply-after` seconds later. Measured:

  handoff: the citizen's `human` frame sent → the `assigned` frame (the screen-pop) on the
           socket of the agent it went to (target p99 ≤ 100 ms);
  reply:   the agent's `reply` frame sent → that message frame on the citizen's socket
           (target p99 ≤ 20 ms).

Every socket has its own reader that stamps frames as they arrive. Also printed: the CPU the
two workers and this client (500 sockets and 50 agents in one process, on the same cores) spent
while measuring, per handoff and as a share of one core, and the 1-minute load average at the
start (anything else running on the machine shows in the wall-clock figures). `--burst` is the stress
figure instead: all handoffs at once (default 200 citizens, 20 agents), the exactly-once
scenario of tests/handoff/test_two_workers.py. Scratch SQLite database unless
`--database-url`; the configured Redis under a fresh key prefix (removed at the end).
Prints one JSON object.

    python -m bench.handoff_latency [--rate 15] [--handoffs 300] [--conversations 500] [--agents 50]
    python -m bench.handoff_latency --burst [--handoffs 200] [--agents 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from core.config import load_settings
from core.db import make_engine, make_sessionmaker
from core.migrate import upgrade
from core.models import User
from hub.auth import hash_password
from tests.support import AgentClient, ChatClient, start_hubs, unique_prefix

CONNECT_AT_ONCE = 50  # citizen sockets opened together while setting up
LOGIN_AT_ONCE = 5  # agents logging in together (a password check is slow on purpose)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0.0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return ordered[index]


def summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 0.5), 1),
        "p99_ms": round(percentile(values, 0.99), 1),
        "max_ms": round(max(values), 1),
    }


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


async def in_batches(items: Iterable[Any], opener: Any, size: int) -> None:
    items = list(items)
    for start in range(0, len(items), size):
        await asyncio.gather(*(opener(item) for item in items[start : start + size]))


class Measure:
    """Frames stamped on arrival by one reader per socket; the agents' replies sent from here."""

    def __init__(self, handoffs: int, reply_after: float) -> None:
        self.handoffs = handoffs
        self.reply_after = reply_after
        self.human_sent: dict[str, float] = {}
        self.assigned_at: dict[str, float] = {}
        self.reply_sent: dict[str, float] = {}
        self.reply_seen: dict[str, float] = {}
        self.schedule_lag: list[float] = []
        self.replies: set[asyncio.Task[None]] = set()
        self.done = asyncio.Event()

    async def read_agent(self, agent: AgentClient) -> None:
        async for raw in agent._ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            if frame.get("type") != "assigned" or frame.get("transition") != "assign":
                continue
            conversation_id = frame["conversation_id"]
            if conversation_id in self.human_sent and conversation_id not in self.assigned_at:
                self.assigned_at[conversation_id] = now
                task = asyncio.create_task(self.reply(agent, conversation_id))
                self.replies.add(task)
                task.add_done_callback(self.replies.discard)

    async def reply(self, agent: AgentClient, conversation_id: str) -> None:
        await asyncio.sleep(self.reply_after)
        text = f"bench-{conversation_id}"
        self.reply_sent[conversation_id] = time.perf_counter()
        await agent.send(
            {"type": "reply", "conversation_id": conversation_id, "text": text, "client_id": uuid.uuid4().hex}
        )

    async def read_citizen(self, citizen: ChatClient) -> None:
        expected = f"bench-{citizen.conversation_id}"
        async for raw in citizen._ws:
            now = time.perf_counter()
            frame = json.loads(raw)
            message = frame.get("message") if frame.get("type") == "message" else None
            if message and message.get("sender") == "agent" and message.get("text") == expected:
                self.reply_seen.setdefault(citizen.conversation_id, now)
                if len(self.reply_seen) >= self.handoffs:
                    self.done.set()

    async def press(self, citizen: ChatClient, moment: float) -> None:
        await asyncio.sleep(max(0.0, moment - time.perf_counter()))
        sent = time.perf_counter()
        self.schedule_lag.append((sent - moment) * 1000)
        self.human_sent[citizen.conversation_id] = sent
        await citizen.send_frame({"type": "human"})

    def latencies(self, start: dict[str, float], end: dict[str, float]) -> list[float]:
        return [(end[c] - start[c]) * 1000 for c in start if c in end]


async def run(args: argparse.Namespace, tmp: Path, database_url: str) -> dict[str, Any]:
    await seed_agents(database_url, args.agents)
    capacity = max(5, math.ceil(args.handoffs / args.agents) + 1)  # nobody waits for a free agent
    redis_url = load_settings().redis_url
    prefix = unique_prefix()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "RASA_URL": "http://127.0.0.1:9",
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": prefix,
    }
    config = {"handoff": {"auto_assign": True, "agent_capacity": capacity}}
    hubs = start_hubs(env, 2, tmp, config=config)
    measure = Measure(args.handoffs, args.reply_after)
    readers: list[asyncio.Task[None]] = []
    agents = [AgentClient(hubs.urls[n % 2], f"b{n:03d}", "pass") for n in range(1, args.agents + 1)]
    citizens = [ChatClient(hubs.urls[n % 2]) for n in range(args.conversations)]
    try:
        await in_batches(agents, lambda a: a.__aenter__(), LOGIN_AT_ONCE)
        await asyncio.gather(*(a.next_frame("presence") for a in agents))
        await in_batches(citizens, lambda c: c.__aenter__(), CONNECT_AT_ONCE)
        await asyncio.sleep(1.0)  # the welcome's trailing state frames
        readers = [asyncio.create_task(measure.read_agent(a)) for a in agents]
        readers += [asyncio.create_task(measure.read_citizen(c)) for c in citizens]
        print("hub worker pids:", *(p.pid for p in hubs.processes), file=sys.stderr, flush=True)
        load_before = load_average()
        hub_cpu = [process_cpu_seconds(p.pid) for p in hubs.processes]
        own_cpu = time.process_time()
        start = time.perf_counter() + 0.5
        # spread over both workers: every other citizen is on the other one
        pressing = citizens[: args.handoffs]
        gap = 0.0 if args.burst else 1.0 / args.rate
        await asyncio.gather(*(measure.press(c, start + i * gap) for i, c in enumerate(pressing)))
        try:
            await asyncio.wait_for(measure.done.wait(), args.timeout)
        except TimeoutError:
            pass
        elapsed = time.perf_counter() - start
        hub_cpu = [process_cpu_seconds(p.pid) - before for p, before in zip(hubs.processes, hub_cpu, strict=True)]
        own_cpu = time.process_time() - own_cpu
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for client in [*citizens, *agents]:
            if client._ws is not None:
                try:
                    await client.__aexit__(None, None, None)
                except Exception:
                    pass
        hubs.stop()
        client = aioredis.from_url(redis_url, decode_responses=True)
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()
    handoff = measure.latencies(measure.human_sent, measure.assigned_at)
    reply = measure.latencies(measure.reply_sent, measure.reply_seen)
    return {
        "bench": "handoff_latency",
        "mode": "burst" if args.burst else "steady",
        "workers": 2,
        "agents": args.agents,
        "capacity": capacity,
        "concurrent_conversations": args.conversations,
        "handoffs": args.handoffs,
        "rate_per_second": None if args.burst else args.rate,
        "handoff_to_screen_pop": {"what": "human frame sent → assigned frame on the agent socket", **summary(handoff)},
        "agent_reply_to_citizen": {"what": "agent reply frame sent → message on the citizen socket", **summary(reply)},
        "targets_ms": {"handoff_p99": 100, "reply_p99": 20},
        "schedule_lag_p99_ms": round(percentile(measure.schedule_lag, 0.99), 1) if measure.schedule_lag else None,
        "elapsed_seconds": round(elapsed, 1),
        # CPU while measuring (the bench client shares the machine's cores with the workers)
        "hub_cpu_ms_per_handoff": round(sum(hub_cpu) * 1000 / args.handoffs, 2),
        "hub_cpu_share": round(sum(hub_cpu) / elapsed, 2),
        "client_cpu_ms_per_handoff": round(own_cpu * 1000 / args.handoffs, 2),
        "client_cpu_share": round(own_cpu / elapsed, 2),
        "load_average_1m": load_before,
        "database": database_url.split(":", 1)[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=15.0, help="handoffs per second (steady mode)")
    parser.add_argument("--handoffs", type=int, help="how many citizens press 转人工 (300; burst 200)")
    parser.add_argument("--conversations", type=int, help="citizens connected (500; burst: --handoffs)")
    parser.add_argument("--agents", type=int, help="agents online (50; burst 20)")
    parser.add_argument("--reply-after", type=float, default=0.5, help="seconds before the agent answers")
    parser.add_argument("--burst", action="store_true", help="every handoff at the same moment (stress figure)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    args.handoffs = args.handoffs or (200 if args.burst else 300)
    args.conversations = max(args.handoffs, args.conversations or (args.handoffs if args.burst else 500))
    args.agents = args.agents or (20 if args.burst else 50)
    tmp = Path(tempfile.mkdtemp(prefix="zwkf-handoff-bench-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'core.db'}"
    upgrade(database_url)  # synchronous (Alembic runs its own loop)
    print(json.dumps(asyncio.run(run(args, tmp, database_url)), ensure_ascii=False))


if __name__ == "__main__":
    main()
