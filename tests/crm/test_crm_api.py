"""The CRM's HTTP API on the running system: masking per role, every view audited, merging
(agents propose, supervisors merge), tickets with the SLA, import/export of citizen records."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from core.db import make_engine, make_sessionmaker
from core.models import AuditLog, Ticket, User
from crm import CitizenDirectory
from crm.transfer import COLUMNS
from tests.conftest import RunningSystem
from tests.support import ChatClient, send_csrf_token, wait_for_import, xlsx_bytes

GOOD_ID = "11010519491231002X"
XLSX = "application/octet-stream"


async def _login(base_url: str, username: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=30)
    reply = await client.post("/api/login", json={"username": username, "password": password})
    reply.raise_for_status()
    send_csrf_token(client, reply)
    return client


@pytest.fixture
async def staff(system: RunningSystem) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients = {
        "agent": await _login(system.hub_url, "agent1", "agent1pass"),
        "agent2": await _login(system.hub_urls[1], "agent2", "agent2pass"),
        "supervisor": await _login(system.hub_urls[1], "super1", "super1pass"),
        "editor": await _login(system.hub_url, "editor1", "editor1pass"),
    }
    yield clients
    for client in clients.values():
        await client.aclose()


@pytest.fixture
async def db(system: RunningSystem) -> AsyncIterator[tuple]:
    engine = make_engine(system.database_url)
    sessions = make_sessionmaker(engine)
    yield sessions, CitizenDirectory(sessions)
    await engine.dispose()


async def _citizen(directory: CitizenDirectory, **fields: object) -> int:
    citizen_id = await directory.resolve("web_user", f"api-{uuid.uuid4().hex}")
    if fields:
        await directory.update(citizen_id, **fields)
    return citizen_id


async def _user_id(sessions, username: str) -> int:
    async with sessions() as session:
        return (await session.execute(select(User.id).where(User.username == username))).scalar_one()


async def _audit(sessions, target: str) -> list[tuple[int | None, str, dict]]:
    async with sessions() as session:
        rows = (await session.execute(
            select(AuditLog.user_id, AuditLog.action, AuditLog.data).where(AuditLog.target == target)
            .order_by(AuditLog.id)
        )).all()
    return [tuple(r) for r in rows]


async def test_profiles_are_masked_per_role_and_every_view_is_audited(
    system: RunningSystem, staff: dict[str, httpx.AsyncClient], db: tuple
) -> None:
    sessions, directory = db
    name = f"市民{uuid.uuid4().hex[:6]}"
    cid = await _citizen(directory, name=name, phone="13812345678", id_number=GOOD_ID, address="弥勒市 1 号")
    url = f"/api/crm/citizens/{cid}"
    async with httpx.AsyncClient(base_url=system.hub_url) as anonymous:
        refused = await anonymous.get(url)
        assert refused.status_code == 401 and refused.json()["reason"] == "请先登录。"
    assert (await staff["editor"].get(url)).status_code == 403  # a KB editor has no business here
    async with httpx.AsyncClient(base_url=system.hub_url) as anonymous:
        page = await anonymous.get("/tickets", follow_redirects=False)
        assert page.status_code in (302, 303) and page.headers["location"] == "/login?next=/tickets"
    assert (await staff["editor"].get("/tickets")).status_code == 403
    assert (await staff["agent"].get("/tickets")).status_code == 200
    assert (await staff["agent"].get("/api/crm/citizens/999999")).status_code == 404

    for_agent = (await staff["agent"].get(url)).json()["citizen"]
    assert for_agent["name"] == name and for_agent["address"] == "弥勒市 1 号"
    assert for_agent["phone"] == "***5678" and for_agent["id_number"] == "***002X" and for_agent["masked"]
    found = (await staff["agent"].get("/api/crm/citizens", params={"q": name})).json()["items"]
    assert [(c["id"], c["phone"], c["id_number"]) for c in found] == [(cid, "***5678", "***002X")]
    by_phone = (await staff["agent"].get("/api/crm/citizens", params={"q": GOOD_ID})).json()["items"]
    assert [c["id"] for c in by_phone] == [cid] and GOOD_ID not in str(by_phone)
    edited = await staff["agent"].patch(url, json={"vip": True, "address": "弥勒市 2 号"})
    assert edited.status_code == 200 and sorted(edited.json()["changed"]) == ["address", "vip"]
    assert edited.json()["citizen"]["phone"] == "***5678"
    for_supervisor = (await staff["supervisor"].get(url)).json()["citizen"]
    assert for_supervisor["phone"] == "13812345678" and for_supervisor["id_number"] == GOOD_ID
    assert for_supervisor["vip"] is True and not for_supervisor["masked"]

    bad = await staff["agent"].patch(url, json={"phone": "12345", "id_number": "530000000000000000", "name": ""})
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) == {"phone", "id_number", "name"}
    assert "身份证号不正确" in bad.json()["errors"]["id_number"]

    agent_id, supervisor_id = await _user_id(sessions, "agent1"), await _user_id(sessions, "super1")
    rows = await _audit(sessions, f"citizen:{cid}")
    views = [(user, data.get("via")) for user, action, data in rows if action == "view_citizen"]
    assert views == [(agent_id, "profile"), (agent_id, "search"), (agent_id, "search"), (supervisor_id, "profile")]
    assert [(user, action) for user, action, _ in rows if action == "edit_citizen"] == [(agent_id, "edit_citizen")]
    assert (await staff["agent"].get(f"{url}/audit")).status_code == 403
    trail = (await staff["supervisor"].get(f"{url}/audit")).json()["items"]
    assert {"view_citizen", "edit_citizen"} <= {r["action"] for r in trail}


async def test_agents_propose_merges_and_supervisors_carry_them_out(
    staff: dict[str, httpx.AsyncClient], db: tuple
) -> None:
    sessions, directory = db
    keep = await _citizen(directory, name="王合并", phone="13811112222")
    other = await _citizen(directory, id_number=GOOD_ID)
    for body, status, code in (
        ({"keep_id": keep, "merge_id": keep}, 400, "same_citizen"),
        ({"keep_id": keep, "merge_id": 999999}, 404, "not_found"),
        ({"keep_id": keep}, 400, "bad_field"),
    ):
        refused = await staff["supervisor"].post("/api/crm/merges", json=body)
        assert refused.status_code == status and refused.json()["code"] == code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in refused.json()["reason"])
    body = {"keep_id": keep, "merge_id": other, "reason": "电话核实"}
    proposed = await staff["agent"].post("/api/crm/merges", json=body)
    assert proposed.status_code == 202 and "班长" in proposed.json()["message"]
    assert (await staff["agent"].get(f"/api/crm/citizens/{other}")).json()["citizen"]["merged_into"] is None
    assert (await staff["agent"].get("/api/crm/merges/proposals")).status_code == 403
    proposals = (await staff["supervisor"].get("/api/crm/merges/proposals")).json()["items"]
    mine = [p for p in proposals if (p["keep_id"], p["merge_id"]) == (keep, other)]
    assert len(mine) == 1 and mine[0]["reason"] == "电话核实"
    accepted = await staff["supervisor"].post(f"/api/crm/merges/proposals/{mine[0]['id']}/accept")
    assert accepted.status_code == 200 and accepted.json()["moved"]["identities"] == 1
    again = await staff["supervisor"].post(f"/api/crm/merges/proposals/{mine[0]['id']}/accept")
    assert again.status_code == 404
    merged = (await staff["supervisor"].get(f"/api/crm/citizens/{other}")).json()["citizen"]
    assert merged["merged_into"] == keep
    survivor = (await staff["supervisor"].get(f"/api/crm/citizens/{keep}")).json()["citizen"]
    assert survivor["id_number"].endswith("X") and len(survivor["identities"]) == 2
    assert (await staff["agent"].patch(f"/api/crm/citizens/{other}", json={"name": "x"})).status_code == 404
    rows = await _audit(sessions, f"citizen:{keep}")
    assert [a for _, a, _ in rows if a in ("propose_merge", "merge_citizen")] == ["propose_merge", "merge_citizen"]


async def test_tickets_from_the_console_and_from_left_messages_with_the_sla(
    system: RunningSystem, staff: dict[str, httpx.AsyncClient], db: tuple
) -> None:
    sessions, directory = db
    cid = await _citizen(directory, name="李工单", phone="13933334444")
    agent_id = await _user_id(sessions, "agent1")
    bad = await staff["agent"].post("/api/crm/tickets", json={"citizen_id": cid, "title": ""})
    assert bad.status_code == 400 and bad.json()["field"] == "title" and "标题" in bad.json()["reason"]
    bad = await staff["agent"].get("/api/crm/tickets", params={"assignee": "张敏"})
    assert bad.status_code == 400
    assert bad.json() == {"reason": "参数 assignee 应为数字。", "code": "bad_arg", "field": "assignee"}
    created = await staff["agent"].post(
        "/api/crm/tickets",
        json={"citizen_id": cid, "title": "社保卡补办进度", "body": "请三天内回电", "assignee_id": agent_id},
    )
    assert created.status_code == 201
    ticket = created.json()
    assert ticket["status"] == "open" and ticket["assignee_name"] == "张敏" and not ticket["overdue"]
    assert 0 < ticket["seconds_to_deadline"] <= 24 * 3600
    # a second one, created two days ago and never answered: overdue
    late = (await staff["agent"].post("/api/crm/tickets", json={"citizen_id": cid, "title": "老工单"})).json()
    async with sessions() as session, session.begin():
        past = datetime.now(UTC) - timedelta(hours=48)
        await session.execute(update(Ticket).where(Ticket.id == late["id"]).values(
            created_at=past, response_due_at=past + timedelta(hours=24), due_at=past + timedelta(hours=24)))
    overdue = (await staff["agent2"].get("/api/crm/tickets", params={"overdue": "1"})).json()["items"]
    assert late["id"] in [t["id"] for t in overdue] and ticket["id"] not in [t["id"] for t in overdue]
    row = next(t for t in overdue if t["id"] == late["id"])
    assert row["overdue_reason"] == "超过首次响应时限" and row["seconds_to_deadline"] < 0
    mine = (await staff["agent"].get("/api/crm/tickets", params={"assignee": "me"})).json()["items"]
    assert ticket["id"] in [t["id"] for t in mine] and late["id"] not in [t["id"] for t in mine]
    assert (await staff["agent"].get("/api/crm/tickets", params={"status": "done"})).status_code == 400

    answered = await staff["agent2"].patch(f"/api/crm/tickets/{late['id']}", json={"reply": "已联系市民，正在办理"})
    assert answered.status_code == 200 and answered.json()["ticket"]["status"] == "processing"
    assert answered.json()["ticket"]["overdue_reason"] == "超过处理期限"  # answered, but past its due time
    moved = await staff["agent2"].patch(
        f"/api/crm/tickets/{late['id']}",
        json={"due_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(), "status": "resolved"},
    )
    assert moved.json()["ticket"]["overdue"] is False and moved.json()["ticket"]["status_label"] == "已解决"
    detail = (await staff["agent"].get(f"/api/crm/tickets/{late['id']}")).json()
    assert [e["kind"] for e in detail["events"]] == ["created", "reply", "status", "due", "status"]
    assert detail["citizen"]["phone"] == "***4444"
    assert (await staff["agent"].patch(f"/api/crm/tickets/{late['id']}", json={"status": "x"})).status_code == 400
    assert (await staff["agent"].get("/api/crm/tickets/999999")).status_code == 404
    views = [d.get("via") for _, a, d in await _audit(sessions, f"citizen:{cid}") if a == "view_citizen"]
    assert views.count("ticket") == 3  # two PATCH answers and one GET showed the citizen

    # a citizen's 留言 becomes a ticket the agents see in the same list
    async with ChatClient(system.hub_url) as citizen:
        await citizen.send_frame({"type": "leave_message", "text": "请工作人员明天给我回电话"})
        done = await citizen.next_frame("done")
    assert done
    listed = (await staff["agent"].get("/api/crm/tickets", params={"status": "open"})).json()["items"]
    left = [t for t in listed if t["body"] == "请工作人员明天给我回电话"]
    assert len(left) == 1 and left[0]["source"] == "message" and left[0]["conversation_id"] == citizen.conversation_id
    assert 23 * 3600 < left[0]["seconds_to_deadline"] <= 24 * 3600


def _xlsx(rows: list[list[object]]) -> bytes:
    return xlsx_bytes(COLUMNS, rows)


async def _wait_import(client: httpx.AsyncClient, job_id: str) -> dict:
    return await wait_for_import(client, f"/api/crm/imports/{job_id}")


async def test_import_and_export_of_citizen_records_over_http(
    staff: dict[str, httpx.AsyncClient], db: tuple
) -> None:
    sessions, _ = db
    supervisor = staff["supervisor"]
    template = await supervisor.get("/api/crm/template", params={"format": "xlsx"})
    assert template.status_code == 200 and template.headers["content-type"].startswith("application/vnd.openxml")
    assert (await staff["agent"].get("/api/crm/template")).status_code == 403
    bad = await supervisor.get("/api/crm/template", params={"format": "pdf"})
    assert bad.status_code == 400 and bad.json() == {"reason": "格式只能是 xlsx 或 csv。", "code": "bad_format"}
    upload = {"file": ("c.csv", b"x", "text/csv")}
    assert (await staff["agent"].post("/api/crm/imports", files=upload)).status_code == 403
    upload = {"file": ("c.xlsx", b"\x89PNG not a table", "image/png")}
    refused = await supervisor.post("/api/crm/imports", files=upload)
    assert refused.status_code == 400 and "xlsx" in refused.json()["reason"]

    tag = uuid.uuid4().hex[:6]
    rows = [[f"导入{tag}{i}", f"136{int(tag, 16) % 10**4:04d}{i:04d}", "", f"地址{i}", "", "", "否", "否"]
            for i in range(1, 41)]
    rows[19][2] = "530000000000000000"  # row 21
    started = await supervisor.post("/api/crm/imports", files={"file": ("c.xlsx", _xlsx(rows), XLSX)})
    assert started.status_code == 202 and started.json()["total"] == 40
    state = await _wait_import(supervisor, started.json()["id"])
    assert state["state"] == "failed" and [e["row"] for e in state["report"]["errors"]] == [21]
    assert "身份证号" in state["report"]["errors"][0]["reason"]
    found = (await supervisor.get("/api/crm/citizens", params={"q": f"导入{tag}"})).json()["items"]
    assert found == []  # nothing written
    rows[19][2] = ""
    started = await supervisor.post("/api/crm/imports", files={"file": ("c.xlsx", _xlsx(rows), XLSX)})
    state = await _wait_import(supervisor, started.json()["id"])
    assert state["state"] == "done" and state["report"]["created"] == 40 and state["done"] == 40

    exported = await supervisor.get("/api/crm/export", params={"format": "csv"})
    assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
    text = exported.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("姓名,电话,身份证号") and f"导入{tag}40" in text
    assert (await staff["agent"].get("/api/crm/export")).status_code == 403
    async with sessions() as session:
        exports = (await session.execute(select(AuditLog.id).where(AuditLog.action == "export_citizens"))).all()
    assert exports
