"""The KB editor's HTTP API on the running system (two hub workers, real Rasa, real Redis)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from kb_sync.transfer import COLUMNS
from tests.conftest import RunningSystem
from tests.support import ChatClient, send_csrf_token, wait_for_import, xlsx_bytes


async def _login(base_url: str, username: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=30)
    reply = await client.post("/api/login", json={"username": username, "password": password})
    reply.raise_for_status()
    send_csrf_token(client, reply)
    return client


@pytest.fixture
async def editor(system: RunningSystem) -> AsyncIterator[httpx.AsyncClient]:
    client = await _login(system.hub_url, "editor1", "editor1pass")
    yield client
    await client.aclose()


def _xlsx(rows: list[list[str]]) -> bytes:
    return xlsx_bytes(COLUMNS, rows)


async def _wait_import(client: httpx.AsyncClient, job_id: str) -> dict:
    return await wait_for_import(client, f"/api/kb/imports/{job_id}", timeout=30)


async def test_the_api_is_for_kb_editors_only(system: RunningSystem, editor: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=system.hub_url) as anonymous:
        reply = await anonymous.get("/api/kb/branches")
        assert reply.status_code == 401 and reply.json()["reason"] == "请先登录。"
        assert (await anonymous.post("/api/kb/entries", json={})).status_code == 401
    agent = await _login(system.hub_url, "agent1", "agent1pass")
    try:
        reply = await agent.post("/api/kb/bulk", json={"action": "delete", "ids": ["D001"]})
        assert reply.status_code == 403 and "无权" in reply.json()["reason"]
    finally:
        await agent.aclose()
    assert (await editor.get("/api/kb/branches")).status_code == 200
    page = await editor.get("/kb")
    assert page.status_code == 200 and 'id="kb-tree"' in page.text
    bad = await editor.post("/api/kb/entries", content=b"{not json", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "JSON" in bad.json()["reason"]


async def test_publish_on_one_worker_is_answered_by_the_other(system: RunningSystem, editor: httpx.AsyncClient) -> None:
    name = f"测试分类{uuid.uuid4().hex[:6]}"
    branch = (await editor.post("/api/kb/branches", json={"name": name})).json()
    created = await editor.post("/api/kb/entries", json={
        "branch_id": branch["id"], "question": "无人机飞行需要去哪里登记备案？", "similar": ["买了无人机怎么备案"],
        "answer": '<p>请登录<a href="https://uas.example.cn" onclick="x()">无人机实名登记系统</a>登记。</p>'})
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["status"] == "draft" and "onclick" not in entry["answer"] and entry["version"] == 1

    # the delete of a branch that holds an entry is refused with a reason
    refused = await editor.delete(f"/api/kb/branches/{branch['id']}")
    assert refused.status_code == 409 and "不能删除" in refused.json()["reason"]

    other = await _login(system.hub_urls[1], "editor1", "editor1pass")
    try:
        published = await editor.post(f"/api/kb/entries/{entry['id']}/status", json={"status": "published"})
        assert published.status_code == 200 and published.json()["status"] == "published"
        started = time.monotonic()
        reply = await other.post("/api/kb/unanswered/suggest", json={"question": "买了无人机怎么备案"})
        print(f"\n[kb api] worker 1 answered from the new entry in {time.monotonic() - started:.2f}s")
        assert reply.json()["items"][0]["entry_id"] == entry["id"]

        versions = (await editor.get(f"/api/kb/entries/{entry['id']}/versions")).json()["items"]
        assert [v["action_label"] for v in versions] == ["发布", "新建"]
        rolled = await editor.post(f"/api/kb/entries/{entry['id']}/rollback", json={"version": 1})
        assert rolled.status_code == 200 and rolled.json()["version"] == 3

        search = (await editor.get("/api/kb/search", params={"q": "买了无人机", "status": "published"})).json()
        assert [i["id"] for i in search["items"]] == [entry["id"]]
        bulk = await editor.post("/api/kb/bulk", json={"action": "draft", "ids": [entry["id"]]})
        assert bulk.json() == {"ok": True, "action": "draft", "count": 1}
        reply = await other.post("/api/kb/unanswered/suggest", json={"question": "买了无人机怎么备案"})
        assert entry["id"] not in [i["entry_id"] for i in reply.json()["items"]]
    finally:
        await other.aclose()
        await editor.post("/api/kb/bulk", json={"action": "delete", "ids": [entry["id"]]})
        assert (await editor.delete(f"/api/kb/branches/{branch['id']}")).status_code == 200


async def test_import_export_over_http(editor: httpx.AsyncClient) -> None:
    name = f"导入分类{uuid.uuid4().hex[:6]}"
    template = await editor.get("/api/kb/template", params={"format": "xlsx"})
    assert template.status_code == 200 and template.headers["content-type"].startswith("application/vnd.openxml")

    refused = await editor.post("/api/kb/imports", files={"file": ("kb.xlsx", b"\x89PNG not a table", "image/png")})
    assert refused.status_code == 400 and "xlsx" in refused.json()["reason"]

    rows = [[name, f"{name}问题{i}", "", f"答案{i}", "", "", "", "", "已发布"] for i in range(5)]
    rows[2][1] = ""
    started = await editor.post("/api/kb/imports", files={"file": ("kb.xlsx", _xlsx(rows), "application/octet-stream")},
                                data={"create_branches": "1"})
    assert started.status_code == 202
    state = await _wait_import(editor, started.json()["id"])
    assert state["state"] == "failed"
    assert state["report"]["errors"] == [{"row": 4, "reason": "标准问题为空"}]

    rows[2][1] = f"{name}问题2"
    started = await editor.post("/api/kb/imports", files={"file": ("kb.xlsx", _xlsx(rows), "application/octet-stream")},
                                data={"create_branches": "1"})
    state = await _wait_import(editor, started.json()["id"])
    assert state["state"] == "done" and state["report"]["created"] == 5 and state["done"] == 5

    branch = next(b for b in (await editor.get("/api/kb/branches")).json()["items"] if b["name"] == name)
    exported = await editor.get("/api/kb/export", params={"format": "csv", "branch_id": branch["id"]})
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    text = exported.content.decode("utf-8-sig")
    assert text.splitlines()[0] == ",".join(COLUMNS) and text.count(f"{name}问题") == 5

    ids = [i["id"] for i in (await editor.get("/api/kb/search", params={"branch_id": branch["id"]})).json()["items"]]
    assert len(ids) == 5
    assert (await editor.post("/api/kb/bulk", json={"action": "delete", "ids": ids})).json()["count"] == 5
    assert (await editor.delete(f"/api/kb/branches/{branch['id']}")).status_code == 200


async def test_citizen_feedback_on_a_bot_answer(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as citizen:
        answer = await citizen.ask("护照怎么办理")
        visitor = citizen.visitor_id
    assert answer["sender"] == "bot"
    async with httpx.AsyncClient(base_url=system.hub_urls[1]) as http:
        ok = await http.post("/api/feedback", json={"message_id": answer["id"], "visitor_id": visitor, "vote": "down"})
        assert ok.status_code == 200 and ok.json()["vote"] == "down"
        wrong = await http.post("/api/feedback", json={"message_id": answer["id"], "visitor_id": "someone-else",
                                                       "vote": "down"})
        assert wrong.status_code == 404 and wrong.json()["reason"]
        bad = await http.post("/api/feedback", json={"message_id": answer["id"], "visitor_id": visitor, "vote": "meh"})
        assert bad.status_code == 400
    editor = await _login(system.hub_url, "editor1", "editor1pass")
    try:
        groups = (await editor.get("/api/kb/unanswered")).json()["items"]
        assert any(q["text"] == "护照怎么办理" for g in groups for q in g["questions"])
    finally:
        await editor.aclose()


async def test_unanswered_attach_and_preview_over_http(system: RunningSystem, editor: httpx.AsyncClient) -> None:
    async with ChatClient(system.hub_urls[1]) as citizen:
        await citizen.ask("宠物狗需要办理什么证件")
    groups = (await editor.get("/api/kb/unanswered", params={"days": 7})).json()["items"]
    group = next(g for g in groups if any(q["text"] == "宠物狗需要办理什么证件" for q in g["questions"]))
    texts = [q["text"] for q in group["questions"]]

    name = f"养犬{uuid.uuid4().hex[:6]}"
    branch = (await editor.post("/api/kb/branches", json={"name": name})).json()
    form = {"branch_id": branch["id"], "question": "养狗要办犬证吗？", "answer": "需要到公安机关办理养犬登记证。"}
    preview = await editor.post("/api/kb/preview", json={"entry": form, "days": 7})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["days"] == 7 and body["questions"] >= 1 and body["draft_live"] is True
    assert isinstance(body["changed"], list)
    bad = await editor.post("/api/kb/preview", json={"entry": {**form, "question": ""}})
    assert bad.status_code == 400 and bad.json()["reason"] == "标准问题不能为空。"

    entry = (await editor.post("/api/kb/entries", json=form)).json()
    try:
        attached = await editor.post("/api/kb/unanswered/attach", json={"entry_id": entry["id"], "questions": texts})
        assert attached.status_code == 200 and "宠物狗需要办理什么证件" in attached.json()["similar"]
        versions = (await editor.get(f"/api/kb/entries/{entry['id']}/versions")).json()["items"]
        assert versions[0]["diff"][0]["label"] == "相似问法"
        groups = (await editor.get("/api/kb/unanswered", params={"days": 7})).json()["items"]
        assert not any(q["text"] == "宠物狗需要办理什么证件" for g in groups for q in g["questions"])
    finally:
        await editor.delete(f"/api/kb/entries/{entry['id']}")
        await editor.delete(f"/api/kb/branches/{branch['id']}")
