"""Start a private Redis when none answers at the configured URL (the embedded default)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit


def _command(*words: str) -> bytes:
    """One Redis command in RESP (a password may hold any character)."""
    parts = [b"*%d\r\n" % len(words)]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    """A Redis answers at `url`: with the URL's password (and user) when it has one, else without
    (a server that wants a password the URL does not give still counts: someone runs it)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout) as conn:
            if parts.password is not None:
                user = [unquote(parts.username)] if parts.username else []
                conn.sendall(_command("AUTH", *user, unquote(parts.password)))
                if not conn.recv(64).startswith(b"+OK"):
                    return False
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def start_private_redis(
    data_dir: Path, port: int = 6399, password: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Run `redis-server` on loopback with its files under `data_dir`; returns (process, url).
    With `password` it requires it (`requirepass`, written to redis-server's stdin: in no file and
    not on a command line other local users can read) and the URL carries it."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(
            "没有找到 redis-server：请安装 Redis（Debian: apt-get install redis-server）或设置 REDIS_URL。"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            binary,
            "-",  # the rest of the configuration from stdin
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
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdin is not None
    if password:
        escaped = password.replace("\\", "\\\\").replace('"', '\\"')
        process.stdin.write(f'requirepass "{escaped}"\n'.encode())
    process.stdin.close()
    auth = f":{quote(password, safe='')}@" if password else ""
    url = f"redis://{auth}127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if redis_answers(url):
            return process, url
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"redis-server did not start; see {data_dir / 'redis.log'}")
