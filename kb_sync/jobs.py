"""Import jobs: the upload is checked as a spreadsheet at once, then checked row by row and
written in the background; progress and the final report live in Redis, so the page can
poll any hub worker (``GET /api/kb/imports/<id>``)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import redis.asyncio as aioredis

from hub.redis_client import Keys
from kb_sync.store import KbError
from kb_sync.transfer import KbImporter

TTL_SECONDS = 24 * 3600


class ImportJobs:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._prefix = keys.prefix

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}kb:import:{job_id}"

    async def create(self, total: int, editor: str, filename: str) -> str:
        job_id = uuid.uuid4().hex
        await self._save(job_id, {"id": job_id, "state": "queued", "stage": "queued", "done": 0, "total": total,
                                  "editor": editor, "filename": filename, "started": time.time()})
        return job_id

    async def _save(self, job_id: str, state: dict[str, Any]) -> None:
        await self._redis.set(self._key(job_id), json.dumps(state, ensure_ascii=False), ex=TTL_SECONDS)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        raw = await self._redis.get(self._key(job_id))
        return None if raw is None else json.loads(raw)

    async def run(
        self, job_id: str, importer: KbImporter, rows: list[tuple[int, dict[str, Any]]], editor: str,
        create_branches: bool, on_published: Any = None,
    ) -> dict[str, Any]:
        state = await self.get(job_id) or {"id": job_id}
        state["state"] = "running"

        async def progress(stage: str, done: int, total: int) -> None:
            state.update(stage=stage, done=done, total=total)
            await self._save(job_id, state)

        try:
            report = await importer.run(rows, editor, create_branches=create_branches, progress=progress)
        except KbError as error:
            state.update(state="failed", stage="failed", report={"ok": False, "total": len(rows), "errors": [],
                                                                 "reason": error.reason})
        except Exception as error:  # never leave the page polling forever
            state.update(state="failed", stage="failed",
                         report={"ok": False, "total": len(rows), "errors": [],
                                 "reason": f"导入失败，未写入任何数据（{type(error).__name__}）。"})
        else:
            state.update(state="done" if report.ok else "failed", stage="done" if report.ok else "failed",
                         report=report.to_json(), done=len(rows) if report.ok else state.get("done", 0))
            if report.ok and report.published and on_published is not None:
                await on_published()
        state["seconds"] = round(time.time() - float(state.get("started") or time.time()), 3)
        await self._save(job_id, state)
        return state
