"""Shared test plumbing: real Redis, real databases, real processes on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _test_redis_url() -> str:
    """The Redis the suite uses; a private one is started when none answers (a bare machine)."""
    from core.redis_server import redis_answers, start_private_redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
    if redis_answers(url):
        return url
    _process, private = start_private_redis(ROOT / "var" / "test-redis", port=free_port())
    return private.rsplit("/", 1)[0] + "/14"


DEFAULT_TEST_PG = "postgresql://postgres@127.0.0.1:5432/test"


def send_csrf_token(client: Any, login_reply: Any) -> None:
    """Staff API calls carry the session's CSRF token (hub/csrf.py) after a login, as the pages do."""
    client.headers["X-CSRF-Token"] = login_reply.cookies["zwkf_csrf"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}:"


_private_postgres: str | None = None


def postgres_admin_url() -> str:
    """The PostgreSQL the suite uses: TEST_DATABASE_URL when it answers, else a private cluster under
    var/test-postgres (ZWKF_TEST_PG_DIR), started once and stopped when the test process exits."""
    global _private_postgres
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_PG)
    if _private_postgres is not None:
        return _private_postgres
    from core.postgres_server import postgres_answers, start_private_postgres, stop_private_postgres

    if postgres_answers(url):
        return url
    import atexit

    data_dir = Path(os.environ.get("ZWKF_TEST_PG_DIR", ROOT / "var" / "test-postgres"))
    _private_postgres = start_private_postgres(data_dir)
    atexit.register(stop_private_postgres, data_dir)
    return _private_postgres


async def _pg(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_postgres_database() -> tuple[str | None, str]:
    """A fresh database on the PostgreSQL at TEST_DATABASE_URL: (url, "") or (None, why not)."""
    admin = postgres_admin_url()
    name = f"zwkf_test_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg(admin, f'CREATE DATABASE "{name}"'))
    except Exception as error:  # no server, no rights: the caller skips with this reason
        return None, f"no PostgreSQL at TEST_DATABASE_URL={admin} ({type(error).__name__}: {error})"
    base = admin.rsplit("/", 1)[0]
    return f"{base}/{name}", ""


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    try:
        asyncio.run(_pg(postgres_admin_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except Exception:
        pass


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def _spawn_hub(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "hub.serve", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_hub(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """One hub worker process, as production runs it."""
    proc = _spawn_hub(env, port, log_path)
    wait_http(f"http://127.0.0.1:{port}/health", proc=proc)
    return proc


def write_config(directory: Path, overrides: dict[str, dict]) -> Path:
    """A config.yml in `directory`: the default config with each section's keys replaced by
    `overrides` (e.g. {"handoff": {"auto_assign": True, "agent_capacity": 5}})."""
    import yaml

    from core.config import DEFAULT_CONFIG_PATH

    tree = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    for section, values in overrides.items():
        tree.setdefault(section, {}).update(values)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.yml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    return path


@dataclass
class Hubs:
    """Hub worker processes sharing one database and one Redis prefix (what `start_hubs` returns)."""

    urls: list[str]
    processes: list[subprocess.Popen[bytes]]

    def stop(self) -> None:
        for proc in self.processes:
            stop_process(proc)


def start_hubs(
    env: dict[str, str],
    count: int,
    log_dir: Path,
    *,
    name: str = "hub",
    config: dict[str, dict] | None = None,
    config_dir: Path | None = None,
) -> Hubs:
    """`count` hub workers on free ports with the same `env` (DATABASE_URL, REDIS_URL, the key
    prefix...), started together; logs in `log_dir/{name}{index}.log`. `config`: section overrides
    written to a config.yml (in `config_dir`, else in `log_dir`) that every worker reads.
    Stops the ones already started when one fails."""
    env = dict(env)
    if config:
        env["ZWKF_CONFIG"] = str(write_config(config_dir or log_dir / f"{name}-config", config))
    ports = [free_port() for _ in range(count)]
    hubs = Hubs([f"http://127.0.0.1:{port}" for port in ports], [])
    try:
        for index, port in enumerate(ports):
            hubs.processes.append(_spawn_hub(env, port, log_dir / f"{name}{index}.log"))
        for url, proc in zip(hubs.urls, hubs.processes, strict=True):
            wait_http(f"{url}/health", proc=proc)
    except BaseException:
        hubs.stop()
        raise
    return hubs


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


TEST_REDIS_URL = _test_redis_url()


class ChatClient:
    """A citizen's web chat, spoken over the real WebSocket protocol (tests and bench)."""

    def __init__(self, base_url: str, visitor_id: str | None = None) -> None:
        self.ws_url = base_url.replace("http://", "ws://") + "/ws/chat"
        self.visitor_id = visitor_id
        self.conversation_id: str | None = None
        self.history: list[dict] = []
        self.frames: list[dict] = []
        self._ws = None

    async def __aenter__(self) -> ChatClient:
        import websockets

        self._ws = await websockets.connect(self.ws_url, max_size=2**20)
        await self.send_frame({"type": "hello", "visitor_id": self.visitor_id})
        welcome = await self.next_frame("welcome")
        self.visitor_id = welcome["visitor_id"]
        self.conversation_id = welcome["conversation_id"]
        self.history = welcome["history"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()

    async def send_frame(self, frame: dict | str) -> None:
        import json

        await self._ws.send(frame if isinstance(frame, str) else json.dumps(frame, ensure_ascii=False))

    async def next_frame(self, kind: str | None = None, timeout: float = 15.0, where=None) -> dict:
        """The next frame of `kind` (others are kept in `frames`)."""
        import json

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind} frame within {timeout}s; saw {self.frames[-5:]}")
            frame = json.loads(await asyncio.wait_for(self._ws.recv(), left))
            self.frames.append(frame)
            if (kind is None or frame["type"] == kind) and (where is None or where(frame)):
                return frame

    async def say(self, text: str) -> dict:
        """Send a message; returns the ack's stored message."""
        client_id = uuid.uuid4().hex
        await self.send_frame({"type": "message", "text": text, "client_id": client_id})
        ack = await self.next_frame("ack", where=lambda f: f["client_id"] == client_id)
        return ack["message"]

    async def reply_from(self, sender: str, timeout: float = 15.0) -> dict:
        frame = await self.next_frame("message", timeout, where=lambda f: f["message"]["sender"] == sender)
        return frame["message"]

    async def ask(self, text: str) -> dict:
        """Send a question and wait for the bot's (or system's) first reply to it."""
        await self.say(text)
        frame = await self.next_frame("message", where=lambda f: f["message"]["sender"] in {"bot", "system"})
        return frame["message"]


class AgentClient:
    """An agent's console socket, logged in over the real HTTP API."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base_url = base_url
        self.username = username
        self.password = password
        self.frames: list[dict] = []
        self._ws = None

    async def __aenter__(self) -> AgentClient:
        import httpx
        import websockets

        async with httpx.AsyncClient(base_url=self.base_url) as http:
            reply = await http.post("/api/login", json={"username": self.username, "password": self.password})
            reply.raise_for_status()
            token = reply.cookies.get("zwkf_session")
        self._ws = await websockets.connect(
            self.base_url.replace("http://", "ws://") + "/ws/agent",
            additional_headers={"Cookie": f"zwkf_session={token}"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()

    async def send(self, frame: dict) -> None:
        import json

        await self._ws.send(json.dumps(frame, ensure_ascii=False))

    async def next_frame(self, kind: str, timeout: float = 15.0, where=None) -> dict:
        import json

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind} frame within {timeout}s; saw {self.frames[-5:]}")
            frame = json.loads(await asyncio.wait_for(self._ws.recv(), left))
            self.frames.append(frame)
            if frame["type"] == kind and (where is None or where(frame)):
                return frame


@contextlib.contextmanager
def system_database(tmp: Path) -> Iterator[str]:
    """A migrated database for a whole running system: SQLite in `tmp`, or a fresh database on the
    PostgreSQL at TEST_DATABASE_URL when TEST_SYSTEM_DB=postgresql (skipped with the reason when
    there is none)."""
    import pytest

    from core.migrate import upgrade

    pg_url = None
    if os.environ.get("TEST_SYSTEM_DB") == "postgresql":
        pg_url, why = create_postgres_database()
        if pg_url is None:
            pytest.skip(why)
    url = pg_url or f"sqlite:///{tmp / 'hub.db'}"
    upgrade(url)
    try:
        yield url
    finally:
        if pg_url:
            drop_postgres_database(pg_url)


async def event_kinds(database_url: str, conversation_id: str) -> list[str]:
    """The ownership transitions recorded for a conversation, in order (what QA will read)."""
    from sqlalchemy import select

    from core.db import make_engine
    from core.models import ConversationEvent

    engine = make_engine(database_url)
    try:
        async with engine.connect() as conn:
            statement = (
                select(ConversationEvent.kind)
                .where(ConversationEvent.conversation_id == conversation_id)
                .order_by(ConversationEvent.id)
            )
            return list((await conn.execute(statement)).scalars().all())
    finally:
        await engine.dispose()


# ---------------------------------------------------------------------------- spreadsheets


def xlsx_bytes(columns: list[str], rows: list[list[object]]) -> bytes:
    """An .xlsx file as an editor would upload it: a header row, then the rows (built with
    openpyxl directly, not with the hub's own writer under test)."""
    import io

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(columns)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def wait_for_import(client: Any, url: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll an import job's progress URL (as the page does) until it is done or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state: dict[str, Any] = (await client.get(url)).json()
        if state["state"] in ("done", "failed"):
            return state
        await asyncio.sleep(0.2)
    raise TimeoutError(url)
