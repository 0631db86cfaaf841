"""The CRM in a real browser: an agent accepts an unknown citizen, fills in the 客户信息 form
(an invalid 身份证号 is refused under the field, a valid one is saved and shown masked), opens
a 工单 from the console, and the 工单 page shows that ticket highlighted once it is overdue."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import expect
from sqlalchemy import update

from core.db import make_engine, make_sessionmaker
from core.models import Ticket
from crm import CitizenDirectory
from crm.transfer import COLUMNS
from tests.conftest import RunningSystem
from tests.e2e.helpers import log_in, shot
from tests.support import ChatClient, xlsx_bytes

pytestmark = pytest.mark.e2e

GOOD_ID = "11010519491231002X"
BAD_ID = "110105194912310021"  # right length and birth date, wrong check character
OTHER_ID = "532504199003071234"  # valid (弥勒, born 1990-03-07)


async def test_agent_fills_in_a_profile_and_the_tickets_page_flags_an_overdue_ticket(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    agent = await new_page(system.hub_url)
    await log_in(agent, "agent2", "agent2pass")
    async with ChatClient(system.hub_urls[1]) as citizen:
        await citizen.say("我要转人工")
        item = agent.locator(f'#queue-list .queue-item[data-conversation-id="{citizen.conversation_id}"]')
        await item.locator(".accept-btn").click()
        await expect(item).to_have_count(0)

        pop = agent.locator("#screen-pop")
        await expect(pop.locator("[data-testid=pop-name]")).to_have_text("未知")
        form = pop.locator("[data-testid=crm-form]")
        await expect(form).to_be_visible()  # an unknown citizen: the empty profile to fill in
        await expect(form.get_by_role("heading")).to_have_text("新客户：请补充客户资料")
        await form.get_by_label("姓名").fill("王小明")
        await form.get_by_label("电话").fill("13812345678")
        await form.get_by_label("身份证号").fill(BAD_ID)
        await form.get_by_label("重点关注").check()
        await pop.locator("[data-testid=crm-save]").click()
        error = pop.locator("[data-testid=crm-error-id_number]")
        await expect(error).to_be_visible()
        await expect(error).to_contain_text("身份证号不正确")
        await expect(form.get_by_label("身份证号")).to_have_attribute("aria-invalid", "true")
        await expect(pop.locator("[data-testid=crm-error-name]")).to_be_hidden()
        await expect(pop.locator("[data-testid=pop-name]")).to_have_text("未知")  # nothing was saved
        await shot(agent, screenshots, "crm-profile-invalid-id")

        await form.get_by_label("身份证号").fill(GOOD_ID)
        await pop.locator("[data-testid=crm-save]").click()
        await expect(pop.locator("[data-testid=crm-message]")).to_have_text("客户资料已保存")
        await expect(form).to_have_count(0)
        await expect(pop.locator("[data-testid=pop-name]")).to_have_text("王小明")
        await expect(pop.locator("[data-testid=pop-phone]")).to_have_text("***5678")  # agents see it masked
        await expect(pop.locator("[data-testid=pop-id-number]")).to_have_text("***002X")
        await expect(pop.locator("[data-testid=pop-tags]")).to_contain_text("重点关注")

        # a 工单 from the console lands in the panel's open tickets
        await pop.locator("[data-testid=crm-new-ticket]").click()
        await pop.locator("[data-testid=crm-ticket-title]").fill("市民反映社保卡补办进度慢")
        await pop.locator("[data-testid=crm-ticket-body]").fill("请社保窗口三天内回电")
        await pop.locator("[data-testid=crm-ticket-save]").click()
        tickets = pop.locator("[data-testid=pop-tickets] li")
        await expect(tickets).to_have_count(1)
        await expect(tickets.first).to_contain_text("市民反映社保卡补办进度慢")
        await expect(pop.get_by_role("heading", name="未完结工单（1）")).to_be_visible()
        ticket_id = int(await tickets.first.get_attribute("data-ticket-id"))

    # nobody answered it for 25 hours
    engine = make_engine(system.database_url)
    try:
        async with engine.begin() as conn:
            past = datetime.now(UTC) - timedelta(hours=25)
            await conn.execute(update(Ticket).where(Ticket.id == ticket_id).values(
                created_at=past, response_due_at=past + timedelta(hours=24)))
    finally:
        await engine.dispose()

    await agent.goto("/tickets")
    row = agent.locator(f'#ticket-rows tr.ticket-row[data-ticket-id="{ticket_id}"]')
    await expect(row).to_have_class(re.compile(r"\boverdue\b"))
    await expect(row.locator(".t-due")).to_contain_text("已超时")
    await expect(row.locator(".t-due")).to_contain_text("超过首次响应时限")
    background = await row.locator("td").first.evaluate("td => getComputedStyle(td).backgroundColor")
    assert background == "rgb(255, 242, 238)"  # the red highlight (--red-light)
    await agent.get_by_label("只看超时").check()
    await expect(row).to_be_visible()
    await shot(agent, screenshots, "crm-tickets-overdue")

    # the agent answers it: no longer waiting for a first response, so no longer overdue
    await row.click()
    detail = agent.locator("[data-testid=ticket-detail]")
    await detail.locator("[data-testid=detail-reply]").fill("已联系社保窗口，正在加急办理")
    await detail.locator("[data-testid=detail-save]").click()
    await expect(detail.locator("[data-testid=detail-status]")).to_have_value("processing")
    await expect(detail.locator("[data-testid=detail-events]")).to_contain_text("已联系社保窗口，正在加急办理")
    await expect(row).to_have_count(0)  # the 只看超时 list no longer has it
    await agent.get_by_label("只看超时").uncheck()
    await expect(row).not_to_have_class(re.compile(r"\boverdue\b"))
    await expect(row.locator(".t-status")).to_have_text("处理中")


def _upload(rows: list[list[object]]) -> dict:
    return {"name": "客户.xlsx", "mimeType": "application/octet-stream", "buffer": xlsx_bytes(COLUMNS, rows)}


async def test_an_agent_proposes_a_merge_and_a_supervisor_confirms_it_and_imports_records(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    engine = make_engine(system.database_url)
    directory = CitizenDirectory(make_sessionmaker(engine))
    try:
        other = await directory.resolve("wechat_user", f"openid-{tag}")
        await directory.update(other, name=f"赵合并{tag}", phone="13755556666")

        agent = await new_page(system.hub_url)
        await log_in(agent, "agent1", "agent1pass")
        async with ChatClient(system.hub_url) as citizen:
            await citizen.say("我要转人工")
            item = agent.locator(f'#queue-list .queue-item[data-conversation-id="{citizen.conversation_id}"]')
            await item.locator(".accept-btn").click()
            pop = agent.locator("#screen-pop")
            keep = int(await pop.locator("[data-testid=pop-id]").inner_text())
            await pop.locator("[data-testid=crm-merge]").click()
            await pop.locator("[data-testid=crm-merge-q]").fill(f"赵合并{tag}")
            await pop.locator("[data-testid=crm-merge-search]").click()
            result = pop.locator(f'.crm-result[data-citizen-id="{other}"]')
            await expect(result).to_contain_text("***6666")  # an agent sees the phone masked
            await result.locator("[data-testid=crm-merge-pick]").click()
            confirm = pop.locator("[data-testid=crm-merge-confirm-box]")
            await expect(confirm).to_contain_text(f"将客户 #{other}")
            await confirm.locator("[data-testid=crm-merge-reason]").fill("来电核实为同一人")
            await confirm.locator("[data-testid=crm-merge-confirm]").click()
            await expect(pop.locator("[data-testid=crm-message]")).to_have_text("已提交合并申请，班长确认后生效。")

        supervisor = await new_page(system.hub_url)
        await log_in(supervisor, "super1", "super1pass", landing="/tickets")
        proposal = supervisor.locator("#merge-proposals li", has_text=f"赵合并{tag}")
        await expect(proposal).to_contain_text("来电核实为同一人")
        await proposal.get_by_role("button", name="确认合并").click()
        await expect(supervisor.locator("#toast")).to_have_text("已合并")
        await expect(proposal).to_have_count(0)
        merged = await directory.get(other)
        assert merged is not None and merged.merged_into == keep

        # import: a bad 身份证号 on row 3 is reported by its row number and nothing is written
        rows = [[f"导入{tag}甲", "", "", "", "", "", "否", "否"], [f"导入{tag}乙", "", BAD_ID, "", "", "", "否", "否"]]
        upload = supervisor.locator("[data-testid=citizen-import-file]")
        await upload.set_input_files(_upload(rows))
        await supervisor.locator("[data-testid=citizen-import-start]").click()
        errors = supervisor.locator("[data-testid=citizen-import-errors] li")
        await expect(errors).to_have_count(1)
        await expect(errors.first).to_contain_text("第 3 行")
        await expect(errors.first).to_contain_text("身份证号")
        await expect(supervisor.locator("[data-testid=citizen-import-status]")).to_contain_text("未写入任何数据")
        assert await directory.search(f"导入{tag}") == []
        rows[1][2] = OTHER_ID  # GOOD_ID already belongs to the citizen of the test above: a duplicate
        await upload.set_input_files(_upload(rows))
        await supervisor.locator("[data-testid=citizen-import-start]").click()
        status = supervisor.locator("[data-testid=citizen-import-status]")
        await expect(status).to_have_text("导入成功：新增 2 位客户。")
        await expect(errors).to_have_count(0)
        assert sorted(c.name for c in await directory.search(f"导入{tag}")) == [f"导入{tag}乙", f"导入{tag}甲"]
        await shot(supervisor, screenshots, "crm-supervisor-tickets")
    finally:
        await engine.dispose()
