"""The web citizen's chat credential (the visitor id their browser keeps) is a secret staff never see
(issue #12, Security 10): the screen-pop, the citizen record and the board show an id that does not
open the citizen's chat."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.channels.telegram_fake import ChannelHub, FakeRasa, start_channel_hubs, stop_channel_hubs
from tests.support import AgentClient, ChatClient


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChannelHub]:
    rasa = FakeRasa().start()
    started = start_channel_hubs(tmp_path_factory.mktemp("visitor"), {"RASA_URL": rasa.url}, log_name="visitor")
    try:
        yield started
    finally:
        stop_channel_hubs(started)
        rasa.stop()


async def test_the_id_staff_see_cannot_open_the_citizens_chat(hub: ChannelHub) -> None:
    url = hub.urls[0]
    async with ChatClient(url) as citizen, AgentClient(url, "agent1", "agent1pass") as agent:
        secret, conv = citizen.visitor_id, citizen.conversation_id
        await citizen.say("我的身份证丢了，转人工")
        await agent.next_frame("queue", where=lambda f: any(i["conversation_id"] == conv for i in f["items"]))
        await agent.send({"type": "accept", "conversation_id": conv})
        assigned = await agent.next_frame("assigned", where=lambda f: f["conversation_id"] == conv)
        shown = assigned["screen_pop"]["citizen"]["visitor_id"]
        assert shown and shown != secret
        assert secret not in str(agent.frames)

        async with httpx.AsyncClient(base_url=url, timeout=30) as staff:
            await staff.post("/api/login", json={"username": "super1", "password": "super1pass"})
            record = await staff.get(f"/api/crm/citizens/{assigned['screen_pop']['citizen']['id']}")
            board = await staff.get("/api/handoff/board")
            assert record.status_code == 200 and board.status_code == 200
            assert secret not in record.text and secret not in board.text

        # the id the agent saw, sent as a browser's credential, opens somebody new: no history
        async with ChatClient(url, visitor_id=shown) as impostor:
            assert impostor.conversation_id != conv
            assert not [m for m in impostor.history if "身份证" in (m.get("text") or "")]
        # the citizen's own browser, with its secret, is back in its conversation
        async with ChatClient(url, visitor_id=secret) as again:
            assert again.conversation_id == conv
            assert [m for m in again.history if "身份证丢了" in (m.get("text") or "")]
        await agent.send({"type": "close", "conversation_id": conv})
