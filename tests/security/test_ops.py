"""Operations endpoints on a real worker: liveness, readiness with each dependency's status, Prometheus
metrics gathered from Redis and the database, request ids in and out."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.security.hubs import Running, running_hubs
from tests.support import ChatClient


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_hubs(tmp_path_factory.mktemp("ops"), 2) as running:
        yield running


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_alive_and_ready_say_which_dependency_fails(hub: Running) -> None:
    with httpx.Client(base_url=hub.url) as http:
        alive = http.get("/healthz")
        assert alive.status_code == 200 and alive.json()["status"] == "alive"
        ready = http.get("/readyz")
    # Rasa is not running for these workers: not ready, and the reply says so per check
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["redis"]["ok"] and checks["database"]["ok"]
    assert not checks["rasa"]["ok"] and "Rasa" in checks["rasa"]["error"]


def test_request_ids_are_echoed_or_made(hub: Running) -> None:
    with httpx.Client(base_url=hub.url) as http:
        assert http.get("/healthz", headers={"X-Request-Id": "lb-7f3a"}).headers["x-request-id"] == "lb-7f3a"
        made = http.get("/healthz").headers["x-request-id"]
        assert len(made) == 32
        # a header that could forge log lines is replaced
        forged = 'x" , "level": "ERROR'
        assert http.get("/healthz", headers={"X-Request-Id": forged}).headers["x-request-id"] != forged


async def test_metrics_count_messages_queues_and_workers_across_workers(hub: Running) -> None:
    async with ChatClient(hub.url) as citizen:
        await citizen.say("你好，我想问一下社保卡怎么补办")
        await citizen.say("转人工")
    await asyncio.sleep(0.5)
    async with httpx.AsyncClient(base_url=hub.hubs.urls[1]) as http:
        reply = await http.get("/metrics")
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
        first = samples(reply.text)
        assert first[("zwkf_messages_total", (("channel", "web"), ("sender", "citizen")))] >= 2
        assert first[("zwkf_workers_alive", ())] == 2
        assert ("zwkf_queue_length", (("group", "综合"),)) in first
        assert ("zwkf_agents", (("status", "online"),)) in first
    # scraping the other worker continues from the shared totals, never counting a row twice
    async with ChatClient(hub.url) as citizen:
        await citizen.say("再问一个问题")
    async with httpx.AsyncClient(base_url=hub.url) as http:
        second = samples((await http.get("/metrics")).text)
        again = samples((await http.get("/metrics")).text)
    key = ("zwkf_messages_total", (("channel", "web"), ("sender", "citizen")))
    assert second[key] == first[key] + 1 == again[key]


def test_metrics_need_the_token_when_one_is_set(tmp_path) -> None:
    with running_hubs(tmp_path, 1, {"ops": {"metrics_token": "s3cret-scrape"}}) as guarded, \
            httpx.Client(base_url=guarded.url) as http:
        assert http.get("/metrics").status_code == 403
        assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert http.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"}).status_code == 200
