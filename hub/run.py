"""Start the whole system: `python -m hub.run` (what `make run` calls after setup).

Redis (a private one when none answers at REDIS_URL), the database schema, demo data,
the Rasa model (trained once, cached by a hash of its training data), the Rasa server
and the hub. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot import ensure_model, start_rasa, stop_rasa, wait_ready
from core.config import PROJECT_ROOT, load_settings
from core.migrate import upgrade
from core.redis_server import redis_answers, start_private_redis
from core.secrets import action_webhook_url, derive
from hub.seed import published_questions, run_seed

VAR = PROJECT_ROOT / "var"


def say(text: str) -> None:
    print(f"[run] {text}", flush=True)


def main() -> int:
    settings = load_settings()
    children: list[subprocess.Popen[bytes]] = []
    if not redis_answers(settings.redis_url):
        say(f"no Redis at {settings.redis_url}; starting one under var/redis")
        # a password even on loopback: another local user or a browser's page cannot use it
        process, url = start_private_redis(VAR / "redis", password=derive(settings.secret_key, "private-redis"))
        children.append(process)
        os.environ["REDIS_URL"] = url
        settings = load_settings()
    say("database schema")
    upgrade(settings.database_url)
    say(f"demo data: {run_seed(settings)}")
    import asyncio

    model = ensure_model(asyncio.run(published_questions(settings)))
    rasa_url = settings.rasa_url
    rasa_port = int(rasa_url.rsplit(":", 1)[-1].split("/")[0])
    action_url = action_webhook_url(settings.public_url, settings.secret_key)
    say(f"starting Rasa on {rasa_url} (loading the model takes ~20 s)")
    rasa = start_rasa(
        Path(model), rasa_port, action_url, settings.redis_url, VAR / "log" / "rasa.log", token=settings.rasa_token
    )
    hub = subprocess.Popen([sys.executable, "-m", "hub.serve"], cwd=PROJECT_ROOT, env=dict(os.environ))
    children.append(hub)

    def shutdown(*_args: object) -> None:
        say("stopping")
        stop_rasa(rasa)
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, shutdown)
    try:
        wait_ready(rasa_url, timeout=180, proc=rasa, token=settings.rasa_token)
        base = settings.public_url.rstrip("/")
        say("ready:")
        print(f"  市民在线咨询 (web chat):   {base}/chat", flush=True)
        print(f"  坐席工作台 (agent console): {base}/agent   (demo: agent1 / agent1pass)", flush=True)
        print(f"  知识库 (KB editor):        {base}/kb      (demo: editor1 / editor1pass)", flush=True)
        print(f"  班长看板 (supervisor):     {base}/supervisor (demo: super1 / super1pass)", flush=True)
        print(f"  工单 (tickets):            {base}/tickets  (agents and supervisors)", flush=True)
        print(f"  通话记录 (call records):   {base}/calls", flush=True)
        if settings.get("voice.enabled"):  # the SIP user agent starts in one hub worker (hub/voice_path.py)
            hotline = f"sip:{settings.get('voice.hotline_user')}@{settings.get('voice.sip_listen')}"
            print(f"  热线 (hotline, SIP/UDP):   {hotline}", flush=True)
        print(f"  Rasa server:               {rasa_url}   logs: var/log/", flush=True)
        while hub.poll() is None and rasa.poll() is None:
            time.sleep(1)
        say("a process exited; stopping the rest")
    except KeyboardInterrupt:
        pass
    shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
