"""Retraining the bot's Rasa model from the KB on the running system: a background job with
progress in Redis, one at a time across workers, swapped into the live Rasa server."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from bot import training
from bot.retrain import RetrainJobs
from bot.training import training_hash
from core.config import load_settings
from hub.seed import published_questions
from tests.conftest import RunningSystem
from tests.support import ChatClient, free_port, send_csrf_token

# Rasa's HTTP API answers only the hub's token (`rasa run --auth-token`, #12)
RASA_AUTH = {"token": load_settings().rasa_token}


async def _login(base_url: str, username: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=30)
    reply = await client.post("/api/login", json={"username": username, "password": password})
    reply.raise_for_status()
    send_csrf_token(client, reply)
    return client


async def _wait_retrain(client: httpx.AsyncClient, timeout: float = 300) -> tuple[dict, list[str]]:
    deadline = time.monotonic() + timeout
    stages: list[str] = []
    while time.monotonic() < deadline:
        state = (await client.get("/api/kb/retrain")).json()
        if not stages or stages[-1] != state["stage"]:
            stages.append(state["stage"])
        if not state["running"]:
            return state, stages
        await asyncio.sleep(0.2)
    raise TimeoutError(f"retrain still running after {timeout}s: {stages}")


async def test_retrain_swaps_the_model_without_dropping_a_conversation(system: RunningSystem) -> None:
    settings = load_settings().with_overrides({"storage.database_url": system.database_url})
    expected = training_hash(await published_questions(settings))

    anonymous = httpx.AsyncClient(base_url=system.hub_url)
    agent = await _login(system.hub_url, "agent1", "agent1pass")
    editor = await _login(system.hub_url, "editor1", "editor1pass")
    other = await _login(system.hub_urls[1], "editor1", "editor1pass")
    try:
        assert (await anonymous.post("/api/kb/retrain")).status_code == 401
        assert (await agent.post("/api/kb/retrain")).status_code == 403

        async with ChatClient(system.hub_url) as citizen:
            before = await citizen.ask("护照怎么办理")
            assert before["sender"] in ("bot", "system")

            started = await editor.post("/api/kb/retrain", json={"reload": True})
            assert started.status_code == 202, started.text
            assert started.json()["running"] is True
            # one job at a time across workers: the other worker refuses while it runs
            busy = await other.post("/api/kb/retrain")
            assert busy.status_code == 409 and "正在更新" in busy.json()["reason"], busy.text

            state, stages = await _wait_retrain(other)
            print(f"\n[retrain] stages {stages} in {state['elapsed']}s: {state['message']}")
            assert state["stage"] == "done", state
            assert state["hash"] == expected and state["swapped"] is True
            assert state["message"] and "已更新" in state["message"]

            async with httpx.AsyncClient(base_url=system.rasa_url, timeout=30, params=RASA_AUTH) as rasa:
                status = (await rasa.get("/status")).json()
            assert status["model_file"] == f"{expected}.tar.gz"

            # the conversation that began before the swap carries on with the new model
            after = await citizen.ask("护照怎么办理")
            assert after["sender"] == "bot" and after["text"]
            assert after["conversation_id"] == before["conversation_id"]

        # unchanged KB, no reload asked: nothing to swap, done at once; a new job may start again
        again = await other.post("/api/kb/retrain")
        assert again.status_code == 202, again.text
        state, _ = await _wait_retrain(editor)
        assert state["stage"] == "done" and state["swapped"] is False and state["hash"] == expected
    finally:
        for client in (anonymous, agent, editor, other):
            await client.aclose()


async def test_retrain_shows_training_progress_and_each_rasa_nodes_result(
    system: RunningSystem, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A real `rasa train` (the KB gained a question, so nothing is cached): the KB page's
    GET /api/kb/retrain shows DIET's epochs advancing; with two Rasa nodes configured, the
    live one gets the new model and the one that is down is reported by name."""
    settings = load_settings().with_overrides({"storage.database_url": system.database_url})
    questions = [*await published_questions(settings), f"测试进度的新问题{uuid.uuid4().hex[:8]}怎么办理"]
    async with httpx.AsyncClient(base_url=system.rasa_url, timeout=30, params=RASA_AUTH) as rasa:
        original = (await rasa.get("/status")).json()["model_file"]
    original_path = training.cache_dir() / original
    assert original_path.exists()
    monkeypatch.setenv("ZWKF_CACHE_DIR", str(tmp_path))  # a fresh model cache: this run must train

    down = f"http://127.0.0.1:{free_port()}"
    redis = aioredis.from_url(system.redis_url, decode_responses=True)
    jobs = RetrainJobs(redis, system.prefix, [system.rasa_url, down])
    editor = await _login(system.hub_url, "editor1", "editor1pass")
    try:
        state, token = await jobs.start("editor1")

        async def collect() -> list[str]:
            return questions

        job = asyncio.create_task(jobs.run(state, token, collect))
        seen: list[dict] = []
        while not job.done():
            seen.append((await editor.get("/api/kb/retrain")).json())  # what the KB page shows
            await asyncio.sleep(0.5)
        final = await job
        seen.append((await editor.get("/api/kb/retrain")).json())

        percents = [s["percent"] for s in seen]
        assert percents == sorted(percents), percents
        epochs = [s["train"] for s in seen if s["stage"] == "training" and s.get("train", {}).get("epochs")]
        assert epochs, [s.get("message") for s in seen]
        assert any(0 < t["epoch"] < t["epochs"] for t in epochs), epochs
        assert all(t["step"] == "DIETClassifier" and t["step_label"] == "训练意图分类模型" for t in epochs)
        assert any("轮" in s["message"] and 2 < s["percent"] < 92 for s in seen if s["stage"] == "training")

        assert final["stage"] == "failed" and seen[-1]["stage"] == "failed"
        live, dead = seen[-1]["nodes"]
        assert live == {"url": system.rasa_url, "ok": True, "swapped": True, "message": "已加载新模型"}
        assert dead["url"] == down and dead["ok"] is False and "无法连接" in dead["message"]
        assert "2 个机器人节点中有 1 个未能加载新模型" in seen[-1]["message"] and down in seen[-1]["message"]
        async with httpx.AsyncClient(base_url=system.rasa_url, timeout=30, params=RASA_AUTH) as rasa:
            assert (await rasa.get("/status")).json()["model_file"] == f"{final['hash']}.tar.gz"
    finally:
        # the other tests' model back
        async with httpx.AsyncClient(base_url=system.rasa_url, timeout=300, params=RASA_AUTH) as rasa:
            await rasa.put("/model", json={"model_file": str(original_path)})
        await editor.aclose()
        await redis.aclose()
