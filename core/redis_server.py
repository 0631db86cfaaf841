"""Start a private Redis when none answers at the configured URL (the embedded default)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def start_private_redis(data_dir: Path, port: int = 6399) -> tuple[subprocess.Popen[bytes], str]:
    """Run `redis-server` on loopback with its files under `data_dir`; returns (process, url)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "没有找到 redis-server：请安装 Redis（Debian: apt-get install redis-server）或设置 REDIS_URL。"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "60 1",
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if redis_answers(url):
            return process, url
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"redis-server did not start; see {data_dir / 'redis.log'}")
