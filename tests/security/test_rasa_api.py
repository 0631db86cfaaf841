"""Rasa's HTTP API answers only the hub (issue #12, Security 9): a token on every API route,
no wildcard CORS, bound to loopback unless the operator says otherwise."""

from __future__ import annotations

import httpx

from bot.server import rasa_command
from core.config import load_settings
from tests.conftest import RunningSystem


def test_rasa_runs_on_loopback_with_a_token_and_no_cors() -> None:
    command = rasa_command(__import__("pathlib").Path("model.tar.gz"), 5005)
    assert command[command.index("-i") + 1] == "127.0.0.1"
    assert "--cors" not in command
    token = command[command.index("--auth-token") + 1]
    assert token == load_settings().rasa_token and len(token) >= 32


def test_without_the_token_trackers_and_execute_answer_401(system: RunningSystem) -> None:
    with httpx.Client(base_url=system.rasa_url, timeout=30) as rasa:
        assert rasa.get("/conversations/some-citizen/tracker").status_code == 401
        assert rasa.get("/conversations/some-citizen/tracker", params={"token": "guess"}).status_code == 401
        execute = {"name": "action_handoff"}
        assert rasa.post("/conversations/some-citizen/execute", json=execute).status_code == 401
        assert rasa.put("/model", json={"model_file": "x.tar.gz"}).status_code == 401
        assert rasa.get("/status").status_code == 401
        # the hub's token opens the API (so the 401s above are the token, not a broken route)
        token = load_settings().rasa_token
        assert rasa.get("/status", params={"token": token}).status_code == 200
        tracker = rasa.get("/conversations/some-citizen/tracker", params={"token": token})
        assert tracker.status_code == 200 and tracker.json()["sender_id"] == "some-citizen"


def test_no_page_of_another_origin_may_call_rasa_from_a_browser(system: RunningSystem) -> None:
    with httpx.Client(base_url=system.rasa_url, timeout=30) as rasa:
        origin = {"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"}
        preflight = rasa.options("/webhooks/rest/webhook", headers=origin)
        assert preflight.headers.get("access-control-allow-origin") in (None, "")
        plain = rasa.get("/", headers={"Origin": "http://evil.test"})
        assert plain.headers.get("access-control-allow-origin") in (None, "")
