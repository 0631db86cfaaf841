"""Steps the end-to-end tests share: logging in, a citizen opening /chat and asking for a person, an agent
accepting them, keeping a page's WebSocket frames and taking screenshots. Everything is done as a
person would, on the page."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Locator, Page, expect

LIVE_PAGES = ("/agent", "/supervisor")  # the staff pages with a connection dot (#conn-dot)


async def wide(page: Page) -> Page:
    """A desk's screen, 1440×900 (the size pages are checked at)."""
    await page.set_viewport_size({"width": 1440, "height": 900})
    return page


async def shot(page: Page, directory: Path, name: str, *, full_page: bool = True) -> None:
    await page.screenshot(path=str(directory / f"{name}.png"), full_page=full_page)


async def submit_login(page: Page, username: str, password: str) -> None:
    """Fill in and send the login form on screen."""
    await page.locator("#username").fill(username)
    await page.locator("#password").fill(password)
    await page.locator("#login-submit").click()


async def log_in(page: Page, username: str, password: str, landing: str = "/agent") -> None:
    """Open a staff page without a session: the login page comes first and leads back to `landing`,
    which on a live page is connected to the hub."""
    await page.goto(landing)
    await page.wait_for_url(re.compile(r"/login\?next=(%2F|/)" + re.escape(landing[1:]) + "$"))
    await submit_login(page, username, password)
    await page.wait_for_url(lambda url: urlsplit(url).path == landing)  # not /login?next=<landing>
    if landing in LIVE_PAGES:
        await expect(page.locator("#conn-dot")).to_have_attribute("data-state", "online")


async def log_in_on_the_login_page(page: Page, username: str, password: str, lands_on: str = r"/agent") -> None:
    """Open /login itself (no `next`) and log in; the hub picks the landing page (its path matches `lands_on`)."""
    await page.goto("/login")
    await submit_login(page, username, password)
    await page.wait_for_url(lambda url: re.fullmatch(lands_on, urlsplit(url).path) is not None)


def keep_frames(page: Page) -> list[str]:
    """Every WebSocket frame the page receives from now on, as text."""
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    return frames


async def open_chat(citizen: Page) -> Locator:
    """The citizen opens /chat and the bot's welcome arrives. Returns the status line."""
    await citizen.goto("/chat")
    status = citizen.locator("#chat-status")
    await expect(status).to_have_attribute("data-owner", "bot")
    return status


async def ask_for_a_person(citizen: Page, frames: list[str]) -> tuple[Locator, str]:
    """The citizen opens /chat and clicks 转人工, then waits in the queue. Returns the status line and
    the conversation's id (from the welcome frame among `frames`, see keep_frames)."""
    status = await open_chat(citizen)
    await citizen.locator("#chat-human").click()
    await expect(status).to_have_attribute("data-owner", "queued")
    welcome = next(json.loads(f) for f in frames if '"welcome"' in f and json.loads(f)["type"] == "welcome")
    return status, welcome["conversation_id"]


async def accept(agent: Page, conversation_id: str) -> None:
    """接入 a waiting conversation from the console's queue; it opens in its own tab, 服务中."""
    item = agent.locator(f'#queue-list .queue-item[data-conversation-id="{conversation_id}"]')
    await item.locator(".accept-btn").click()
    await expect(item).to_have_count(0)
    tab = agent.locator(f'#my-convs .conv-tab[data-conversation-id="{conversation_id}"]')
    await expect(tab).to_have_attribute("aria-selected", "true")
    await expect(agent.locator("#conv-state")).to_have_text("服务中")
