"""工单 for a phone-in case (issue 13.17), in a real browser against the whole system: 新建工单 on
/tickets finds or creates the caller by their number; on a 请回电 ticket its handler reveals the full
number to call back (written to the audit log), which nobody else may; everyone else sees it masked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from core.db import make_engine
from core.models import AuditLog, Ticket
from tests.conftest import RunningSystem
from tests.e2e.helpers import log_in, shot, wide

pytestmark = pytest.mark.e2e

PHONE = "13900139123"


async def test_a_phone_in_ticket_and_the_number_its_handler_calls_back(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    agent = await wide(await new_page(system.hub_urls[0]))
    await log_in(agent, "agent1", "agent1pass", landing="/tickets")
    await agent.locator("[data-testid=ticket-new]").click()
    form = agent.locator("[data-testid=new-ticket-form]")
    await expect(form).to_be_visible()
    await form.locator("[data-testid=new-ticket-phone]").fill(PHONE)
    await form.locator("[data-testid=new-ticket-name]").fill("陈先生")
    await form.locator("[data-testid=new-ticket-title]").fill("社保卡补办进度")
    await form.locator("[data-testid=new-ticket-body]").fill("来电询问社保卡补办进度，希望今天回电")
    await shot(agent, screenshots, "shift-tickets-new", full_page=False)
    await form.locator("[data-testid=new-ticket-save]").click()
    await expect(agent.locator("#toast")).to_contain_text("已创建工单")
    detail = agent.locator("#ticket-detail")
    await expect(detail).to_contain_text("请回电：社保卡补办进度")
    await expect(detail).to_contain_text("陈先生")
    await expect(detail).not_to_contain_text(PHONE)  # an agent sees the number masked …
    ticket_id = int(await detail.get_attribute("data-ticket-id") or 0)
    row = agent.locator(f'#ticket-rows tr.ticket-row[data-ticket-id="{ticket_id}"]')
    await expect(row.locator(".t-assignee")).to_have_text("张敏")

    # … until they, its handler, ask for it to call back
    await detail.locator("[data-testid=callback-phone-show]").click()
    await expect(detail.locator("[data-testid=callback-phone-number]")).to_have_text(PHONE)
    await expect(detail.locator("[data-testid=callback-phone-number]")).to_have_attribute("href", f"tel:{PHONE}")
    await shot(agent, screenshots, "shift-tickets-callback-phone", full_page=False)

    # a colleague who does not handle it may not, and has no button for it
    other = await wide(await new_page(system.hub_urls[1]))
    await log_in(other, "agent2", "agent2pass", landing="/tickets")
    refused = await other.request.get(f"/api/crm/tickets/{ticket_id}/callback_phone")
    assert refused.status == 403 and "处理人" in (await refused.json())["reason"]
    await other.locator(f'#ticket-rows tr.ticket-row[data-ticket-id="{ticket_id}"]').click()
    await expect(other.locator("#ticket-detail")).to_contain_text("请回电：社保卡补办进度")
    await expect(other.locator("[data-testid=callback-phone-show]")).to_have_count(0)

    engine = make_engine(system.database_url)
    try:
        async with engine.connect() as db:
            ticket = (await db.execute(select(Ticket).where(Ticket.id == ticket_id))).one()
            looks = (await db.execute(select(AuditLog).where(AuditLog.action == "view_phone"))).all()
    finally:
        await engine.dispose()
    assert ticket.conversation_id is None and re.search("今天回电", ticket.body)
    assert [(look.target, look.data["ticket"]) for look in looks] == [(f"citizen:{ticket.citizen_id}", ticket_id)]
