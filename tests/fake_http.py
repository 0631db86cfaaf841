"""Local HTTP servers that stand in for services on the internet (and for Rasa where a test
needs a scripted bot): a threaded stdlib server, a JSON handler base, and the fake Rasa."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # the hub opens dozens of keep-alive connections at once under load


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[FakeServer, threading.Thread]:
    """Serve `handler` on a free loopback port in a daemon thread."""
    server = FakeServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK hold every response back about 40 ms
    disable_nagle_algorithm = True

    def log_message(self, *_args: Any) -> None:
        return None

    def _json(self, payload: Any, status: int = 200) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class FakeRasa:
    """Rasa's REST webhook, scripted for channel tests (the real model is tested elsewhere):

    - a text with 慢 → sleeps `slow_seconds` first (else `delay_seconds`);
    - a text with 人工 → HTTP 500 (the hub treats Rasa as down and queues the citizen for an agent);
    - a text with 按钮 → a reply with quick-reply buttons [{title, payload}];
    - a text with 知识 → a KB-style answer followed by its `zwkf_meta` custom payload;
    - anything else → `收到：<text>`, and a second reply when the text has 两条.
    """

    def __init__(self, slow_seconds: float = 1.5, delay_seconds: float = 0.0) -> None:
        self.slow_seconds = slow_seconds
        self.delay_seconds = delay_seconds
        self.received: list[str] = []
        self._lock = threading.Lock()
        self._server: FakeServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def replies(self, text: str, sender: Any) -> tuple[int, Any]:
        if "人工" in text:
            return 500, {"status": "failure", "message": "fake outage"}
        if "按钮" in text:
            buttons = [{"title": "办理居住证", "payload": "/ask_residence"}, {"title": "转人工", "payload": "转人工"}]
            return 200, [{"recipient_id": sender, "text": "请选择您要办理的事项：", "buttons": buttons}]
        if "知识" in text:
            meta = {"zwkf_meta": {"kb_entry_id": "D001", "kb_score": 0.91}}
            return 200, [
                {"recipient_id": sender, "text": "居住证可在居住地派出所办理。"},
                {"recipient_id": sender, "custom": meta},
            ]
        replies = [{"recipient_id": sender, "text": f"收到：{text}"}]
        if "两条" in text:
            replies.append({"recipient_id": sender, "text": "这是第二条回复。"})
        return 200, replies

    def start(self) -> FakeRasa:
        fake = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:  # noqa: N802
                self._json({"model_file": "fake.tar.gz"})

            def do_POST(self) -> None:  # noqa: N802
                data = json.loads(self._body() or b"{}")
                text = str(data.get("message", ""))
                with fake._lock:
                    fake.received.append(text)
                if "慢" in text:
                    time.sleep(fake.slow_seconds)
                elif fake.delay_seconds:
                    time.sleep(fake.delay_seconds)
                status, payload = fake.replies(text, data.get("sender"))
                self._json(payload, status)

        self._server, _thread = serve(Handler)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
