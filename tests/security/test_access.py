"""Staff pages and sockets need a login with the right role; citizens' input is bounded."""

from __future__ import annotations

import httpx
import pytest
import websockets

from tests.conftest import RunningSystem


def test_staff_pages_redirect_to_login(system: RunningSystem) -> None:
    with httpx.Client(base_url=system.hub_url) as http:
        for page in ("/agent", "/kb"):
            reply = http.get(page, follow_redirects=False)
            assert reply.status_code in (302, 303)
            assert reply.headers["location"].startswith("/login?next=")
        assert http.get("/chat").status_code == 200


def test_login_refuses_bad_credentials_and_bad_bodies_in_chinese(system: RunningSystem) -> None:
    with httpx.Client(base_url=system.hub_url) as http:
        wrong = http.post("/api/login", json={"username": "agent1", "password": "nope"})
        assert wrong.status_code == 401 and wrong.json()["reason"] == "用户名或密码错误。"
        assert "zwkf_session" not in wrong.cookies
        assert http.post("/api/login", content=b"{", headers={"content-type": "application/json"}).status_code == 400
        assert http.post("/api/login", json={"username": "agent1"}).status_code == 400
        assert http.get("/api/me").status_code == 401
        assert http.get("/api/kb/entries").status_code == 401


def test_roles_limit_pages(system: RunningSystem) -> None:
    with httpx.Client(base_url=system.hub_url) as http:
        assert http.post("/api/login", json={"username": "editor1", "password": "editor1pass"}).status_code == 200
        assert http.get("/kb").status_code == 200
        assert http.get("/agent").status_code == 403
        me = http.get("/api/me").json()
        assert me["role"] == "kb_editor"
        http.post("/api/logout")
        assert http.get("/api/me").status_code == 401


async def test_agent_socket_refuses_anonymous_and_wrong_roles(system: RunningSystem) -> None:
    url = system.hub_url.replace("http://", "ws://") + "/ws/agent"
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 4401
    async with httpx.AsyncClient(base_url=system.hub_url) as http:
        token = (await http.post("/api/login", json={"username": "editor1", "password": "editor1pass"})).cookies[
            "zwkf_session"
        ]
    async with websockets.connect(url, additional_headers={"Cookie": f"zwkf_session={token}"}) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 4401


async def test_rasa_action_webhook_needs_the_token_and_rejects_garbage(system: RunningSystem) -> None:
    from core.config import load_settings
    from core.secrets import action_token

    call = {"next_action": "action_handoff", "sender_id": "someone-elses-conversation", "tracker": {}}
    async with httpx.AsyncClient(base_url=system.hub_url) as http:
        assert (await http.post("/actions/webhook", json=call)).status_code == 403
        assert (await http.post("/actions/webhook?token=guess", json=call)).status_code == 403
    token = action_token(load_settings().secret_key)
    async with httpx.AsyncClient(base_url=system.hub_url, params={"token": token}) as http:
        assert (await http.post("/actions/webhook", content=b"not json")).status_code == 400
        unknown = await http.post(
            "/actions/webhook", json={"next_action": "action_launch", "sender_id": "x", "tracker": {}}
        )
        assert unknown.status_code == 404
