"""Retrain the bot's Rasa model from the published KB in the background and swap it in.

One job at a time across every hub worker (a Redis lock with a heartbeat); its progress
lives in Redis so the KB page can poll any worker (``GET /api/kb/retrain``):

    queued → collecting → training (component, DIET epoch n/N) → loading (node i/n) → done | failed

``percent`` estimates the whole job (0-100); ``train`` says what ``rasa train`` is doing
(read from its output by ``bot.training.ProgressParser``).  ``bot.training.ensure_model``
runs in a thread (it drives ``rasa train`` as a subprocess and reuses the cached model
when the hash is unchanged).  The new model is loaded into every Rasa node
(``bot.rasa_nodes``) one after another with Rasa's HTTP API (``PUT /model
{"model_file": <path>}``), so the others keep serving while one loads; Rasa keeps the
tracker and lock stores (Redis), so conversations carry on with the new model.  Each
node's outcome is reported in ``nodes``; the job fails when any node did not load it.
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

from bot.training import TrainingError, TrainProgress, ensure_model, training_hash

STATE_TTL_SECONDS = 7 * 24 * 3600
LOCK_TTL_SECONDS = 60  # refreshed every second while the job runs; a dead worker frees it
LOAD_TIMEOUT_SECONDS = 300.0
RUNNING = ("queued", "collecting", "training", "loading")

# Share of the job's percent each stage ends at (training fills the span before loading).
_PERCENT = {"queued": 0, "collecting": 2, "training": 92, "loading": 99, "done": 100}

STEP_LABELS = {
    "preparing": "准备训练数据",
    "JiebaTokenizer": "分词",
    "CountVectorsFeaturizer": "提取特征",
    "DIETClassifier": "训练意图分类模型",
    "FallbackClassifier": "设置兜底规则",
    "MemoizationPolicy": "训练对话策略",
    "RulePolicy": "训练对话规则",
    "saving": "保存模型",
}

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


def train_progress(progress: TrainProgress) -> dict[str, Any]:
    """``rasa train``'s progress as the state's ``train`` object (JSON, with a Chinese step label)."""
    out: dict[str, Any] = {"step": progress.step, "step_label": STEP_LABELS.get(progress.step, progress.step),
                           "percent": progress.percent}
    if progress.epoch is not None:
        out.update(epoch=progress.epoch, epochs=progress.epochs)
    return out


def _training_message(questions: int, train: dict[str, Any] | None) -> str:
    text = f"正在训练模型（{questions} 个问题）"
    if not train:
        return text + "…"
    text += f"：{train['step_label']}"
    if train.get("epochs"):
        text += f" 第 {train['epoch']}/{train['epochs']} 轮"
    return text + "…"


class _LatestProgress:
    """Written by the training thread, read by the event loop (one reference assignment, so no lock)."""

    value: TrainProgress | None = None

    def __call__(self, progress: TrainProgress) -> None:
        self.value = progress


class RetrainJobs:
    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        rasa_nodes: str | Sequence[str],
        *,
        ensure: Callable[..., Path] = ensure_model,
        load_timeout: float = LOAD_TIMEOUT_SECONDS,
        token: str | None = None,
    ) -> None:
        """``rasa_nodes``: the base URL of every Rasa server that must serve the new model;
        ``token``: their API token (default the hub's, core.config.Settings.rasa_token)."""
        if token is None:
            from core.config import load_settings

            token = load_settings().rasa_token
        self._token = token
        self._redis = redis
        self._state_key = f"{prefix}bot:retrain:state"
        self._lock_key = f"{prefix}bot:retrain:lock"
        nodes = [rasa_nodes] if isinstance(rasa_nodes, str) else list(rasa_nodes)
        self._nodes = list(dict.fromkeys(n.rstrip("/") for n in nodes if n and n.strip()))
        if not self._nodes:
            raise ValueError("RetrainJobs needs at least one Rasa node URL")
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
                 "percent": 0, "reload": reload, "message": "已开始更新机器人模型。"}
        await self._save(state)
        state["running"] = True
        return state, token

    async def run(
        self, state: dict[str, Any], token: str, collect: Callable[[], Awaitable[list[str]]]
    ) -> dict[str, Any]:
        """Collect → train (or reuse) → load into Rasa; always ends done or failed and frees the lock."""
        started = float(state.get("started") or time.time())
        latest = _LatestProgress()
        heartbeat = asyncio.create_task(self._heartbeat(state, token, started, latest))
        try:
            await self._stage(state, "collecting", "正在收集已发布知识的问题…", started)
            questions = await collect()
            state["questions"] = len(questions)
            digest = await asyncio.to_thread(training_hash, questions)
            state["hash"] = digest
            await self._stage(state, "training", _training_message(len(questions), None), started)
            model = await asyncio.to_thread(self._model, questions, latest)
            state["model_file"] = str(model)
            state["trained_seconds"] = round(time.time() - started, 1)
            if state.get("train"):
                state["train"] = train_progress(TrainProgress("saving", 100))
            await self._stage(state, "loading", "正在把新模型加载到机器人…", started)
            results = await self._load_all(model, state, started, force=bool(state.get("reload")))
            self._finish(state, results)
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
        # entering a stage: at least where the one before ended
        previous = _PERCENT.get(state.get("stage", ""), 0) if stage != state.get("stage") else 0
        state.update(stage=stage, message=message, elapsed=round(time.time() - started, 1),
                     percent=max(int(state.get("percent") or 0), previous))
        await self._save(state)

    async def _heartbeat(self, state: dict[str, Any], token: str, started: float, latest: _LatestProgress) -> None:
        """Keep the lock while the job runs and publish elapsed seconds and training progress once a second."""
        while True:
            await asyncio.sleep(1.0)
            await self._redis.eval(_REFRESH, 1, self._lock_key, token, LOCK_TTL_SECONDS)
            if state.get("stage") in RUNNING:
                progress = latest.value
                if state.get("stage") == "training" and progress is not None:
                    train = train_progress(progress)
                    lo, hi = _PERCENT["collecting"], _PERCENT["training"]
                    state.update(train=train, message=_training_message(int(state.get("questions") or 0), train),
                                 percent=lo + (hi - lo) * progress.percent // 100)
                state["elapsed"] = round(time.time() - started, 1)
                await self._save(state)

    def _model(self, questions: list[str], progress: _LatestProgress) -> Path:
        return Path(self._ensure(questions, progress=progress)).resolve()  # Rasa needs an absolute path

    async def _load_all(
        self, model: Path, state: dict[str, Any], started: float, *, force: bool
    ) -> list[dict[str, Any]]:
        """Load the model into each node in turn (the others keep serving); one result per node."""
        results: list[dict[str, Any]] = []
        total = len(self._nodes)
        for i, url in enumerate(self._nodes):
            if total > 1:
                lo, hi = _PERCENT["training"], _PERCENT["loading"]
                state["percent"] = lo + (hi - lo) * i // total
                await self._stage(state, "loading", f"正在把新模型加载到机器人（第 {i + 1}/{total} 个节点）…", started)
            try:
                swapped = await self._load(url, model, force=force)
                results.append({"url": url, "ok": True, "swapped": swapped,
                                "message": "已加载新模型" if swapped else "已在使用最新模型"})
            except _LoadError as failure:
                results.append({"url": url, "ok": False, "swapped": False, "message": str(failure)})
            state["nodes"] = results
        return results

    @staticmethod
    def _finish(state: dict[str, Any], results: list[dict[str, Any]]) -> None:
        """done when every node serves the new model, else failed naming the nodes that do not."""
        swapped = any(r["swapped"] for r in results)
        failed = [r for r in results if not r["ok"]]
        state.update(nodes=results, swapped=swapped)
        if not failed:
            state.update(stage="done", percent=100, message=(
                "机器人模型已更新，新模型已生效，进行中的会话不受影响。" if swapped
                else "知识库问题没有变化，机器人已在使用最新模型。"))
        elif len(results) == 1:
            state.update(stage="failed", message=failed[0]["message"])
        else:
            names = "；".join(f"{r['url']}：{r['message']}" for r in failed)
            state.update(stage="failed", message=(
                f"{len(results)} 个机器人节点中有 {len(failed)} 个未能加载新模型（{names}），"
                f"其余 {len(results) - len(failed)} 个已更新。请检查这些节点后重试。"))

    async def _load(self, url: str, model: Path, *, force: bool) -> bool:
        """PUT the model into one Rasa node; False when it already serves it (and not forced)."""
        async with httpx.AsyncClient(base_url=url, params={"token": self._token},
                                     timeout=httpx.Timeout(self._load_timeout, connect=5.0)) as http:
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
