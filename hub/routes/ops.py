"""Operations: `/healthz`, `/readyz`, `/metrics`, request ids, JSON logs, the audit-log retention sweeper.

- `GET /healthz`: the worker is alive (no dependency is asked).
- `GET /readyz`: Redis, the database and Rasa, each with its status and time; 503 when one fails
  (a load balancer stops sending traffic to the worker).
- `GET /metrics`: Prometheus text. Everything is gathered at scrape time, nothing on a hot path:
  queue lengths and waits and agents online come from Redis; messages by channel, bot declines,
  reply latency and handoffs are counted from the database *incrementally* (a cursor in Redis
  remembers the last row counted, under a lock, so any worker may be scraped and the totals are
  shared). Served to loopback clients, or to anyone with `Authorization: Bearer <ops.metrics_token>`.
- Every response carries `X-Request-Id` (the caller's, else a new one); log lines written while
  handling it carry it as `request_id` (core/logs.py; JSON unless `ops.log_format: text`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
import socket
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sanic import Blueprint, Request, Sanic, response
from sanic.response import HTTPResponse
from sqlalchemy import func, select, text

from core import audit
from core.logs import request_id, request_id_from, use_json_logs
from core.models import ConversationEvent, Message
from hub.app import services_of

log = logging.getLogger(__name__)
CHECK_TIMEOUT = 2.0
HEARTBEAT_SECONDS = 5.0
WORKER_STALE_SECONDS = 20.0
LATENCY_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
SCAN_BATCH = 50_000
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


class OpsBlueprint(Blueprint):
    """A blueprint whose request-id middleware applies to the whole app (a plain blueprint's
    middleware only wraps its own routes)."""

    def register(self, app: Sanic, options: dict[str, Any]) -> None:
        super().register(app, options)
        app.register_middleware(_assign_request_id, "request")
        app.register_middleware(_echo_request_id, "response")


bp = OpsBlueprint("ops")


async def _assign_request_id(request: Request) -> None:
    rid = request_id_from(request.headers.get("x-request-id"))
    request.ctx.request_id = rid
    request_id.set(rid)


async def _echo_request_id(request: Request, reply: HTTPResponse) -> None:
    rid = getattr(request.ctx, "request_id", "")
    if rid and reply is not None:
        reply.headers["X-Request-Id"] = rid


# ---------------------------------------------------------------------------- health


@bp.get("/healthz")
async def healthz(_request: Request) -> HTTPResponse:
    return response.json({"status": "alive", "worker": WORKER_ID})


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
        outcome: dict[str, Any] = {"ok": True}
    except TimeoutError:
        outcome = {"ok": False, "error": f"no answer within {CHECK_TIMEOUT:g} s"}
    except Exception as error:  # any failure is "not ready", with its kind
        outcome = {"ok": False, "error": f"{type(error).__name__}: {str(error)[:200]}"}
    outcome["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return outcome


@bp.get("/readyz")
async def readyz(request: Request) -> HTTPResponse:
    services = services_of(request)

    async def database() -> None:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    names = ("redis", "database", "rasa")
    results = await asyncio.gather(
        _timed(services.redis.ping), _timed(database), _timed(services.rasa.status)
    )
    checks = dict(zip(names, results, strict=True))
    ready = all(c["ok"] for c in checks.values())
    return response.json({"status": "ready" if ready else "not_ready", "checks": checks}, status=200 if ready else 503)


# ---------------------------------------------------------------------------- metrics


def _metrics_allowed(request: Request) -> bool:
    token = str(request.app.ctx.settings.get("ops.metrics_token") or "")
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(request.remote_addr or request.ip).is_loopback
    except ValueError:
        return False


class Counts:
    """Totals counted from the database into Redis, advanced by whichever worker is scraped."""

    def __init__(self, services: Any) -> None:
        self.s = services
        self.key = f"{services.keys.prefix}ops:metrics"
        self.lock = f"{services.keys.prefix}ops:metrics:lock"

    async def advance(self) -> None:
        if not await self.s.redis.set(self.lock, WORKER_ID, nx=True, px=10_000):
            return  # another worker is counting right now; its totals are read below
        try:
            await self._messages()
            await self._handoffs()
        finally:
            await self.s.redis.delete(self.lock)

    async def _cursor(self, field: str) -> int:
        return int(await self.s.redis.hget(self.key, field) or 0)

    async def _messages(self) -> None:
        cursor = await self._cursor("messages_cursor")
        async with self.s.sessions() as session:
            top = (await session.execute(select(func.max(Message.id)))).scalar_one_or_none() or 0
            if top <= cursor:
                return
            upto = min(top, cursor + SCAN_BATCH)
            rows = (
                await session.execute(
                    select(Message.conversation_id, Message.sender, Message.channel, Message.created_at, Message.meta)
                    .where(Message.id > cursor, Message.id <= upto)
                    .order_by(Message.id)
                )
            ).all()
        increments: dict[str, float] = {}
        asked: dict[str, Any] = {}
        for conversation_id, sender, channel, created_at, meta in rows:
            field = f"msg|{channel}|{sender}"
            increments[field] = increments.get(field, 0) + 1
            if sender == "citizen":
                asked.setdefault(conversation_id, created_at)
            elif sender == "bot":
                if isinstance(meta, dict) and meta.get("declined"):
                    increments[f"declined|{channel}"] = increments.get(f"declined|{channel}", 0) + 1
                since = asked.pop(conversation_id, None)
                if since is not None and created_at is not None:
                    seconds = max(0.0, (created_at - since).total_seconds())
                    for bound in (*LATENCY_BUCKETS, float("inf")):
                        if seconds <= bound:
                            increments[f"lat_bucket|{bound}"] = increments.get(f"lat_bucket|{bound}", 0) + 1
                    increments["lat_sum"] = increments.get("lat_sum", 0) + seconds
                    increments["lat_count"] = increments.get("lat_count", 0) + 1
        async with self.s.redis.pipeline(transaction=True) as pipe:
            for field, amount in increments.items():
                pipe.hincrbyfloat(self.key, field, amount)
            pipe.hset(self.key, "messages_cursor", upto)
            await pipe.execute()

    async def _handoffs(self) -> None:
        cursor = await self._cursor("events_cursor")
        async with self.s.sessions() as session:
            top = (await session.execute(select(func.max(ConversationEvent.id)))).scalar_one_or_none() or 0
            if top <= cursor:
                return
            upto = min(top, cursor + SCAN_BATCH)
            rows = (
                await session.execute(
                    select(ConversationEvent.to_state, func.count())
                    .where(ConversationEvent.id > cursor, ConversationEvent.id <= upto)
                    .where(ConversationEvent.from_state == "bot", ConversationEvent.to_state.in_(("queued", "agent")))
                    .group_by(ConversationEvent.to_state)
                )
            ).all()
        async with self.s.redis.pipeline(transaction=True) as pipe:
            for to_state, count in rows:
                pipe.hincrbyfloat(self.key, f"handoff|{to_state}", int(count))
            pipe.hset(self.key, "events_cursor", upto)
            await pipe.execute()

    async def totals(self) -> dict[str, float]:
        return {k: float(v) for k, v in (await self.s.redis.hgetall(self.key)).items()}


async def _families(services: Any) -> list[Metric]:
    counts = Counts(services)
    try:
        await counts.advance()
    except Exception:
        log.exception("counting metrics from the database failed; serving the last totals")
    totals = await counts.totals()
    messages = CounterMetricFamily(
        "zwkf_messages", "Messages written, by channel and sender", labels=["channel", "sender"]
    )
    declines = CounterMetricFamily("zwkf_bot_declines", "Bot replies that declined to answer", labels=["channel"])
    handoffs = CounterMetricFamily("zwkf_handoffs", "Conversations handed from the bot to people", labels=["to"])
    buckets: list[tuple[str, float]] = []
    for field, value in totals.items():
        kind, _, rest = field.partition("|")
        if kind == "msg":
            channel, sender = rest.split("|", 1)
            messages.add_metric([channel, sender], value)
        elif kind == "declined":
            declines.add_metric([rest], value)
        elif kind == "handoff":
            handoffs.add_metric([rest], value)
        elif kind == "lat_bucket":
            buckets.append((rest, value))
    buckets.sort(key=lambda item: float(item[0]))
    latency = HistogramMetricFamily(
        "zwkf_bot_reply_latency_seconds", "Time from a citizen's message to the bot's reply",
        buckets=[("+Inf" if b == "inf" else b, v) for b, v in buckets] or [("+Inf", 0.0)],
        sum_value=totals.get("lat_sum", 0.0),
    )

    waiting = await services.ownership.waiting()
    now = time.time()
    queue_length = GaugeMetricFamily("zwkf_queue_length", "Conversations waiting for an agent", labels=["group"])
    queue_oldest = GaugeMetricFamily(
        "zwkf_queue_oldest_wait_seconds", "How long the longest-waiting citizen has waited", labels=["group"]
    )
    per_group: dict[str, list[float]] = {}
    for _conversation, group, since in waiting:
        per_group.setdefault(group, []).append(since)
    groups = [str(g) for g in (services.settings.get("handoff.groups") or {})]
    for group in sorted(set(groups) | set(per_group)):
        sinces = per_group.get(group, [])
        queue_length.add_metric([group], len(sinces))
        queue_oldest.add_metric([group], max(0.0, now - min(sinces)) if sinces else 0.0)
    wait_avg = GaugeMetricFamily(
        "zwkf_queue_wait_average_seconds", "Moving average of the wait before an agent took over", labels=["group"]
    )
    async with services.redis.pipeline(transaction=False) as pipe:
        for group in groups:
            pipe.hget(f"{services.keys.prefix}handoff:stats:{group}", "wait_avg")
        for group, value in zip(groups, await pipe.execute(), strict=True):
            if value is not None:
                wait_avg.add_metric([group], float(value))

    agents = GaugeMetricFamily("zwkf_agents", "Staff on the agent console, by presence", labels=["status"])
    statuses: dict[str, int] = {"online": 0, "busy": 0, "away": 0, "offline": 0}
    for agent in await services.dispatcher.handoff.agents():
        statuses[agent["status"]] = statuses.get(agent["status"], 0) + 1
    for status, number in statuses.items():
        agents.add_metric([status], number)

    workers = GaugeMetricFamily(
        "zwkf_worker_heartbeat_age_seconds", "Seconds since each hub worker's last heartbeat", labels=["worker"]
    )
    alive = 0
    for worker, beat in (await services.redis.hgetall(_workers_key(services))).items():
        age = max(0.0, now - float(beat))
        workers.add_metric([worker], age)
        alive += age < WORKER_STALE_SECONDS
    workers_alive = GaugeMetricFamily("zwkf_workers_alive", "Hub workers with a heartbeat in the last 20 s")
    workers_alive.add_metric([], alive)
    return [
        messages, declines, handoffs, latency, queue_length, queue_oldest, wait_avg, agents, workers, workers_alive
    ]


class _Snapshot:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self._families)


@bp.get("/metrics")
async def metrics(request: Request) -> HTTPResponse:
    if not _metrics_allowed(request):
        return response.json({"reason": "无权读取监控指标。", "code": "forbidden"}, status=403)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(await _families(services_of(request))))  # type: ignore[arg-type]
    return response.raw(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


# ---------------------------------------------------------------------------- background


def _workers_key(services: Any) -> str:
    return f"{services.keys.prefix}ops:workers"


async def _heartbeat(app: Sanic) -> None:
    services = app.ctx.services
    while True:
        try:
            await services.redis.hset(_workers_key(services), WORKER_ID, time.time())
            # forget workers gone for an hour
            for worker, beat in (await services.redis.hgetall(_workers_key(services))).items():
                if time.time() - float(beat) > 3600:
                    await services.redis.hdel(_workers_key(services), worker)
        except Exception:
            log.exception("worker heartbeat failed")
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def _audit_sweeper(app: Sanic) -> None:
    """Delete audit rows past `audit.retention_days`, once per interval on one worker (a Redis lock)."""
    services = app.ctx.services
    interval = max(60, int(services.settings.get("audit.sweep_interval_minutes", 60)) * 60)
    days = int(services.settings.get("audit.retention_days", audit.DEFAULT_RETENTION_DAYS))
    lock = f"{services.keys.prefix}audit:sweeper"
    while True:
        try:
            if days > 0 and await services.redis.set(lock, WORKER_ID, nx=True, ex=interval):
                removed = await audit.sweep(services.sessions, days)
                if removed:
                    log.info("audit log retention: deleted %d rows older than %d days", removed, days)
        except Exception:
            log.exception("audit log retention sweep failed")
        await asyncio.sleep(interval)


@bp.after_server_start
async def start_background(app: Sanic) -> None:
    if str(app.ctx.settings.get("ops.log_format", "json")) == "json":
        use_json_logs()
    app.add_task(_heartbeat(app), name="ops_heartbeat")
    app.add_task(_audit_sweeper(app), name="audit_sweeper")


@bp.before_server_stop
async def forget_worker(app: Sanic) -> None:
    try:
        await app.ctx.services.redis.hdel(_workers_key(app.ctx.services), WORKER_ID)
    except Exception:
        log.warning("could not remove this worker's heartbeat")
