"""Group commit for the hub's hot writes: transcript rows and ownership-transition records.

Every caller awaits its own write's commit (so "committed before acknowledged" still holds);
whoever finds the writer idle writes everything queued at that moment in one transaction, and
what arrives meanwhile forms the next batch. One writer per database engine and process
(`writer_for`): a worker's transcript rows and transition records share its transactions.

On a SQLite file the batch runs whole in one call on the writer's own thread, over a plain
(synchronous) connection to the same file: the database's single write lock, which every hub
worker shares, is held for the statements only and never across event-loop turns (on the
async driver each statement is a round trip through the event loop, and a busy loop kept the
other worker's writers sleeping in SQLite's busy handler). On PostgreSQL it runs on the async
engine.

A row carrying a channel's message id is inserted with ON CONFLICT DO NOTHING on
(channel, channel_message_id): a retry gets the first copy back and `is_new` False. If a
batch fails as a whole, every write is tried again alone, so one bad row fails only its caller.

Delivery before commit (`deliver_before_commit`, an agent's reply): the next transcript row
recorded in that context is handed back as soon as the database has given it its id, before
the transaction commits, so the citizen's copy does not wait for the commit; `committed(id)`
waits for the commit (the agent's acknowledgement does). Such a row is never dropped: if its
transaction fails it is written again alone, with the same id, until it is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.models import Conversation, ConversationEvent, Message

log = logging.getLogger(__name__)

MAX_BATCH = 200
RETRY_MAX_SECONDS = 2.0  # the longest pause between attempts at a row already delivered
_TABLE = Message.__table__
_EVENTS = ConversationEvent.__table__
_RETURNED = (_TABLE.c.id, _TABLE.c.created_at)

Deliver = Callable[["_Write", Any], None]


class _Ticket:
    """One row's permission to be delivered before its commit (used by the first row recorded)."""

    used = False


_early: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar("deliver_before_commit", default=None)


@contextlib.contextmanager
def deliver_before_commit() -> Iterator[None]:
    """The next transcript row recorded in this context (and only that one) is handed back once
    it has its id, before its commit; await `MessageWriter.committed(id)` for the commit."""
    token = _early.set(_Ticket())
    try:
        yield
    finally:
        _early.reset(token)


@dataclass
class _Write:
    """A transcript row (`values`, result (columns, is_new)) or a transition record (`event` set)."""

    values: dict[str, Any]
    done: asyncio.Future[Any] = field(repr=False)
    event: dict[str, Any] | None = None
    version: int = 0
    early: bool = False
    committed: asyncio.Future[None] | None = field(default=None, repr=False)
    assigned_id: int | None = None  # an early row's id, kept when it has to be written again
    delivered_id: int | None = None  # the id its caller was given (what `committed` is asked with)


class MessageWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._queue: list[_Write] = []
        self._flusher: asyncio.Task[None] | None = None
        self._pending_commits: dict[int, asyncio.Future[None]] = {}
        dialect = engine.dialect.name
        self._upsert = _UPSERTS.get(dialect)
        self._sync: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        database = engine.url.database or ""
        if dialect == "sqlite" and database and database != ":memory:" and "mode=memory" not in str(engine.url):
            self._sync = _sqlite_sync_engine(engine)
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="zwkf-writer")

    # ------------------------------------------------------------------ callers
    async def insert(self, values: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Commit one messages row; returns (the stored row's columns, is_new). Inside
        `deliver_before_commit`: returns once the row has its id (see the module's note)."""
        loop = asyncio.get_running_loop()
        ticket = _early.get()
        early = ticket is not None and not ticket.used and values.get("channel_message_id") is None
        if early and ticket is not None:
            ticket.used = True
        write = _Write(dict(values), loop.create_future(), early=early)
        if early:
            write.committed = loop.create_future()
        return await self._submit(write)

    async def record_transition(self, conversation_id: str, values: dict[str, Any], event: dict[str, Any],
                                version: int) -> None:
        """Commit an ownership transition: the conversation's record (only if `version` is newer than
        the one it holds: two workers' records may land out of order) and its `conversation_events` row."""
        loop = asyncio.get_running_loop()
        write = _Write({"id": conversation_id, **values}, loop.create_future(), event=event, version=version)
        await self._submit(write)

    async def committed(self, message_id: int) -> None:
        """Wait until a row handed back before its commit is committed (at once for any other row)."""
        pending = self._pending_commits.get(message_id)
        if pending is not None:
            await asyncio.shield(pending)

    async def aclose(self) -> None:
        """Finish what is queued, then release the writer's thread and connection."""
        if self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        thread, sync = self._thread, self._sync
        self._thread = self._sync = None  # anything written after this goes through the async engine
        if thread is not None:
            thread.shutdown(wait=True)
        if sync is not None:
            sync.dispose()

    async def _submit(self, write: _Write) -> Any:
        loop = asyncio.get_running_loop()
        self._queue.append(write)
        if self._flusher is None or self._flusher.done() or self._flusher.get_loop() is not loop:
            # the flush runs on its own: a caller that goes away (the platform hung up) does
            # not take the commit of the others, or its own, with it
            self._flusher = loop.create_task(self._flush())
        return await asyncio.shield(write.done)

    # ------------------------------------------------------------------ the flush
    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                results = await self._run(batch)
            except Exception:
                await self._one_by_one(batch)
                continue
            for write, result in zip(batch, results, strict=True):
                _settle(write.done, result)
                self._commit_done(write)

    async def _run(self, batch: list[_Write]) -> list[Any]:
        """Write a batch in one transaction; early rows are delivered (from whichever thread) as
        soon as they have their ids."""
        loop = asyncio.get_running_loop()
        sync, thread = self._sync, self._thread
        if sync is not None and thread is not None:

            def deliver_threadsafe(write: _Write, result: Any) -> None:
                loop.call_soon_threadsafe(self._delivered, write, result)

            def run_in_thread() -> list[Any]:
                with sync.begin() as connection:
                    return self._write_all(connection, batch, deliver_threadsafe)

            return await loop.run_in_executor(thread, run_in_thread)
        async with self._engine.begin() as connection:
            return await connection.run_sync(self._write_all, batch, self._delivered)

    def _delivered(self, write: _Write, result: Any) -> None:
        """An early row has its id: its caller goes on; its commit is awaited through `committed`."""
        stored, _is_new = result
        write.assigned_id = write.delivered_id = int(stored["id"])
        if write.committed is not None and not write.committed.done():
            self._pending_commits[write.delivered_id] = write.committed
        _settle(write.done, result)

    def _commit_done(self, write: _Write) -> None:
        if write.committed is not None:
            _settle(write.committed, None)
            if write.delivered_id is not None:
                self._pending_commits.pop(write.delivered_id, None)

    async def _one_by_one(self, batch: list[_Write]) -> None:
        for write in batch:
            delay = 0.05
            while True:
                try:
                    [result] = await self._run([write])
                except Exception as error:
                    if write.early and write.done.done() and not isinstance(error, IntegrityError):
                        # already delivered: it is written, whatever it takes
                        log.error("could not store delivered message %s; retrying: %r", write.assigned_id, error)
                        await asyncio.sleep(delay)
                        delay = min(RETRY_MAX_SECONDS, delay * 2)
                        continue
                    if write.early and write.done.done() and write.assigned_id is not None:
                        # its id was taken meanwhile (SQLite reuses a rolled-back rowid): store it anew
                        log.warning("message %s is stored under a new id: %r", write.assigned_id, error)
                        write.assigned_id = None
                        continue
                    _fail(write.done, error)
                    if write.committed is not None:
                        _fail(write.committed, error)
                        if write.delivered_id is not None:
                            self._pending_commits.pop(write.delivered_id, None)
                else:
                    _settle(write.done, result)
                    self._commit_done(write)
                break

    # ------------------------------------------------------------------ statements (any thread)
    def _write_all(self, connection: Connection, batch: list[_Write], deliver: Deliver) -> list[Any]:
        results = []
        for write in batch:
            if write.event is not None:
                self._write_transition(connection, write)
                results.append(None)
                continue
            result = self._write_message(connection, write)
            if write.early and not write.done.done():
                deliver(write, result)
            results.append(result)
        return results

    def _write_message(self, connection: Connection, write: _Write) -> tuple[dict[str, Any], bool]:
        values = write.values
        if write.assigned_id is not None:
            values = {**values, "id": write.assigned_id}
        channel_message_id = values.get("channel_message_id")
        statement = _INSERT if channel_message_id is None or self._upsert is None else self._upsert
        stored = connection.execute(statement, values).first()
        if stored is not None:
            return {**write.values, "id": stored.id, "created_at": stored.created_at}, True
        existing = connection.execute(_BY_CHANNEL_ID, values).mappings().one()
        return dict(existing), False

    @staticmethod
    def _write_transition(connection: Connection, write: _Write) -> None:
        values = dict(write.values)
        conversation_id = values.pop("id")
        connection.execute(_RECORD, {"b_id": conversation_id, "b_version": write.version, **values})
        connection.execute(_EVENT, {"conversation_id": conversation_id, **(write.event or {})})


# Built once: each batch's statements are found in the compiled cache, and the parameters are
# all that changes (little Python work while a batch holds SQLite's write lock).
_INSERT = insert(_TABLE).returning(*_RETURNED)
_UPSERTS = {
    name: dialect_insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["channel", "channel_message_id"])
    .returning(*_RETURNED)
    for name, dialect_insert in (("sqlite", sqlite.insert), ("postgresql", postgresql.insert))
}
_BY_CHANNEL_ID = select(_TABLE).where(
    _TABLE.c.channel == bindparam("channel"), _TABLE.c.channel_message_id == bindparam("channel_message_id")
)
_CONVERSATIONS = Conversation.__table__
# SET takes the columns the parameters name; only a newer version than the record's may change it
_RECORD = update(_CONVERSATIONS).where(
    _CONVERSATIONS.c.id == bindparam("b_id"),
    or_(_CONVERSATIONS.c.state_version.is_(None), _CONVERSATIONS.c.state_version < bindparam("b_version")),
)
_EVENT = insert(_EVENTS)


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # a caller gone meanwhile leaves no "never retrieved" warning


def _sqlite_sync_engine(engine: AsyncEngine) -> Engine:
    """A plain pysqlite engine on the same file, for the writer's thread; each batch takes the
    write lock at its BEGIN IMMEDIATE (so a batch never has to upgrade a read snapshot)."""
    sync = create_engine(
        engine.url.set(drivername="sqlite"),
        connect_args={"timeout": 30, "check_same_thread": False},
        pool_size=1,
        max_overflow=0,
    )

    @event.listens_for(sync, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, not by the driver
        cursor = dbapi_connection.cursor()
        # the same settings as the hub's own connections (core.db.make_engine)
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return sync


_writers: weakref.WeakKeyDictionary[AsyncEngine, MessageWriter] = weakref.WeakKeyDictionary()


def writer_for(engine: AsyncEngine) -> MessageWriter:
    """This process's writer for a database engine (shared by the transcript and the transitions)."""
    writer = _writers.get(engine)
    if writer is None:
        writer = _writers[engine] = MessageWriter(engine)
    return writer
