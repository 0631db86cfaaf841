"""The SIP user agent: baresip (through `baresip-python`) answering the hotline and placing calls.

One stack per process (baresip's rule): the hub starts it in one worker only. Calls are G.711
A-law/μ-law, DTMF as RFC 4733 telephone-events; audio is read and written as PCM by `media.Leg`."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from baresip import Account, Call, CallState, Config, Event, Runtime, UserAgent

from voice_bridge.settings import VoiceConfig

log = logging.getLogger(__name__)


def number_of(uri: str | None) -> str:
    """The user part of a SIP URI (the caller's number): `"x" <sip:138...@host>` -> 138..."""
    found = re.search(r"sips?:([^@;>]+)@", uri or "")
    return found.group(1) if found else (uri or "")


def on_closed(call: Call, callback: Callable[[str], None]) -> None:
    """Run `callback(reason)` once, when the call ends (either side hangs up, or it fails)."""

    def listener(event: Any) -> None:
        if event.event is Event.CALL_CLOSED:
            callback(event.text or "")

    if call.state is CallState.CLOSED:
        callback("closed")
    else:
        call.on(listener)


class SipStack:
    def __init__(self, config: VoiceConfig) -> None:
        self.config = config
        self.runtime: Runtime | None = None
        self.ua: UserAgent | None = None

    async def start(self, on_incoming: Callable[[Call], None]) -> None:
        config = self.config
        runtime = Runtime()
        await runtime.start(
            Config(
                net_interface=config.listen_host,
                max_concurrent_calls=config.max_calls,
                extra_config_text=f"sip_listen {config.sip_listen}\n",
                rtp_timeout=60,
            )
        )
        self.runtime = runtime
        registrar = config.registrar.strip()
        account = Account(
            user=config.hotline_user,
            domain=registrar or config.sip_listen,
            password=config.password,
            reg_interval=300 if registrar else 0,
        )
        self.ua = await UserAgent.create(runtime, account)
        self.ua.on_incoming(on_incoming)
        if registrar:
            await self.ua.register()
            log.info("hotline %s registered with %s", config.hotline_user, registrar)
        log.info("SIP user agent listening on %s", config.sip_listen)

    def uri_for_number(self, number: str) -> str:
        """Where a citizen's number is dialled: through the trunk when there is one."""
        host = self.config.trunk.strip() or self.config.registrar.strip() or self.config.sip_listen
        return f"sip:{number}@{host}"

    async def dial(self, uri: str) -> Call:
        if self.ua is None:
            raise RuntimeError("the SIP stack is not started")
        return await self.ua.dial(uri)

    async def stop(self) -> None:
        if self.runtime is not None:
            runtime, self.runtime = self.runtime, None
            try:
                if self.ua is not None and self.config.registrar.strip():
                    await asyncio.wait_for(self.ua.unregister(), 3)
            except Exception:
                log.warning("could not unregister the hotline", exc_info=True)
            await runtime.close()
