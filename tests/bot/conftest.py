"""A real Rasa server with the real trained model, plus a tiny action server.

The action server is a stdlib HTTP server in a thread that dispatches to a swappable
ActionRegistry, so tests exercise bot.actions against the real Rasa 3.6 protocol
without starting the hub.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.actions import ActionRegistry
from tests.support import ROOT, free_port

TEST_RASA_REDIS_URL = "redis://127.0.0.1:6379/15"
FIXTURES = Path(__file__).parent / "fixtures"


class ActionStub:
    """Serves POST /actions/webhook from ``self.registry`` (tests may replace it)."""

    def __init__(self) -> None:
        self.registry = ActionRegistry()
        self.calls: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.calls.append(payload)
                status, body = asyncio.run(stub.registry.handle_http(payload))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.url = f"http://127.0.0.1:{self.port}/actions/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def action_stub() -> Iterator[ActionStub]:
    stub = ActionStub()
    yield stub
    stub.close()


@pytest.fixture(scope="session")
def rasa_server(action_stub: ActionStub) -> Iterator[str]:
    """Base URL of a Rasa server on a free port: real model, trackers in Redis db 15."""
    from bot import ensure_model, start_rasa, wait_ready
    from bot.server import stop_rasa

    model = ensure_model()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_rasa(
        model,
        port,
        action_stub.url,
        TEST_RASA_REDIS_URL,
        ROOT / "var" / "test-logs" / f"rasa-bot-{port}.log",
        key_prefix=f"zwkftest{port}",
    )
    try:
        wait_ready(url, timeout=240, proc=proc)
        yield url
    finally:
        stop_rasa(proc)


@pytest.fixture
def action_payload() -> dict:
    """A request Rasa 3.6.21 really sent for action_kb_answer (captured, REST channel)."""
    return json.loads((FIXTURES / "action_call_kb_answer.json").read_text(encoding="utf-8"))
