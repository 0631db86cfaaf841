"""The KB editor through a real shift (issue 13.22, 13.23), in a real browser against the whole system:
a search covers every branch even while one is selected (the branch is a filter one may choose), and
rolling back to a version that was 已发布 says what will happen and does it: the entry is live again."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.conftest import RunningSystem
from tests.e2e.helpers import log_in, shot, wide

pytestmark = pytest.mark.e2e


async def test_a_search_covers_every_branch_and_the_selected_one_is_a_filter(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    page = await wide(await new_page(system.hub_url))
    await log_in(page, "editor1", "editor1pass", landing="/kb")
    await page.locator("[data-testid=kb-branch]").filter(has_text="公积金").first.click()
    await expect(page.locator("#kb-title")).to_contain_text("公积金")
    rows = page.locator("[data-testid=kb-row]")
    await expect(rows.filter(has_text="提取公积金").first).to_be_visible()

    await page.locator("#kb-search").fill("养老保险")
    await expect(rows.filter(has_text="城乡居民养老保险怎么交")).to_have_count(1)  # found in 社保, not in 公积金
    in_branch = page.locator("[data-testid=kb-in-branch-label]")
    await expect(in_branch).to_be_visible()
    await expect(in_branch).to_contain_text("只搜“公积金”")
    await shot(page, screenshots, "shift-kb-search-all", full_page=False)
    await page.locator("#kb-in-branch").check()
    await expect(page.locator("#kb-rows")).to_contain_text("没有符合条件的知识条目")
    await page.locator("#kb-in-branch").uncheck()
    await expect(rows.filter(has_text="城乡居民养老保险怎么交")).to_have_count(1)


async def test_rolling_back_to_a_published_version_republishes_it(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    page = await wide(await new_page(system.hub_url))
    await log_in(page, "editor1", "editor1pass", landing="/kb")
    await page.locator("#kb-search").fill("营业执照年报怎么报")
    await page.locator("[data-testid=kb-open]").filter(has_text="营业执照年报怎么报").click()
    status = page.locator("#f-status")
    await expect(status).to_have_attribute("data-status", "published")
    answer = page.locator("#f-answer")
    original = await answer.input_value()
    await answer.fill(original + "（本段为测试修改）")
    await page.locator("#entry-draft").click()  # saved, then back to draft: the bot stops using it
    await expect(status).to_have_attribute("data-status", "draft")

    first = page.locator("[data-testid=version-item][data-version='1']")
    await expect(first.locator("[data-testid=version-status]")).to_have_text("已发布")
    await first.locator("[data-testid=version-rollback]").click()
    await expect(page.locator("#confirm-text")).to_contain_text("重新发布")
    await expect(page.locator("#confirm-ok")).to_have_text("回滚并发布")
    await shot(page, screenshots, "shift-kb-rollback", full_page=False)
    await page.locator("#confirm-ok").click()
    await expect(status).to_have_attribute("data-status", "published")
    await expect(answer).to_have_value(original)
    await expect(page.locator("[data-testid=kb-row]").filter(has_text="营业执照年报怎么报")).to_have_attribute(
        "data-status", "published"
    )
