"""Run the hub's web server alone: `python -m hub.serve [--port N] [--workers N]`.

Assumes the schema is migrated and Redis answers (hub.run does both).
"""

from __future__ import annotations

import argparse
import logging

from core.config import load_settings
from hub.app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--workers", type=int)
    args = parser.parse_args()
    settings = load_settings()
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or int(settings.get("hub.workers", 1))
    settings = settings.with_overrides({"hub.host": host, "hub.port": port})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # one INFO line per outgoing request costs ~150 µs on the hot path; warnings still show
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(settings)
    app.run(host=host, port=port, workers=workers, single_process=workers == 1, access_log=False, motd=False)


if __name__ == "__main__":
    main()
