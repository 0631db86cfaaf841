"""WeChat push → HTTP response time at a fixed push rate (loopback only).

Starts hub worker(s) on free ports (SQLite scratch database, the configured Redis, a
unique key prefix) with the WeChat channel enabled against the in-process fake WeChat API
and a fake Rasa (`tests/channels/wechat_fake.py`), then pushes signed (and, in safe mode,
encrypted) text messages open-loop at `--rate` per second for `--seconds`, each from one
of `--citizens` openids, and prints one JSON object: p50/p99/max of the response time
(measured from each push's scheduled moment, so queueing is counted), how many were
answered passively vs `success`, the status codes, and the hub workers' CPU time per push
(`hub_cpu_ms_per_push`, from /proc: steadier than latency on a machine that others share,
though on a shared VM it too varies by a third between runs: compare variants run by turns).
The rest of the bench's CPU is counted apart (`cpu_ms_per_push`: the load generator, i.e. this
process with the fake WeChat API; the fake Rasa; the Redis server when it runs here), and so are
the cores busy with other work during the run (`other_busy_cores`), which is what makes the
latency of one run differ from the next. Every push is built before the clock starts (signed and
encrypted by wechatpy, the whole HTTP request as bytes), so the schedule holds on a busy machine.
The fake Rasa is an asyncio server in a process of its own. Every citizen writes once before the
clock starts (their conversation is open, as for nearly every real push); `--cold` measures citizens who
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

import uvloop

from core.config import PROJECT_ROOT
from core.migrate import upgrade
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

# The fake Rasa answers every push: an asyncio server (uvloop) in a process of its own, so that it
# neither takes the GIL from the load driver (which would show up as the hub's latency) nor spends
# the shared cores on a thread per connection.
RASA_PROCESS = """
import asyncio, sys
import uvloop
from tests.channels.wechat_fake import serve_lean_rasa

async def main():
    server = await serve_lean_rasa(delay_seconds=float(sys.argv[1]))
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

uvloop.run(main())
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


def machine_busy_seconds() -> float:
    """CPU time every process on the machine has used (all cores, /proc/stat), to tell how much
    of the shared cores went to something other than this bench."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def redis_server_pid(url: str) -> int | None:
    """The Redis server's pid when it runs on this machine (its CPU is counted separately)."""
    import urllib.parse

    import redis

    if urllib.parse.urlparse(url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    client = redis.Redis.from_url(url)
    try:
        pid = int(client.info("server")["process_id"])
    except Exception:
        return None
    finally:
        client.close()
    return pid if Path(f"/proc/{pid}/stat").exists() else None


class CpuMeter:
    """CPU seconds of named processes (and this one, the load generator) between start and stop."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        figures = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.pids.items()}
        figures["load_generator"] = time.process_time()
        figures["machine"] = machine_busy_seconds()
        return figures

    def start(self) -> None:
        self._start = self._read()

    def stop(self) -> dict[str, float]:
        return {name: value - self._start[name] for name, value in self._read().items()}


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
    urls: list[str], mode: str, rate: float, seconds: float, citizens: int, meter: CpuMeter, cold: bool = False
) -> dict[str, object]:
    platform = Platform()
    users = [openid() for _ in range(citizens)]
    total = min(MAX_PUSHES, int(rate * seconds))
    # build every request up front (signed and, in safe mode, encrypted by wechatpy; the whole
    # HTTP request as bytes) so that neither the crypto nor the client disturbs the schedule
    clients = [RawHttp(url) for url in urls]
    requests = []
    for index in range(total):
        xml = message_xml("text", users[index % citizens], msg_id=next_msg_id(), Content=f"测试消息 {index}")
        requests.append(clients[index % len(urls)].request("/wechat", *platform.push(xml, mode)))
    pools: dict[str, list[RawHttp]] = {url: [] for url in urls}
    latencies: list[float] = []
    service: list[float] = []
    statuses: dict[int, int] = {}
    passive = 0

    async def one(index: int, due: float) -> None:
        nonlocal passive
        url = urls[index % len(urls)]
        connection = pools[url].pop() if pools[url] else RawHttp(url)
        sent = time.perf_counter()
        try:
            status, reply = await connection.send(requests[index])
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
    meter.start()
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
    cpu = meter.stop()
    for connections in pools.values():
        for connection in connections:
            await connection.close()
    ours = sum(value for name, value in cpu.items() if name != "machine")
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
        "hub_cpu_ms_per_push": round(cpu["hub"] / total * 1000, 2),
        # the rest of the bench's CPU, counted apart from the hub's (ms per push)
        "cpu_ms_per_push": {
            name: round(value / total * 1000, 2) for name, value in cpu.items() if name not in ("hub", "machine")
        },
        # cores busy during the run: everything, and what was not this bench (other work on the machine)
        "machine_busy_cores": round(cpu["machine"] / (elapsed + 0.5), 2),
        "other_busy_cores": round(max(0.0, cpu["machine"] - ours) / (elapsed + 0.5), 2),
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
        processes = {"hub": [hub.pid for hub in hubs], "fake_rasa": [rasa.pid]}
        redis_pid = redis_server_pid(TEST_REDIS_URL)
        if redis_pid is not None:
            processes["redis"] = [redis_pid]
        meter = CpuMeter(processes)
        figures = uvloop.run(drive(urls, args.mode, args.rate, args.seconds, args.citizens, meter, args.cold))
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
