"""Start a private PostgreSQL (Debian's `postgresql` package) when none answers, as core.redis_server
does for Redis: the test suite's PostgreSQL runs never skip for want of a server.

The cluster lives in a data directory of its own (initdb once, reused), listens on 127.0.0.1 only
with trust authentication for the `postgres` role, and is stopped by `stop_private_postgres`.
PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` system user the
package creates (its directory must be reachable by that user: /tmp or var/ under a 0755 tree).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

PORT_FILE = "zwkf-port"


def postgres_answers(url: str, timeout: float = 1.0) -> bool:
    """Something accepts connections at the URL's host and port (a PostgreSQL, we assume)."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=timeout):
            return True
    except OSError:
        return False


def postgres_bin() -> Path | None:
    """The newest installed server's bin directory (/usr/lib/postgresql/<major>/bin), or PATH's."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_private_postgres(data_dir: Path, port: int | None = None) -> str:
    """Run (or find running) a private cluster in `data_dir`; returns its admin URL
    (postgresql://postgres@127.0.0.1:<port>/postgres)."""
    binaries = postgres_bin()
    if binaries is None:
        raise SystemExit(
            "没有找到 PostgreSQL：请安装 Debian 的 postgresql 软件包"
            "（apt-get install postgresql）或设置 TEST_DATABASE_URL。"
        )
    port_file = data_dir / PORT_FILE
    if port_file.exists():
        url = f"postgresql://postgres@127.0.0.1:{port_file.read_text().strip()}/postgres"
        if postgres_answers(url):
            return url
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(data_dir, owner.pw_uid, owner.pw_gid)
    data_dir.chmod(0o700)
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            _as_owner([str(binaries / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust",
                       "-E", "UTF8", "--no-locale"]),
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
    port = port or _free_port()
    options = f"-p {port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_owner([str(binaries / "pg_ctl"), "-D", str(data_dir), "-l", str(data_dir / "server.log"),
                   "-o", options, "-w", "-t", "60", "start"]),
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    port_file.write_text(str(port))
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def stop_private_postgres(data_dir: Path) -> None:
    binaries = postgres_bin()
    if binaries is None or not (data_dir / "postmaster.pid").exists():
        return
    subprocess.run(
        _as_owner([str(binaries / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"]),
        check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
