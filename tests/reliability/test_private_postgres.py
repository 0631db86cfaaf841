"""With no PostgreSQL at TEST_DATABASE_URL, the suite starts a private one (Debian's package) instead of
skipping: proven in a fresh process pointed at a dead port."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from core.postgres_server import postgres_answers
from tests.support import ROOT, free_port

SCRIPT = """
from core.migrate import upgrade
from tests.support import create_postgres_database, drop_postgres_database

url, why = create_postgres_database()
assert url is not None, why
upgrade(url)
print("URL", url)
import asyncio, asyncpg

async def tables():
    conn = await asyncpg.connect(url)
    try:
        return sorted(r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    finally:
        await conn.close()

print("TABLES", ",".join(asyncio.run(tables())))
drop_postgres_database(url)
"""


def test_a_dead_test_database_url_gets_a_private_postgresql() -> None:
    dead = free_port()
    assert not postgres_answers(f"postgresql://postgres@127.0.0.1:{dead}/test")
    # /tmp, not pytest's 0700 tmp_path: as root the cluster belongs to the postgres user
    parent = Path(tempfile.mkdtemp(prefix="zwkf-pg-test-"))
    parent.chmod(0o755)
    data_dir = parent / "data"
    env = {**os.environ, "TEST_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{dead}/test",
           "ZWKF_TEST_PG_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    url = next(line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("URL "))
    tables = next(line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("TABLES "))
    assert f":{dead}/" not in url and url.startswith("postgresql://postgres@127.0.0.1:")
    assert {"users", "audit_log", "messages", "alembic_version"} <= set(tables.split(","))
    # the private server is stopped when the process that started it exits
    assert not postgres_answers(url)
    assert (data_dir / "PG_VERSION").exists()


def teardown_module() -> None:
    import shutil

    for leftover in Path(tempfile.gettempdir()).glob("zwkf-pg-test-*"):
        shutil.rmtree(leftover, ignore_errors=True)
