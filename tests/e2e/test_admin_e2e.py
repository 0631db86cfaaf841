"""用户管理, 修改密码 and 操作日志 in Chromium, as an administrator and a new colleague would use them;
and the login page never sends anyone off the hub's origin (`?next=/%09/evil.test`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from tests.e2e.helpers import shot, submit_login
from tests.security.hubs import Running, running_hubs


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_hubs(tmp_path_factory.mktemp("admin-e2e"), 1) as running:
        yield running


async def test_an_administrator_creates_a_colleague_who_must_choose_a_password(
    hub: Running, new_page, screenshots
) -> None:
    admin = await new_page(hub.url)
    admin.on("dialog", lambda dialog: dialog.accept())
    await admin.goto("/login")
    await submit_login(admin, "admin1", "admin1pass")
    await admin.wait_for_url(re.compile(r"/admin/users$"))
    table = admin.get_by_test_id("users-table")
    await expect(table.locator("tr[data-username='agent1']")).to_contain_text("张敏")

    await admin.get_by_test_id("new-username").fill("liu1")
    await admin.get_by_test_id("new-display-name").fill("刘洋")
    await admin.get_by_test_id("new-role").select_option("agent")
    await admin.get_by_test_id("new-groups").get_by_label("户籍").check()
    await admin.get_by_test_id("create-submit").click()
    await expect(admin.get_by_test_id("password-box")).to_contain_text("已新建 刘洋（liu1）")
    initial = (await admin.get_by_test_id("password-value").text_content()).strip()
    row = table.locator("tr[data-username='liu1']")
    await expect(row).to_contain_text("待改初始密码")
    await expect(row.get_by_label("户籍")).to_be_checked()
    await shot(admin, screenshots, "admin-users")

    # the new colleague: first login goes to 修改密码, a weak password is refused in Chinese
    liu = await new_page(hub.url)
    await liu.goto("/login?next=/tickets")
    await submit_login(liu, "liu1", initial)
    await liu.wait_for_url(re.compile(r"/password\?next="))
    await expect(liu.get_by_test_id("must-change")).to_be_visible()
    await liu.locator("#current").fill(initial)
    await liu.locator("#new").fill("password123")
    await liu.locator("#confirm").fill("password123")
    await liu.locator("#password-submit").click()
    await expect(liu.locator("#password-error")).to_contain_text("太常见")
    await shot(liu, screenshots, "password-change-refused")
    await liu.locator("#new").fill("Huji-liuyang-2026")
    await liu.locator("#confirm").fill("Huji-liuyang-2026")
    await liu.locator("#password-submit").click()
    await liu.wait_for_url(lambda url: urlsplit(url).path == "/tickets")

    # disabled by the administrator: the colleague's next request finds the session gone
    await row.get_by_test_id("disable").click()
    await expect(row).to_contain_text("已停用")
    await liu.goto("/tickets")
    await liu.wait_for_url(re.compile(r"/login\?next="))
    await submit_login(liu, "liu1", "Huji-liuyang-2026")
    await expect(liu.locator("#login-error")).to_contain_text("已停用")

    # 操作日志 shows all of it and filters by user
    await admin.goto("/admin/audit")
    await admin.get_by_test_id("f-actor").fill("admin1")
    await admin.get_by_test_id("f-action").select_option("user_disable")
    await admin.get_by_test_id("audit-search").click()
    rows = admin.get_by_test_id("audit-table").locator("tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("停用用户")
    await expect(rows.first).to_contain_text("127.0.0.1")
    await admin.get_by_test_id("f-action").select_option("")
    await admin.get_by_test_id("f-actor").fill("liu1")
    await admin.get_by_test_id("audit-search").click()
    await expect(admin.get_by_test_id("audit-table")).to_contain_text("修改密码")
    await expect(admin.get_by_test_id("audit-table")).to_contain_text("登录失败")
    async with admin.expect_download() as download:
        await admin.get_by_test_id("audit-export").click()
    assert (await download.value).suggested_filename.startswith("操作日志-")
    await shot(admin, screenshots, "admin-audit")


async def test_login_next_never_leaves_the_hub(hub: Running, new_page) -> None:
    host = urlsplit(hub.url).netloc
    for trick in ("/%09/evil.test/steal", "//evil.test/", "/\\evil.test/", "https://evil.test/"):
        page = await new_page(hub.url)
        await page.goto(f"/login?next={trick}")
        await submit_login(page, "agent1", "agent1pass")
        await page.wait_for_url(lambda url: urlsplit(url).path == "/agent")
        assert urlsplit(page.url).netloc == host, trick
    page = await new_page(hub.url)
    await page.goto("/login?next=/tickets%3Fstatus%3Dopen")
    await submit_login(page, "agent1", "agent1pass")
    await page.wait_for_url(lambda url: urlsplit(url).path == "/tickets")
