"""Retrain the bot's Rasa model from the published KB in the background and swap it in.

One job at a time across every hub worker (a Redis lock with a heartbeat); its progress
lives in Redis so the KB page can poll any worker (``GET /api/kb/retrain``):

    queued → collecting → training (elapsed seconds) → loading → done | failed

``bot.training.ensure_model`` runs in a thread (it drives ``rasa train`` as a subprocess
and reuses the cached model when the hash is unchanged). The new model is loaded into the
running Rasa server with its HTTP API (``PUT /model {"model_file": <path>}``): Rasa keeps
the tracker and lock stores (Redis), so conversations carry on with the new model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
import redis.asyncio as aioredis

from bot.training import TrainingError, ensure_model, training_hash

STATE_TTL_SECONDS = 7 * 24 * 3600
LOCK_TTL_SECONDS = 60  # refreshed every second while the job runs; a dead worker frees it
LOAD_TIMEOUT_SECONDS = 300.0
RUNNING = ("queued", "collecting", "training", "loading")

STAGE_LABELS = {
    "queued": "排队中",
    "collecting": "正在收集已发布知识",
    "training": "正在训练模型",
    "loading": "正在加载新模型",
    "done": "已完成",
    "failed": "失败",
}

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_REFRESH = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""


class _Entry(Protocol):
    question: str
    similar: Sequence[str]


def questions_of(entries: Iterable[_Entry]) -> list[str]:
    """Standard and similar questions, round-robin like ``bot.training.load_kb_questions``.

    Every standard question first, then every entry's first similar question, ... so the
    example cap keeps coverage across all entries and the hash matches a KB export's.
    """
    rows = [[q for q in (entry.question, *entry.similar) if isinstance(q, str) and q] for entry in entries]
    depth = max((len(r) for r in rows), default=0)
    return [r[i] for i in range(depth) for r in rows if i < len(r)]


class RetrainBusy(RuntimeError):
    """Another retrain is running (on this or another hub worker)."""


class RetrainJobs:
    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        rasa_url: str,
        *,
        ensure: Callable[[list[str]], Path] = ensure_model,
        load_timeout: float = LOAD_TIMEOUT_SECONDS,
    ) -> None:
        self._redis = redis
        self._state_key = f"{prefix}bot:retrain:state"
        self._lock_key = f"{prefix}bot:retrain:lock"
        self._rasa_url = rasa_url.rstrip("/")
        self._ensure = ensure
        self._load_timeout = load_timeout

    # ------------------------------------------------------------------ state

    async def _save(self, state: dict[str, Any]) -> None:
        state["stage_label"] = STAGE_LABELS.get(state.get("stage", ""), "")
        state["updated"] = time.time()
        await self._redis.set(self._state_key, json.dumps(state, ensure_ascii=False), ex=STATE_TTL_SECONDS)

    async def get(self) -> dict[str, Any]:
        """The latest job's state; ``{"stage": "idle"}`` when none ran yet."""
        raw = await self._redis.get(self._state_key)
        if raw is None:
            return {"stage": "idle", "running": False}
        state = json.loads(raw)
        if state.get("stage") in RUNNING and not await self._redis.exists(self._lock_key):
            # the worker running it stopped (restart, crash): say so instead of "running" forever
            state.update(stage="failed", message="模型更新被中断（服务重启或异常退出），请重新开始。")
            await self._save(state)
        state["running"] = state.get("stage") in RUNNING
        return state

    # ------------------------------------------------------------------ start / run

    async def start(self, editor: str, *, reload: bool = False) -> tuple[dict[str, Any], str]:
        """Take the lock and record a queued job; raises RetrainBusy when one runs."""
        token = uuid.uuid4().hex
        if not await self._redis.set(self._lock_key, token, nx=True, ex=LOCK_TTL_SECONDS):
            raise RetrainBusy("机器人模型正在更新中，请等待当前任务完成后再试。")
        state = {"id": token, "stage": "queued", "editor": editor, "started": time.time(), "elapsed": 0,
                 "reload": reload, "message": "已开始更新机器人模型。"}
        await self._save(state)
        state["running"] = True
        return state, token

    async def run(
        self, state: dict[str, Any], token: str, collect: Callable[[], Awaitable[list[str]]]
    ) -> dict[str, Any]:
        """Collect → train (or reuse) → load into Rasa; always ends done or failed and frees the lock."""
        started = float(state.get("started") or time.time())
        heartbeat = asyncio.create_task(self._heartbeat(state, token, started))
        try:
            await self._stage(state, "collecting", "正在收集已发布知识的问题…", started)
            questions = await collect()
            state["questions"] = len(questions)
            digest = await asyncio.to_thread(training_hash, questions)
            state["hash"] = digest
            await self._stage(state, "training", f"正在训练模型（{len(questions)} 个问题）…", started)
            model = await asyncio.to_thread(self._model, questions)
            state["model_file"] = str(model)
            state["trained_seconds"] = round(time.time() - started, 1)
            await self._stage(state, "loading", "正在把新模型加载到机器人…", started)
            loaded = await self._load(model, force=bool(state.get("reload")))
            state.update(stage="done", message=(
                "机器人模型已更新，新模型已生效，进行中的会话不受影响。" if loaded
                else "知识库问题没有变化，机器人已在使用最新模型。"), swapped=loaded)
        except TrainingError as failure:
            state.update(stage="failed", message=f"模型训练失败：{failure}。请联系管理员查看日志。")
        except _LoadError as failure:
            state.update(stage="failed", message=str(failure))
        except Exception as failure:  # never leave the page polling forever
            state.update(stage="failed", message=f"模型更新失败（{type(failure).__name__}），机器人仍在使用原模型。")
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat  # no stale "running" write may land after the final one
            state["elapsed"] = round(time.time() - started, 1)
            state["finished"] = time.time()
            state["running"] = False
            await self._save(state)
            await self._redis.eval(_RELEASE, 1, self._lock_key, token)
        return state

    async def _stage(self, state: dict[str, Any], stage: str, message: str, started: float) -> None:
        state.update(stage=stage, message=message, elapsed=round(time.time() - started, 1))
        await self._save(state)

    async def _heartbeat(self, state: dict[str, Any], token: str, started: float) -> None:
        """Keep the lock while the job runs and publish the elapsed seconds once a second."""
        while True:
            await asyncio.sleep(1.0)
            await self._redis.eval(_REFRESH, 1, self._lock_key, token, LOCK_TTL_SECONDS)
            if state.get("stage") in RUNNING:
                state["elapsed"] = round(time.time() - started, 1)
                await self._save(state)

    def _model(self, questions: list[str]) -> Path:
        return Path(self._ensure(questions)).resolve()  # Rasa needs an absolute path

    async def _load(self, model: Path, *, force: bool) -> bool:
        """PUT the model into Rasa; False when Rasa already serves it (and not forced)."""
        async with httpx.AsyncClient(base_url=self._rasa_url, timeout=httpx.Timeout(self._load_timeout,
                                                                                    connect=5.0)) as http:
            try:
                if not force:
                    current = await http.get("/status")
                    if current.status_code == 200 and current.json().get("model_file") == model.name:
                        return False
                reply = await http.put("/model", json={"model_file": str(model)})
                if reply.status_code >= 400:
                    raise _LoadError(f"机器人未能加载新模型（HTTP {reply.status_code}），仍在使用原模型。")
                status = (await http.get("/status")).json()
            except httpx.TransportError as error:
                raise _LoadError(f"无法连接机器人服务（{type(error).__name__}），模型未更新。") from error
            except ValueError as error:
                raise _LoadError("机器人服务的应答格式不正确，模型可能未更新。") from error
        if status.get("model_file") != model.name:
            raise _LoadError(f"机器人加载后报告的模型是 {status.get('model_file')}，不是新模型。")
        return True


class _LoadError(RuntimeError):
    """Rasa could not load the new model (the Chinese reason is the message)."""
