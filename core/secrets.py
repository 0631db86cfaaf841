"""Secrets derived from the hub's secret key, shared by every hub worker, the launcher and Rasa's
start-up without another setting."""

from __future__ import annotations

import hashlib
import hmac


def action_token(secret_key: str) -> str:
    """The token Rasa must present on the hub's action webhook (derived from the hub's secret,
    so every hub worker and the launcher agree without another setting)."""
    return hmac.new(secret_key.encode(), b"rasa-action-webhook", hashlib.sha256).hexdigest()[:40]


def action_webhook_url(base_url: str, secret_key: str) -> str:
    """Where Rasa calls the hub's custom actions (Rasa keeps the query string)."""
    return f"{base_url.rstrip('/')}/actions/webhook?token={action_token(secret_key)}"
