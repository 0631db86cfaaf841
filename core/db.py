"""The async storage engine: SQLite file by default, PostgreSQL when the URL says so."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.config import PROJECT_ROOT

LIKE_ESCAPE = "\\"


def like_escaped(text: str) -> str:
    """`text` with LIKE's wildcards (% _) and the escape character taken literally; use it with
    `.like(pattern, escape=LIKE_ESCAPE)` so that a search for "100%" or "a_b" means just that."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere (escaped: use with escape=LIKE_ESCAPE)."""
    return f"%{like_escaped(text)}%"


def async_url(url: str) -> str:
    """Turn an operator's plain URL into the async driver's (aiosqlite / asyncpg)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url[len("sqlite:///"):]
        path = Path(relative)
        if not path.is_absolute():
            path = PROJECT_ROOT / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{path}"
    if url.startswith("sqlite:////"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///"):]
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain):]
    return url


def sync_url(url: str) -> str:
    """The same database through a synchronous driver name Alembic's async env understands."""
    return async_url(url)


def make_engine(url: str) -> AsyncEngine:
    target = async_url(url)
    if target.startswith("sqlite"):
        engine = create_async_engine(target, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_async_engine(target, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
