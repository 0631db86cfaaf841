"""KB import jobs: the shared spreadsheet job runner (core.spreadsheet.ImportJobs) under the
`kb` namespace; progress and the final report live in Redis, so the page can poll any hub
worker (``GET /api/kb/imports/<id>``)."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from core.redis_client import Keys
from core.spreadsheet import ImportJobs as SpreadsheetJobs
from core.spreadsheet import Progress, Report
from kb_sync.transfer import KbImporter


class ImportJobs:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._jobs = SpreadsheetJobs(redis, keys.prefix, "kb")

    async def create(self, total: int, editor: str, filename: str) -> str:
        return await self._jobs.create(total, editor, filename)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        return await self._jobs.get(job_id)

    async def run(
        self, job_id: str, importer: KbImporter, rows: list[tuple[int, dict[str, Any]]], editor: str,
        create_branches: bool, on_published: Any = None,
    ) -> dict[str, Any]:
        async def work(progress: Progress) -> Report:
            return await importer.run(rows, editor, create_branches=create_branches, progress=progress)

        async def published(report: Any) -> None:
            if report.published and on_published is not None:
                await on_published()

        return await self._jobs.run(job_id, work, len(rows), published)
