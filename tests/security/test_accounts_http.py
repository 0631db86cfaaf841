"""User administration, sessions and login over HTTP, on two real hub workers sharing one Redis and
one database: what an administrator does on one worker holds on the other at once."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from tests.security.hubs import Running, running_hubs
from tests.support import send_csrf_token


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_hubs(tmp_path_factory.mktemp("accounts"), 2, {"accounts": {"login_max_failures": 3}}) as running:
        yield running


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=20)


def logged_in(url: str, username: str, password: str) -> httpx.Client:
    http = client(url)
    reply = http.post("/api/login", json={"username": username, "password": password})
    assert reply.status_code == 200, reply.text
    send_csrf_token(http, reply)
    return http


def test_the_session_cookie_is_httponly_and_samesite(hubs: Running) -> None:
    with client(hubs.url) as http:
        reply = http.post("/api/login", json={"username": "agent1", "password": "agent1pass"})
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie  # public URL is http


def test_the_cookie_is_secure_when_the_public_url_is_https(tmp_path: Path) -> None:
    with running_hubs(tmp_path, 1, {"hub": {"public_url": "https://kf.example.gov.cn"}}) as https_hub, \
            client(https_hub.url) as http:
        reply = http.post("/api/login", json={"username": "agent1", "password": "agent1pass"})
        assert reply.status_code == 200
        assert "secure" in reply.headers["set-cookie"].lower()
        # the public origin counts as the hub's own for the login CSRF check
        same = http.post("/api/login", json={"username": "agent1", "password": "agent1pass"},
                         headers={"Origin": "https://kf.example.gov.cn"})
        assert same.status_code == 200


def test_login_from_another_site_is_refused(hubs: Running) -> None:
    with client(hubs.url) as http:
        for headers in ({"Origin": "http://evil.test"}, {"Origin": "null"},
                        {"Referer": "http://127.0.0.1:1/phish.html"}):
            reply = http.post("/api/login", json={"username": "agent1", "password": "agent1pass"}, headers=headers)
            assert reply.status_code == 403 and "其他网站" in reply.json()["reason"], headers
            assert "zwkf_session" not in reply.cookies
        own = http.post("/api/login", json={"username": "agent1", "password": "agent1pass"},
                        headers={"Origin": hubs.url})
        assert own.status_code == 200


def test_a_too_long_password_is_a_401_not_a_500(hubs: Running) -> None:
    with client(hubs.url) as http:
        reply = http.post("/api/login", json={"username": "super1", "password": "密" * 100})
        assert reply.status_code == 401 and reply.json()["reason"] == "用户名或密码错误。"


def test_only_administrators_reach_user_administration(hubs: Running) -> None:
    with client(hubs.url) as anonymous:
        assert anonymous.get("/api/admin/users").status_code == 401
        assert anonymous.get("/api/admin/audit").status_code == 401
        page = anonymous.get("/admin/users", follow_redirects=False)
        assert page.status_code in (302, 303) and page.headers["location"] == "/login?next=/admin/users"
    for username in ("super1", "agent1", "editor1"):
        http = logged_in(hubs.url, username, f"{username}pass")
        assert http.get("/admin/users").status_code == 403
        assert http.get("/admin/audit").status_code == 403
        assert http.get("/api/admin/users").status_code == 403
        refused = http.post("/api/admin/users", json={"username": "x1", "display_name": "x", "role": "admin"})
        assert refused.status_code == 403
    admin = logged_in(hubs.url, "admin1", "admin1pass")
    assert admin.get("/admin/users").status_code == 200
    # an administrator holds every right: every staff page opens
    for page in ("/agent", "/kb", "/supervisor", "/tickets", "/admin/audit"):
        assert admin.get(page).status_code == 200, page


def test_a_new_colleague_from_creation_to_disabling(hubs: Running) -> None:
    admin = logged_in(hubs.url, "admin1", "admin1pass")
    bad = admin.post("/api/admin/users", json={"username": "坐席", "display_name": "x", "role": "agent"})
    assert bad.status_code == 400 and "用户名" in bad.json()["reason"]
    bad = admin.post("/api/admin/users", json={"username": "chen1", "display_name": "陈静", "role": "boss"})
    assert bad.status_code == 400 and "角色" in bad.json()["reason"]
    bad = admin.post("/api/admin/users", json={"username": "chen1", "display_name": "陈静", "role": "agent",
                                               "skill_groups": ["不存在"]})
    assert bad.status_code == 400 and "技能组" in bad.json()["reason"]
    created = admin.post("/api/admin/users", json={"username": "chen1", "display_name": "陈静", "role": "agent",
                                                   "skill_groups": ["社保"]})
    assert created.status_code == 201
    user, initial = created.json()["user"], created.json()["password"]
    assert user["must_change_password"] and user["skill_groups"] == ["社保"] and len(initial) >= 10
    assert admin.post("/api/admin/users", json={"username": "Chen1", "display_name": "x", "role": "agent"}
                      ).status_code == 409

    # first login (on the other worker): only the password change opens
    chen = client(hubs.hubs.urls[1])
    first = chen.post("/api/login", json={"username": "chen1", "password": initial})
    assert first.status_code == 200 and first.json()["must_change"] and first.json()["home"] == "/password"
    send_csrf_token(chen, first)
    assert chen.get("/api/me").status_code == 403
    assert chen.get("/agent", follow_redirects=False).status_code in (302, 303)
    assert chen.get("/password").status_code == 200
    weak = chen.post("/api/password", json={"current": initial, "new": "chen1chen1"})
    assert weak.status_code == 400 and "用户名" in weak.json()["reason"]
    assert chen.post("/api/password", json={"current": initial, "new": "Shebao-chen-2026"}).status_code == 200
    assert chen.get("/api/me").json()["username"] == "chen1"
    assert chen.get("/agent").status_code == 200

    # role, skill groups, name
    changed = admin.patch(f"/api/admin/users/{user['id']}", json={"role": "supervisor", "skill_groups": []})
    assert changed.status_code == 200 and changed.json()["user"]["role"] == "supervisor"
    assert chen.get("/api/me").status_code == 401  # a role change ends the old sessions
    chen = logged_in(hubs.hubs.urls[1], "chen1", "Shebao-chen-2026")
    assert chen.get("/api/me").json()["role"] == "supervisor"

    # disabled on worker 0: out at once on worker 1, and no new login
    assert admin.patch(f"/api/admin/users/{user['id']}", json={"active": False}).status_code == 200
    assert chen.get("/api/me").status_code == 401
    refused = client(hubs.url).post("/api/login", json={"username": "chen1", "password": "Shebao-chen-2026"})
    assert refused.status_code == 403 and "停用" in refused.json()["reason"]
    assert admin.patch(f"/api/admin/users/{user['id']}", json={"active": True}).status_code == 200
    assert logged_in(hubs.url, "chen1", "Shebao-chen-2026").get("/api/me").status_code == 200

    # a reset password: sessions end, the new one-time password must be changed again
    reset = admin.post(f"/api/admin/users/{user['id']}/reset-password", json={})
    assert reset.status_code == 200
    again = client(hubs.url).post("/api/login", json={"username": "chen1", "password": reset.json()["password"]})
    assert again.json()["must_change"]

    # an administrator cannot lock themself out
    me = admin.get("/api/me").json()
    assert admin.patch(f"/api/admin/users/{me['id']}", json={"active": False}).status_code == 400
    assert admin.patch(f"/api/admin/users/{me['id']}", json={"role": "agent"}).status_code == 400

    audit = admin.get("/api/admin/audit", params={"q": f"user:{user['id']}"}).json()["items"]
    actions = [row["action"] for row in audit]
    for action in ("user_create", "password_change", "user_update", "user_disable", "user_enable",
                   "password_reset", "login"):
        assert action in actions, action
    disable = next(row for row in audit if row["action"] == "user_disable")
    assert disable["actor"] == "admin1" and disable["ip"] == "127.0.0.1"


def test_lock_out_is_shown_and_lifted_by_an_administrator(hubs: Running) -> None:
    with client(hubs.url) as http:
        for _ in range(3):
            assert http.post("/api/login", json={"username": "agent2", "password": "not-it"}).status_code == 401
        locked = http.post("/api/login", json={"username": "agent2", "password": "agent2pass"})
        assert locked.status_code == 429 and "锁定" in locked.json()["reason"]
    admin = logged_in(hubs.hubs.urls[1], "admin1", "admin1pass")
    agent2 = next(u for u in admin.get("/api/admin/users").json()["items"] if u["username"] == "agent2")
    assert agent2["locked_seconds"] and agent2["locked_seconds"] > 0
    assert admin.post(f"/api/admin/users/{agent2['id']}/unlock", json={}).status_code == 200
    assert logged_in(hubs.url, "agent2", "agent2pass").get("/api/me").status_code == 200
    actions = [r["action"] for r in admin.get("/api/admin/audit", params={"q": f"user:{agent2['id']}"}).json()["items"]]
    assert actions[:2] == ["login", "unlock"] and actions.count("login_failed") == 3 and "login_locked" in actions


def test_logout_ends_the_session_on_both_workers(hubs: Running) -> None:
    http = logged_in(hubs.url, "editor1", "editor1pass")
    other = client(hubs.hubs.urls[1])
    other.cookies.set("zwkf_session", http.cookies["zwkf_session"])
    assert other.get("/api/me").status_code == 200
    second = logged_in(hubs.hubs.urls[1], "editor1", "editor1pass")
    assert http.post("/api/logout").status_code == 200
    assert other.get("/api/me").status_code == 401 and second.get("/api/me").status_code == 401


def test_the_audit_log_searches_and_exports_to_excel(hubs: Running) -> None:
    client(hubs.url).post("/api/login", json={"username": "nobody-here", "password": "whatever-it-is"},
                          headers={"X-Request-Id": "audit-test-1"})
    admin = logged_in(hubs.url, "admin1", "admin1pass")
    failed = admin.get("/api/admin/audit", params={"action": "login_failed", "actor": "nobody-here"}).json()
    assert failed["total"] == 1 and failed["items"][0]["detail"]["reason"] == "bad_password"
    assert admin.get("/api/admin/audit", params={"since": "2026-13-01"}).status_code == 400
    export = admin.get("/api/admin/audit/export", params={"action": "login_failed"})
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(export.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:6] == ("时间", "用户", "操作", "操作代码", "对象", "IP 地址")
    assert any(r[1] == "nobody-here" and r[2] == "登录失败" for r in rows[1:])
    assert {r[3] for r in rows[1:]} == {"login_failed"}
    exported = admin.get("/api/admin/audit", params={"action": "audit_export"}).json()["items"]
    assert exported and exported[0]["actor"] == "admin1"
    # the failed login's log line is JSON and carries the caller's request id
    import json

    lines = [json.loads(line) for line in hubs.log(0).splitlines() if line.startswith("{")]
    assert any(line.get("request_id") == "audit-test-1" and "failed login" in line["msg"] for line in lines)


def test_kb_publishing_and_exports_are_in_the_audit_log(hubs: Running) -> None:
    editor = logged_in(hubs.url, "editor1", "editor1pass")
    entry = editor.get("/api/kb/entries", params={"status": "published"}).json()["items"][0]
    assert editor.post(f"/api/kb/entries/{entry['id']}/status", json={"status": "draft"}).status_code == 200
    assert editor.post(f"/api/kb/entries/{entry['id']}/status", json={"status": "published"}).status_code == 200
    assert editor.get("/api/kb/export", params={"format": "xlsx"}).status_code == 200
    admin = logged_in(hubs.hubs.urls[1], "admin1", "admin1pass")
    rows = admin.get("/api/admin/audit", params={"actor": "editor1"}).json()["items"]
    publishes = [r for r in rows if r["action"] == "kb_publish"]
    assert len(publishes) == 2 and all(entry["id"] in r["detail"]["ids"] for r in publishes)
    export = next(r for r in rows if r["action"] == "kb_export")
    assert export["detail"]["count"] >= 100 and export["ip"] == "127.0.0.1"
