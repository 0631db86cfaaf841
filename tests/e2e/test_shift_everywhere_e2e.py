"""What every member of staff meets (issue 13.27, 13.28), in a real browser against the whole system:
the login page speaks to the role that is logging in; the header offers only the pages the role may
open; a page the role may not open is refused on a styled page that leads back home."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from tests.conftest import RunningSystem
from tests.e2e.helpers import log_in, shot, wide

pytestmark = pytest.mark.e2e


async def test_the_login_page_names_the_page_being_opened(system: RunningSystem, new_page, screenshots: Path) -> None:
    page = await wide(await new_page(system.hub_url))
    await page.goto("/login")
    await expect(page.locator("#login-form h1")).to_have_text("工作人员登录")
    await expect(page).to_have_title("工作人员登录 - 政务云客服")
    await shot(page, screenshots, "shift-login", full_page=False)
    await page.goto("/kb")  # not logged in: the login page, for the 知识库
    await expect(page.locator("#login-form h1")).to_have_text("知识库登录")
    await expect(page).to_have_title("知识库登录 - 政务云客服")
    await page.goto("/login?next=/supervisor")
    await expect(page.locator("#login-form h1")).to_have_text("班长登录")


async def test_a_kb_editor_is_offered_only_the_kb_and_a_refusal_leads_back(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    page = await wide(await new_page(system.hub_url))
    await log_in(page, "editor1", "editor1pass", landing="/kb")
    nav = page.locator("header.app-header nav")
    await expect(nav.get_by_role("link", name="知识库")).to_be_visible()
    await expect(nav.get_by_role("link", name="坐席工作台")).to_be_hidden()
    await expect(nav.get_by_role("link", name="工单")).to_be_hidden()

    reply = await page.goto("/agent")
    assert reply is not None and reply.status == 403
    refusal = page.locator("[data-testid=forbidden]")
    await expect(refusal).to_be_visible()
    await expect(refusal.locator("h1")).to_have_text("无权访问坐席工作台")
    await expect(refusal).to_contain_text("王芳，知识库编辑")
    background = await page.locator("header.app-header").evaluate("h => getComputedStyle(h).backgroundColor")
    assert background != "rgba(0, 0, 0, 0)", "the refusal is a bare, unstyled page"
    await shot(page, screenshots, "shift-forbidden", full_page=False)
    await refusal.get_by_role("link", name="返回知识库").click()
    await page.wait_for_url(lambda url: urlsplit(url).path == "/kb")
    await expect(page.locator("#kb-search")).to_be_visible()
