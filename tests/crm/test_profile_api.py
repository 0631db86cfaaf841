"""An agent fills in an unknown citizen's profile from the console; bad input changes nothing."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from core.db import make_engine
from core.models import AuditLog, Citizen
from tests.conftest import RunningSystem
from tests.support import AgentClient, ChatClient, send_csrf_token


async def test_agent_edits_the_screen_pop_profile_and_it_is_audited(system: RunningSystem) -> None:
    async with ChatClient(system.hub_url) as citizen, AgentClient(system.hub_url, "agent2", "agent2pass") as agent:
        await citizen.say("我要转人工")
        conv = citizen.conversation_id
        await agent.next_frame("queue", where=lambda f: any(i["conversation_id"] == conv for i in f["items"]))
        await agent.send({"type": "accept", "conversation_id": conv})
        assigned = await agent.next_frame("assigned", where=lambda f: f["conversation_id"] == conv)
        citizen_id = assigned["screen_pop"]["citizen"]["id"]
        assert assigned["screen_pop"]["citizen"]["name"] is None  # an unknown citizen

        async with httpx.AsyncClient(base_url=system.hub_url) as http:
            url = f"/api/crm/citizens/{citizen_id}"
            assert (await http.patch(url, json={"name": "王小明"})).status_code == 401
            send_csrf_token(http, await http.post("/api/login", json={"username": "agent2", "password": "agent2pass"}))
            bad = await http.patch(url, json={"name": "王小明", "id_number": "530000000000000000"})
            assert bad.status_code == 400 and bad.json()["field"] == "id_number" and "身份证" in bad.json()["reason"]
            good = await http.patch(url, json={"name": "王小明", "phone": "13812345678", "tags": ["重点关注"]})
            assert good.status_code == 200 and sorted(good.json()["changed"]) == ["name", "phone", "tags"]
            assert (await http.patch("/api/crm/citizens/999999", json={"name": "某人"})).status_code == 404
        await agent.send({"type": "close", "conversation_id": conv})

    engine = make_engine(system.database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(Citizen.name, Citizen.phone, Citizen.id_number).where(Citizen.id == citizen_id)
                )
            ).one()
            edits = (
                (
                    await conn.execute(
                        select(AuditLog.data).where(
                            AuditLog.action == "edit_citizen", AuditLog.target == f"citizen:{citizen_id}"
                        )
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    assert tuple(row) == ("王小明", "13812345678", None)  # the refused edit left nothing behind
    assert len(edits) == 1
