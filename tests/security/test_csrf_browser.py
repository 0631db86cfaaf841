"""Cross-site request forgery and WebSocket hijacking, proven in Chromium (issue #12, Security 3).

A logged-in KB editor (and a logged-in agent) visit an attacker's page: first one on another port of
the hub's own host (same-site: the session cookie rides along), then one on a sibling host of the
bureau's domain (hub.bureau.test vs evil.bureau.test, mapped to 127.0.0.1 by Chromium's resolver),
which also tosses a forged CSRF cookie onto the parent domain. The page fires every request a
browser lets it fire at the hub's KB API and opens /ws/agent. Nothing changes in the KB, the socket
is closed with 4403 before any frame, and the hub's own pages still do the same things.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.conftest import RunningSystem
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DEFAULT_TIMEOUT_MS
from tests.e2e.helpers import log_in
from tests.support import free_port, send_csrf_token

ATTACK = """<!doctype html><meta charset="utf-8"><title>优惠活动</title><body>
<iframe name="sink" style="display:none"></iframe>
<script type="module">
const hub = %(hub)s, id = %(entry)s, branch = %(branch)s, question = %(question)s;
const results = {frames: []};
async function attempt(name, call) {
  try { const r = await call(); results[name] = r && r.type === "opaque" ? "sent" : `status ${r && r.status}`; }
  catch (e) { results[name] = `blocked: ${e.name}`; }
}
// a tossed cookie on the parent domain (works only from a sibling host): double-submit would trust it
document.cookie = "zwkf_csrf=forged-by-sibling; domain=bureau.test; path=/";
const text = (body) => ({method: "POST", mode: "no-cors", credentials: "include",
  headers: {"Content-Type": "text/plain"}, body: JSON.stringify(body)});
await attempt("create", () => fetch(`${hub}/api/kb/entries`,
  text({branch_id: branch, question, answer: "<p>假答案</p>"})));
await attempt("archive", () => fetch(`${hub}/api/kb/entries/${id}/status`, text({status: "archived"})));
await attempt("bulk_delete", () => fetch(`${hub}/api/kb/bulk`, text({action: "delete", ids: [id]})));
await attempt("delete", () => fetch(`${hub}/api/kb/entries/${id}`, {method: "DELETE", credentials: "include"}));
await attempt("json", () => fetch(`${hub}/api/kb/bulk`, {method: "POST", credentials: "include",
  headers: {"Content-Type": "application/json", "X-CSRF-Token": "forged-by-sibling"},
  body: JSON.stringify({action: "archive", ids: [id]})}));
const form = new FormData();
form.append("csrf_token", "forged-by-sibling");
form.append("file", new Blob(["编号,问题\\n"], {type: "text/csv"}), "kb.csv");
await attempt("import", () => fetch(`${hub}/api/kb/imports`,
  {method: "POST", mode: "no-cors", credentials: "include", body: form}));
// a classic auto-submitted form, JSON smuggled in a text/plain body
const f = document.createElement("form");
f.method = "POST"; f.action = `${hub}/api/kb/bulk`; f.enctype = "text/plain"; f.target = "sink";
const input = document.createElement("input");
input.name = JSON.stringify({action: "archive", ids: [id], pad: "="}).slice(0, -2);
input.value = '"}';
f.append(input); document.body.append(f); f.submit();
await new Promise((resolve) => setTimeout(resolve, 1500));
// the agent's socket, as the agent's browser opens it
await new Promise((resolve) => {
  const ws = new WebSocket(hub.replace(/^http/, "ws") + "/ws/agent");
  ws.onmessage = (ev) => results.frames.push(String(ev.data));
  ws.onopen = () => ws.send(JSON.stringify({type: "hello"}));
  ws.onclose = (ev) => { results.ws_close = ev.code; resolve(); };
  setTimeout(resolve, 8000);
});
window.attackResults = results;
</script></body>"""


class AttackerSite:
    """A web server on another port serving the attacker's page (GET /attack)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.html = ""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = site.html.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def attacker() -> Iterator[AttackerSite]:
    site = AttackerSite()
    yield site
    site.close()


@pytest.fixture(scope="module")
async def sibling_browser() -> AsyncIterator[object]:
    """Chromium resolving *.bureau.test to this machine, so that the hub and the attacker are
    sibling hosts of one registrable domain."""
    if not Path(CHROMIUM).exists():  # noqa: ASYNC240 (once, before the browser starts)
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP *.bureau.test 127.0.0.1"]
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


async def staff_client(base_url: str, username: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=30)
    reply = await client.post("/api/login", json={"username": username, "password": f"{username}pass"})
    reply.raise_for_status()
    send_csrf_token(client, reply)
    return client


async def visit(browser: object, hub_url: str, attack_url: str, username: str, landing: str) -> tuple[Page, dict]:
    """`username` logs in on the hub in a fresh browser, then opens the attacker's page in a new tab."""
    context = await browser.new_context(base_url=hub_url, locale="zh-CN")  # type: ignore[attr-defined]
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    own = await context.new_page()
    await log_in(own, username, f"{username}pass", landing=landing)
    evil = await context.new_page()
    await evil.goto(attack_url)
    await evil.wait_for_function("window.attackResults !== undefined", timeout=30_000)
    return own, await evil.evaluate("window.attackResults")


@pytest.mark.parametrize("sibling", [False, True], ids=["another-port", "sibling-host"])
async def test_another_sites_page_cannot_change_the_kb_or_open_the_agent_socket(
    system: RunningSystem, attacker: AttackerSite, sibling_browser: object,
    sibling: bool,
) -> None:
    port = system.hub_url.rsplit(":", 1)[1]
    hub_url = f"http://hub.bureau.test:{port}" if sibling else system.hub_url
    attack_url = f"http://{'evil.bureau.test' if sibling else '127.0.0.1'}:{attacker.port}/attack"
    editor = await staff_client(system.hub_url, "editor1")
    try:
        branch = (await editor.post("/api/kb/branches", json={"name": f"防伪造{uuid.uuid4().hex[:6]}"})).json()
        created = await editor.post("/api/kb/entries", json={
            "branch_id": branch["id"], "question": f"跨站测试条目{uuid.uuid4().hex[:6]}怎么办理？",
            "answer": "<p>真答案</p>"})
        assert created.status_code == 201, created.text
        entry = created.json()
        published = await editor.post(f"/api/kb/entries/{entry['id']}/status", json={"status": "published"})
        assert published.status_code == 200
        forged_question = f"伪造条目{uuid.uuid4().hex[:8]}"
        attacker.html = ATTACK % {
            "hub": json.dumps(hub_url), "entry": json.dumps(entry["id"]), "branch": json.dumps(branch["id"]),
            "question": json.dumps(forged_question),
        }

        own, results = await visit(sibling_browser, hub_url, attack_url, "editor1", "/kb")
        # the browser did fire the simple requests (they reached the hub): the hub refused them
        assert results["create"] == results["archive"] == results["bulk_delete"] == "sent", results
        after = await editor.get(f"/api/kb/entries/{entry['id']}")
        assert after.status_code == 200 and after.json()["status"] == "published"
        found = (await editor.get("/api/kb/search", params={"q": forged_question})).json()
        assert found["items"] == []

        # the hub's own page does the same with the token its script adds to every change
        archived = await own.evaluate(
            """async (id) => (await fetch("/api/kb/bulk", {method: "POST",
                headers: {"Content-Type": "application/json"},
                body: JSON.stringify({action: "archive", ids: [id]})})).status""", entry["id"])
        assert archived == 200
        assert (await editor.get(f"/api/kb/entries/{entry['id']}")).json()["status"] == "archived"
        await own.context.close()

        # an agent's socket from the attacker's page: refused at the handshake, not one frame read
        agent_page, agent_results = await visit(sibling_browser, hub_url, attack_url, "agent1", "/agent")
        assert agent_results["ws_close"] == 4403 and agent_results["frames"] == []
        await expect(agent_page.locator("#conn-dot")).to_have_attribute("data-state", "online")  # its own still works
        await agent_page.context.close()
    finally:
        await editor.post("/api/kb/bulk", json={"action": "delete", "ids": [entry["id"]]})
        await editor.delete(f"/api/kb/branches/{branch['id']}")
        await editor.aclose()


async def test_json_apis_refuse_other_bodies_and_requests_without_the_token(system: RunningSystem) -> None:
    editor = await staff_client(system.hub_url, "editor1")
    try:
        body = json.dumps({"name": "不应创建"}).encode()
        for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            reply = await editor.post("/api/kb/branches", content=body, headers={"Content-Type": media})
            assert reply.status_code == 415 and "JSON" in reply.json()["reason"]
        token = editor.headers.pop("X-CSRF-Token")
        missing = await editor.post("/api/kb/branches", json={"name": "不应创建"})
        assert missing.status_code == 403 and "安全令牌" in missing.json()["reason"]
        wrong = await editor.post("/api/kb/branches", json={"name": "不应创建"}, headers={"X-CSRF-Token": "0" * 48})
        assert wrong.status_code == 403
        foreign = await editor.post("/api/kb/branches", json={"name": "不应创建"},
                                    headers={"X-CSRF-Token": token, "Origin": "http://127.0.0.1:1"})
        assert foreign.status_code == 403 and "来源" in foreign.json()["reason"]
        names = [b["name"] for b in (await editor.get("/api/kb/branches")).json()["items"]]
        assert "不应创建" not in names
    finally:
        await editor.aclose()
