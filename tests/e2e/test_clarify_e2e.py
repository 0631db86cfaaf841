"""A citizen on /chat picks one of the bot's "您是想问：" choices and gets that entry's answer (#18.4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.conftest import RunningSystem
from tests.e2e.helpers import open_chat, shot
from tests.support import ROOT

pytestmark = pytest.mark.e2e

KB = {e["id"]: e for e in map(json.loads, (ROOT / "kb_sync/demo/kb.jsonl").read_text(encoding="utf-8").splitlines())}
BOT_ANSWER_TIMEOUT_MS = 45_000


async def test_a_citizen_clicks_a_choice_and_gets_its_answer(
    system: RunningSystem, new_page, screenshots: Path
) -> None:
    page = await new_page(system.hub_url)
    await open_chat(page)
    await page.locator("#chat-input").fill("养老保险怎么弄")
    await page.locator("#chat-send").click()
    offer = page.locator("#chat-messages .msg[data-sender=bot]").filter(has_text="您是想问").last
    await expect(offer).to_be_visible(timeout=BOT_ANSWER_TIMEOUT_MS)
    choices = offer.locator("[data-testid=chat-quick-reply]")
    await expect(choices.last).to_have_text("都不是（转人工）")
    titles = await choices.all_inner_texts()
    assert 3 <= len(titles) <= 4 and all("养老保险" in t for t in titles[:-1])
    assert await offer.locator("[data-testid=chat-feedback]").count() == 0  # a question, not an answer
    await shot(page, screenshots, "clarify-offer")

    picked = titles[1]
    entry = next(e for e in KB.values() if e["question"] == picked)
    await choices.nth(1).click()
    mine = page.locator("#chat-messages .msg[data-sender=citizen]").last
    await expect(mine.locator(".msg-text")).to_have_text(picked)
    answer = page.locator("#chat-messages .msg[data-sender=bot]").last
    await expect(answer).to_contain_text(entry["answer"][:20], timeout=BOT_ANSWER_TIMEOUT_MS)
    await expect(answer.locator("[data-testid=chat-feedback]")).to_be_visible()
    await shot(page, screenshots, "clarify-answered")

    # 👎 on that answer: the questions near it and 转人工 are offered (#13.4)
    await answer.locator("[data-testid=chat-vote-down]").click()
    after = answer.locator("[data-testid=chat-after-down]")
    await expect(after.locator("[data-testid=chat-after-down-human]")).to_have_text("转人工")
    related = await after.locator("[data-testid=chat-related]").all_inner_texts()
    assert 2 <= len(related) <= 3 and picked not in related
    await shot(page, screenshots, "clarify-thumbs-down")
