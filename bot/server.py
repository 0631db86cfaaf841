"""Start the Rasa server (its own Python 3.10 venv) as a child process of the hub tooling.

The hub never imports Rasa: it starts ``rasa run`` here and talks to it over HTTP
(bot/client.py), while Rasa calls back into the hub's action webhook. Rasa reads Redis and
the action URL from environment variables referenced by bot/endpoints.yml.

    python -m bot.server [--port 5005]   # train or reuse the model, run Rasa in the foreground
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit

from bot.training import BOT_DIR, REPO_DIR, ensure_model, rasa_executable

DEFAULT_PORT = 5005
DEFAULT_ACTION_URL = "http://127.0.0.1:8000/actions/webhook"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class RasaStartError(RuntimeError):
    """Rasa exited or did not load its model in time; see its log file."""


def redis_env(redis_url: str, key_prefix: str | None = None) -> dict[str, str]:
    """Split a redis:// URL into the variables bot/endpoints.yml references.

    Every variable is always set (possibly empty): Rasa refuses to start on an unset ${VAR}.
    """
    parts = urlsplit(redis_url)
    if parts.scheme not in ("redis", ""):
        raise ValueError(f"only redis:// URLs are supported for Rasa's stores, got {redis_url!r}")
    db = (parts.path or "/0").lstrip("/") or "0"
    prefix = key_prefix or os.environ.get("RASA_REDIS_KEY_PREFIX") or "zwkf"
    if not prefix.isalnum():
        raise ValueError(f"RASA_REDIS_KEY_PREFIX must be alphanumeric, got {prefix!r}")
    return {
        "REDIS_HOST": parts.hostname or "127.0.0.1",
        "REDIS_PORT": str(parts.port or 6379),
        "REDIS_DB": db,
        "REDIS_PASSWORD": unquote(parts.password or ""),
        "RASA_REDIS_KEY_PREFIX": prefix,
    }


def hub_rasa_token() -> str:
    """The token the hub's config gives Rasa's HTTP API (core.config.Settings.rasa_token: configured,
    or derived from the hub's secret key, which is generated on first start: never a published value)."""
    from core.config import load_settings

    return load_settings().rasa_token


def rasa_command(model: Path, port: int, host: str = "127.0.0.1", token: str | None = None) -> list[str]:
    """``rasa run`` with the HTTP API on, behind a token and without CORS headers (no page of
    another origin may call it from a browser).

    Bound to localhost by default, so only the hub (same machine) reaches it unless
    ZWKF_RASA_HOST says so. The token guards the API (trackers, /execute, PUT /model); the
    REST channel (/webhooks/rest/webhook) has no token in Rasa, which is why the port must stay
    private (README: "Keeping Rasa private").
    """
    return [
        str(rasa_executable()), "run",
        "--enable-api", "--auth-token", token or hub_rasa_token(),
        "-i", host, "-p", str(port),
        "-m", str(model),
        "--endpoints", str(BOT_DIR / "endpoints.yml"),
        "--credentials", str(BOT_DIR / "credentials.yml"),
    ]  # fmt: skip


def rasa_env(action_url: str, redis_url: str, key_prefix: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(redis_env(redis_url, key_prefix))
    env["ACTION_ENDPOINT_URL"] = action_url
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("PYTHONWARNINGS", "ignore")  # Rasa's deps' deprecation noise
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("SANIC_WORKERS", "1")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")  # Rasa pins SQLAlchemy 1.4
    return env


def start_rasa(
    model: Path,
    port: int,
    action_url: str,
    redis_url: str,
    log_path: Path,
    *,
    key_prefix: str | None = None,
    token: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start Rasa in the background, output to ``log_path``; returns at once.

    The hub may not be up yet: Rasa only calls the action URL when a custom action runs.
    The child gets its own process group so stop_rasa() also ends anything it spawned.
    ``key_prefix`` (alphanumeric) namespaces Rasa's Redis keys, e.g. for tests. ``token``: the
    HTTP API's token (default: the hub's, ``hub_rasa_token``).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    host = os.environ.get("ZWKF_RASA_HOST", "127.0.0.1")
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            rasa_command(model, port, host, token),
            cwd=str(REPO_DIR),
            env=rasa_env(action_url, redis_url, key_prefix),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_ready(
    url: str, timeout: float = 120.0, proc: subprocess.Popen[bytes] | None = None, token: str | None = None
) -> dict[str, object]:
    """Poll ``GET {url}/status`` (with the API token) until Rasa reports a loaded model; returns that status.

    Loading TensorFlow and the model takes 10-30 s. Fails fast when ``proc`` has exited.
    """
    deadline = time.monotonic() + timeout
    status_url = url.rstrip("/") + "/status?" + urlencode({"token": token or hub_rasa_token()})
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RasaStartError(f"Rasa exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(status_url, timeout=5) as resp:
                body = json.loads(resp.read().decode("utf-8") or "{}")
            if body.get("model_file") or body.get("model_id"):
                return body
            last_error = f"no model loaded yet: {body}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            last_error = str(exc)
        time.sleep(0.5)
    raise RasaStartError(f"Rasa at {url} not ready after {timeout:.0f}s ({last_error})")


def stop_rasa(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group, SIGKILL if it does not exit within ``timeout``."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


def _hub_action_url() -> str:
    """The running hub's action webhook with its token (run from the project, beside the hub)."""
    try:
        from core.config import load_settings
        from core.secrets import action_webhook_url
    except ImportError:
        return DEFAULT_ACTION_URL
    settings = load_settings()
    return action_webhook_url(settings.public_url, settings.secret_key)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train or reuse the model and run Rasa.")
    parser.add_argument("--port", type=int, default=int(os.environ.get("RASA_PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--action-url",
        default=os.environ.get("ACTION_ENDPOINT_URL") or _hub_action_url(),
        help="the hub's action webhook, with its token (default: from the hub's config.yml)",
    )
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
    parser.add_argument("--model", type=Path, help="model .tar.gz (default: ensure_model())")
    args = parser.parse_args(argv)

    model = args.model or ensure_model()
    host = os.environ.get("ZWKF_RASA_HOST", "127.0.0.1")
    print(f"[bot.server] rasa on http://{host}:{args.port} model={model}", file=sys.stderr)
    proc = subprocess.Popen(
        rasa_command(model, args.port, host, hub_rasa_token()),
        cwd=str(REPO_DIR),
        env=rasa_env(args.action_url, args.redis_url),
    )
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        return proc.wait()


if __name__ == "__main__":
    raise SystemExit(main())
