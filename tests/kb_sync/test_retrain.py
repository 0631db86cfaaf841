"""Retraining the bot's Rasa model from the KB on the running system: a background job with
progress in Redis, one at a time across workers, swapped into the live Rasa server."""

from __future__ import annotations

import asyncio
import time

import httpx

from bot.training import training_hash
from hub.config import load_settings
from hub.seed import published_questions
from tests.conftest import RunningSystem
from tests.support import ChatClient


async def _login(base_url: str, username: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=30)
    reply = await client.post("/api/login", json={"username": username, "password": password})
    reply.raise_for_status()
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

            async with httpx.AsyncClient(base_url=system.rasa_url, timeout=30) as rasa:
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
