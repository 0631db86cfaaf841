"""WeChat push → HTTP response time at a fixed push rate (loopback only).

Starts hub worker(s) on free ports (SQLite scratch database, the configured Redis, a
unique key prefix) with the WeChat channel enabled against the in-process fake WeChat API
and a fake Rasa (`tests/channels/wechat_fake.py`), then pushes signed (and, in safe mode,
encrypted) text messages open-loop at `--rate` per second for `--seconds`, each from one
of `--citizens` openids, and prints one JSON object: p50/p99/max of the response time
(measured from each push's scheduled moment, so queueing is counted), how many were
answered passively vs `success`, the status codes, and the hub workers' CPU time per push
(`hub_cpu_ms_per_push`, from /proc: steadier than latency on a machine that others share).
The fake Rasa runs in a process of its own. Every citizen writes once before the clock starts
(their conversation is open, as for nearly every real push); `--cold` measures citizens who
write for the first time during the run (a citizen's first push also creates the profile and
the conversation).

    python -m bench.wechat_push [--rate 200] [--seconds 10] [--mode safe] [--workers 1] [--bot-ms 0]
                                [--citizens 200] [--cold] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from hub.config import PROJECT_ROOT
from hub.migrate import upgrade
from tests.channels.wechat_fake import (
    AES_KEY,
    APP_ID,
    APP_SECRET,
    TOKEN,
    FakeWeChat,
    Platform,
    RawHttp,
    message_xml,
    next_msg_id,
    openid,
)
from tests.support import (
    TEST_REDIS_URL,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    start_hub,
    stop_process,
)

MAX_PUSHES = 20_000  # bounded whatever the arguments say
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The fake Rasa answers every push: it runs in its own process so that its threads do not take
# the GIL from the load driver (which would show up as the hub's latency).
RASA_PROCESS = """
import sys, time
from tests.fake_http import FakeRasa
rasa = FakeRasa(delay_seconds=float(sys.argv[1])).start()
print(rasa.url, flush=True)
sys.stdin.read()
"""


def start_fake_rasa(delay_seconds: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", RASA_PROCESS, str(delay_seconds)], cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc): the hub's cost per push is
    this over the pushes, a figure that a busy machine disturbs far less than latency."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


async def known_citizens(urls: list[str], platform: Platform, mode: str, users: list[str]) -> None:
    """One first message from every citizen before the clock starts (10 at a time), so that the
    run measures citizens whose conversation is open, as nearly every push is; `--cold` skips it."""
    gate = asyncio.Semaphore(10)

    async def first(index: int, user: str) -> None:
        async with gate:
            connection = RawHttp(urls[index % len(urls)])
            try:
                await connection.post("/wechat", *platform.push(message_xml("text", user, Content="您好"), mode))
            finally:
                await connection.close()

    await asyncio.gather(*(first(index, user) for index, user in enumerate(users)))


async def drive(
    urls: list[str], mode: str, rate: float, seconds: float, citizens: int, pids: list[int], cold: bool = False
) -> dict[str, object]:
    platform = Platform()
    users = [openid() for _ in range(citizens)]
    total = min(MAX_PUSHES, int(rate * seconds))
    # build every request up front so that signing and AES do not disturb the schedule
    requests = []
    for index in range(total):
        xml = message_xml("text", users[index % citizens], msg_id=next_msg_id(), Content=f"测试消息 {index}")
        requests.append(platform.push(xml, mode))
    pools: dict[str, list[RawHttp]] = {url: [] for url in urls}
    latencies: list[float] = []
    service: list[float] = []
    statuses: dict[int, int] = {}
    passive = 0

    async def one(index: int, due: float) -> None:
        nonlocal passive
        url = urls[index % len(urls)]
        connection = pools[url].pop() if pools[url] else RawHttp(url)
        query, body = requests[index]
        sent = time.perf_counter()
        try:
            status, reply = await connection.post("/wechat", query, body)
        except Exception:
            status, reply = 599, b""
        done = time.perf_counter()
        pools[url].append(connection)
        latencies.append((done - due) * 1000)
        service.append((done - sent) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 200 and reply != b"success":
            passive += 1

    # warm-up: the first push fetches the access token and opens the database
    for url in urls:
        warm = RawHttp(url)
        await warm.post("/wechat", *platform.push(message_xml("text", openid(), Content="预热"), mode))
        await warm.close()
    if not cold:
        await known_citizens(urls, platform, mode, users)

    tasks = []
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    start = time.perf_counter() + 0.1
    for index in range(total):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    await asyncio.sleep(0.5)  # API sends of the last pushes
    hub_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    for connections in pools.values():
        for connection in connections:
            await connection.close()
    return {
        "pushes": total,
        "target_rate_per_s": rate,
        "achieved_rate_per_s": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
        "service_p50_ms": round(statistics.median(service), 2),
        "service_p99_ms": round(percentile(service, 0.99), 2),
        "passive_replies": passive,
        "hub_cpu_ms_per_push": round(hub_cpu / total * 1000, 2),
        "statuses": {str(code): count for code, count in sorted(statuses.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mode", choices=["plaintext", "compatible", "safe"], default="safe")
    parser.add_argument("--workers", type=int, default=1, help="hub worker processes (each its own port)")
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--cold", action="store_true", help="citizens write for the first time during the run")
    parser.add_argument("--bot-ms", type=float, default=0.0, help="the fake Rasa's delay per reply")
    parser.add_argument("--budget-ms", type=int, default=4000, help="wechat.passive_reply_budget_ms")
    parser.add_argument("--postgres", action="store_true", help="a scratch database on TEST_DATABASE_URL's server")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zwkf-bench-wechat-"))
    pg_url = None
    if args.postgres:
        pg_url, why = create_postgres_database()
        if pg_url is None:
            raise SystemExit(why)
    database_url = pg_url or f"sqlite:///{tmp / 'bench.db'}"
    upgrade(database_url)
    wechat = FakeWeChat().start()
    rasa, rasa_url = start_fake_rasa(args.bot_ms / 1000)
    prefix = f"bench{uuid.uuid4().hex[:6]}:"
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "RASA_URL": rasa_url,
        "ZWKF_STORAGE__REDIS_KEY_PREFIX": prefix,
        "ZWKF_WECHAT__ENABLED": "true",
        "ZWKF_WECHAT__MODE": args.mode,
        "ZWKF_WECHAT__APP_ID": APP_ID,
        "ZWKF_WECHAT__APP_SECRET": APP_SECRET,
        "ZWKF_WECHAT__TOKEN": TOKEN,
        "ZWKF_WECHAT__ENCODING_AES_KEY": AES_KEY,
        "ZWKF_WECHAT__API_BASE_URL": wechat.url,
        "ZWKF_WECHAT__PASSIVE_REPLY_BUDGET_MS": str(args.budget_ms),
        "ZWKF_WECHAT__FETCH_USER_INFO": "false",
    }
    hubs, urls = [], []
    log_dir = PROJECT_ROOT / "var" / "bench-logs"
    try:
        for index in range(max(1, args.workers)):
            port = free_port()
            hubs.append(start_hub(env, port, log_dir / f"wechat-hub{index}.log"))
            urls.append(f"http://127.0.0.1:{port}")
        pids = [hub.pid for hub in hubs]
        figures = asyncio.run(drive(urls, args.mode, args.rate, args.seconds, args.citizens, pids, args.cold))
    finally:
        for hub in hubs:
            stop_process(hub)
        wechat.stop()
        stop_process(rasa)  # type: ignore[arg-type]
        if pg_url:
            drop_postgres_database(pg_url)
    result = {
        "benchmark": "wechat_push_response_time",
        "mode": args.mode,
        "workers": len(urls),
        "database": "postgresql" if pg_url else "sqlite",
        "bot_ms": args.bot_ms,
        "passive_reply_budget_ms": args.budget_ms,
        "citizens": args.citizens,
        "new_citizens_during_run": args.cold,
        **figures,
        "api_messages_sent": len(wechat.sent),
        "token_fetches": wechat.token_fetches,
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
