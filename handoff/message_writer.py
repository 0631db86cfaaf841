"""Group commit for transcript rows: concurrent inserts of one worker share one transaction.

Each caller awaits its own row's commit (so "committed before acknowledged" still holds for
every message); whoever finds the writer idle writes everything queued at that moment in one
transaction on one connection, and the rows that arrive meanwhile form the next batch. On
SQLite this also means one writing connection instead of many waiting on each other's locks.

A row carrying a channel's message id is inserted with ON CONFLICT DO NOTHING on
(channel, channel_message_id): a retry gets the first copy back and `is_new` False. If a
batch fails as a whole, every row is tried again alone, so one bad row fails only its caller.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.models import Message

MAX_BATCH = 200
_TABLE = Message.__table__
_RETURNED = (_TABLE.c.id, _TABLE.c.created_at)


@dataclass
class _Row:
    values: dict[str, Any]
    done: asyncio.Future[tuple[dict[str, Any], bool]] = field(repr=False)


class MessageWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queue: list[_Row] = []
        self._flusher: asyncio.Task[None] | None = None
        dialect = engine.dialect.name
        self._upsert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(dialect)

    async def insert(self, values: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Commit one messages row; returns (the stored row's columns, is_new)."""
        loop = asyncio.get_running_loop()
        row = _Row(values, loop.create_future())
        self._queue.append(row)
        if self._flusher is None or self._flusher.done() or self._flusher.get_loop() is not loop:
            # the flush runs on its own: a caller that goes away (the platform hung up) does
            # not take the commit of the others, or its own, with it
            self._flusher = loop.create_task(self._flush())
        return await asyncio.shield(row.done)

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                async with self._engine.begin() as connection:
                    results = [await self._write(connection, row.values) for row in batch]
            except Exception:
                await self._one_by_one(batch)
                continue
            for row, result in zip(batch, results, strict=True):
                if not row.done.done():
                    row.done.set_result(result)

    async def _one_by_one(self, batch: list[_Row]) -> None:
        for row in batch:
            try:
                async with self._engine.begin() as connection:
                    result = await self._write(connection, row.values)
            except Exception as error:
                if not row.done.done():
                    row.done.set_exception(error)
            else:
                if not row.done.done():
                    row.done.set_result(result)

    async def _write(self, connection: AsyncConnection, values: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        channel_message_id = values.get("channel_message_id")
        if channel_message_id is None or self._upsert is None:
            statement = insert(_TABLE).values(**values).returning(*_RETURNED)
        else:
            statement = (
                self._upsert(_TABLE).values(**values)
                .on_conflict_do_nothing(index_elements=["channel", "channel_message_id"])
                .returning(*_RETURNED)
            )
        stored = (await connection.execute(statement)).first()
        if stored is not None:
            return {**values, "id": stored.id, "created_at": stored.created_at}, True
        existing = (await connection.execute(
            select(_TABLE).where(_TABLE.c.channel == values["channel"],
                                 _TABLE.c.channel_message_id == channel_message_id)
        )).mappings().one()
        return dict(existing), False
