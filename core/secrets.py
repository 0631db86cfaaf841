"""The hub's secret key, and the secrets derived from it that every hub worker, the launcher and
Rasa's start-up share without another setting.

The key is `hub.secret_key` when one is configured. A published default (the old config.yml value)
is never used: without a configured key the first process to start generates a random one and keeps
it in `var/secret_key` (mode 0600); every later process on the machine reads the same file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from pathlib import Path

# Values that were published (config.yml, README) and so protect nothing.
PUBLISHED_KEYS = frozenset({"", "change-me-in-production", "changeme", "secret"})


def load_or_create_key(path: Path) -> str:
    """The key kept at `path`, created (random, 0600) when missing. Two workers starting at once
    agree: the file is created with O_EXCL, and the loser reads the winner's key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the winner may not have written it yet
            key = path.read_text(encoding="ascii").strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: delete it and start again") from None
    key = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key


def resolve_secret_key(configured: str | None, key_file: Path) -> str:
    """The configured key unless it is empty or published, else the generated one in `key_file`."""
    if configured is not None and str(configured).strip() not in PUBLISHED_KEYS:
        return str(configured).strip()
    return load_or_create_key(key_file)


def derive(secret_key: str, purpose: str, length: int = 40) -> str:
    """A token for one purpose, derived from the secret key (HMAC-SHA256, hex)."""
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).hexdigest()[:length]


def action_token(secret_key: str) -> str:
    """The token Rasa must present on the hub's action webhook (derived from the hub's secret,
    so every hub worker and the launcher agree without another setting)."""
    return derive(secret_key, "rasa-action-webhook")


def action_webhook_url(base_url: str, secret_key: str) -> str:
    """Where Rasa calls the hub's custom actions (Rasa keeps the query string)."""
    return f"{base_url.rstrip('/')}/actions/webhook?token={action_token(secret_key)}"


def rasa_api_token(secret_key: str) -> str:
    """The token the hub presents to Rasa's HTTP API (`rasa run --auth-token`)."""
    return derive(secret_key, "rasa-http-api", 48)


def public_visitor_id(secret_key: str, visitor_secret: str) -> str:
    """The id a web citizen is known by everywhere on the hub's side (conversations, screen-pop, board,
    exports), derived from the secret their browser keeps. Knowing it does not let anyone resume their
    chat: the hub derives it again from what a browser sends, so the public id itself leads elsewhere."""
    digest = hmac.new(secret_key.encode(), f"web-visitor:{visitor_secret}".encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def csrf_token(secret_key: str, session_token: str) -> str:
    """A staff session's CSRF token: bound to the session, so a sibling site that can set cookies
    on the bureau's domain still cannot forge one."""
    return derive(secret_key, f"csrf:{session_token}", 48)
