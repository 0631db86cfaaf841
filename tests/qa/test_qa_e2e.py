"""The QA center in Chromium: an inspector finds a served conversation by its text, sees the rule hit
and masked numbers, fills the sheet with a comment and submits; the agent sees the result on 我的质检
and appeals; a supervisor changes the score; the agent sees the final score. The report page draws
its charts (canvas pixels checked) and offers the Excel export."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.channels.telegram_fake import ChannelHub, start_channel_hubs, stop_channel_hubs
from tests.e2e.helpers import log_in, shot
from tests.qa.test_qa_http import serve_one


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelHub]:
    tmp = tmp_path_factory.mktemp("qa-e2e")
    env = {
        "RASA_URL": "http://127.0.0.1:9",
        "ZWKF_HANDOFF__WORKING_HOURS__ENABLED": "false",
        "ZWKF_QA__SWEEP_SECONDS": "1",
        "ZWKF_QA__CSAT_GRACE_SECONDS": "1",
    }
    hubs = start_channel_hubs(tmp, env, workers=1, log_name="qa-e2e")
    try:
        yield hubs
    finally:
        stop_channel_hubs(hubs)


async def find_item(page: Page, text: str) -> None:
    """会话检索 until the scorer has made the item, then open it."""
    await page.get_by_test_id("tab-search").click()
    await page.get_by_test_id("search-q").fill(text)
    rows = page.get_by_test_id("search-rows").locator("tr.clickable")
    for _ in range(60):
        await page.get_by_test_id("search-go").click()
        await page.wait_for_timeout(500)
        if await rows.count():
            break
    await rows.first.click()
    await expect(page.get_by_test_id("qa-transcript")).to_be_visible()


async def canvas_drawn(page: Page, testid: str) -> bool:
    """Whether the chart's canvas holds coloured pixels (ECharts drew, not just an empty box)."""
    return await page.get_by_test_id(testid).locator("canvas").first.evaluate(
        """(c) => {
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let coloured = 0;
            for (let i = 0; i < data.length; i += 4) {
                const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
                const grey = Math.abs(r - g) < 8 && Math.abs(g - b) < 8;
                if (a > 0 && !grey) coloured++;
            }
            return coloured > 200;
        }"""
    )


async def test_inspect_appeal_decide_and_the_reports_in_chromium(hub: ChannelHub, new_page, screenshots: Path) -> None:
    await serve_one(hub, [
        "请问有什么需要？",
        "市民朋友，社保卡可到三楼窗口办理挂失补办。",
        "感谢您的咨询，再见。",
    ])
    inspector = await new_page(hub.url)
    await log_in(inspector, "qa1", "qa1pass", landing="/qa")
    await find_item(inspector, "三楼窗口")
    transcript = inspector.get_by_test_id("qa-transcript")
    await expect(transcript).to_contain_text("*******5678")
    await expect(transcript).not_to_contain_text("13912345678")
    await expect(inspector.get_by_test_id("qa-rule-note").first).to_contain_text("首句问候")
    await expect(inspector.get_by_test_id("qa-summary")).to_contain_text("满意度")
    # a comment on the agent's first reply, then the sheet: 解答准确 0 → below the pass mark
    inspector.once("dialog", lambda dialog: dialog.accept("问候语缺失"))
    await transcript.locator(".qa-line.has-hit").first.get_by_role("button", name="评语").click()
    await expect(inspector.get_by_test_id("qa-comment")).to_have_text("评语：问候语缺失")
    await inspector.get_by_test_id("qa-score-accuracy").fill("0")
    await inspector.get_by_test_id("qa-note").fill("解答不完整")
    await shot(inspector, screenshots, "qa-inspection")
    await inspector.get_by_test_id("qa-submit").click()
    await expect(inspector.get_by_test_id("qa-item-score")).to_have_text(" 65 分")
    await expect(inspector.get_by_test_id("qa-inspections")).to_contain_text("陈静")

    agent = await new_page(hub.url)
    await log_in(agent, "agent1", "agent1pass", landing="/qa/mine")
    row = agent.get_by_test_id("mine-rows").locator("tr").first
    await expect(row.get_by_test_id("mine-status")).to_have_text("已质检")
    await row.click()
    await expect(agent.get_by_test_id("qa-comment")).to_have_text("评语：问候语缺失")
    await agent.get_by_test_id("appeal-reason").fill("我已经告知了补办地点和流程")
    await agent.get_by_test_id("appeal-submit").click()
    await expect(row.get_by_test_id("mine-status")).to_have_text("复核中")

    boss = await new_page(hub.url)
    await log_in(boss, "super1", "super1pass", landing="/qa")
    await boss.get_by_test_id("tab-appeals").click()
    await boss.get_by_test_id("appeal-rows").locator("tr").first.click()
    await expect(boss.get_by_test_id("qa-item")).to_contain_text("我已经告知了补办地点和流程")
    await expect(boss.get_by_test_id("qa-transcript")).to_contain_text("13912345678")  # a supervisor sees it in full
    await boss.get_by_test_id("qa-item").locator("[data-testid=qa-score-accuracy]").last.fill("18")
    await boss.get_by_test_id("qa-decision-note").fill("地点和流程已说明")
    await boss.get_by_test_id("qa-change").click()
    await expect(boss.get_by_test_id("qa-item-score")).to_have_text(" 83 分")
    await shot(boss, screenshots, "qa-review")

    # 服务禁语 are edited on the page; saving makes a new version, and content review uses it at once
    await boss.get_by_test_id("tab-rules").click()
    await expect(boss.get_by_test_id("rules-version")).to_have_text("当前版本 v1")
    words = boss.get_by_test_id("rule-forbidden").locator("textarea[data-field=words]")
    await words.fill((await words.input_value()) + "\n没空管你")
    await words.dispatch_event("change")
    await boss.get_by_test_id("rules-note").fill("新增禁语")
    await boss.get_by_test_id("save-rules").click()
    await expect(boss.get_by_test_id("rules-version")).to_have_text("当前版本 v2")
    await shot(boss, screenshots, "qa-rules")
    csrf = next(c["value"] for c in await boss.context.cookies() if c["name"] == "zwkf_csrf")  # as the page sends it
    screened = await boss.request.post(
        "/api/qa/screen", data={"text": "我现在没空管你"}, headers={"X-CSRF-Token": csrf}
    )
    assert [h["word"] for h in (await screened.json())["hits"]] == ["没空管你"]

    await agent.reload()
    row = agent.get_by_test_id("mine-rows").locator("tr").first
    await expect(row.get_by_test_id("mine-status")).to_have_text("已复核")
    await expect(row.get_by_test_id("mine-score")).to_have_text("83")
    await row.click()
    await expect(agent.get_by_test_id("qa-appeal")).to_contain_text("最终得分 83")
    await shot(agent, screenshots, "qa-mine")

    # reports: the QA charts, then the service charts, each drawn on its canvas
    await inspector.goto("/qa/reports")
    await expect(inspector.locator("body[data-loaded=qa]")).to_have_count(1)
    for chart in ("chart-avg", "chart-pass", "chart-hits"):
        assert await canvas_drawn(inspector, chart), chart
    today = inspector.get_by_test_id("report-table").locator("tbody tr")
    await expect(today).to_have_text(re.compile(r"全部\s*1\s*83\s*100.0%"))  # one item, its final score
    await shot(inspector, screenshots, "qa-reports")
    await inspector.get_by_test_id("report-service").click()
    await expect(inspector.locator("body[data-loaded=service]")).to_have_count(1)
    for chart in ("chart-channel", "chart-hour", "chart-containment", "chart-reasons"):
        assert await canvas_drawn(inspector, chart), chart
    await shot(inspector, screenshots, "qa-service-report")
    async with inspector.expect_download() as download:
        await inspector.get_by_test_id("export").click()
    assert (await download.value).suggested_filename.endswith(".xlsx")
