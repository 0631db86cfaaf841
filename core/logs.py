"""JSON log lines with the request id of the HTTP request they were written in.

The hub's request middleware (hub/routes/ops.py) puts each request's id (the caller's X-Request-Id,
else a new one) in `request_id`; every log record written while that request is handled carries it,
so an operator follows one request through the logs of every worker.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str] = ContextVar("request_id", default="")
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_from(header: str | None) -> str:
    """The caller's id when it is a sane token (no log injection), else a fresh one."""
    if header and _GOOD_ID.match(header):
        return header
    return uuid.uuid4().hex


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", "") or request_id.get()
        if rid:
            line["request_id"] = rid
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def use_json_logs() -> None:
    """Every handler of the root logger writes JSON lines (one is added when there is none)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
        root.setLevel(logging.INFO)
    for name in ("", "sanic.root", "sanic.error", "sanic.server", "sanic.access"):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            handler.setFormatter(JsonFormatter())
        if name and logger.handlers:
            logger.propagate = False  # its own handler writes it: not a second time through the root
