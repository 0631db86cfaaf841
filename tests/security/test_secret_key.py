"""The published default secret key is never used (issue #12 Security 3 and #11): without a
configured key each machine generates its own, kept private under var/."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx

from core.config import DEFAULT_CONFIG_PATH, load_settings
from core.secrets import action_token, resolve_secret_key
from tests.conftest import RunningSystem

PUBLISHED = "change-me-in-production"  # what config.yml shipped with


def test_a_missing_or_published_key_is_replaced_by_a_private_generated_one(tmp_path: Path) -> None:
    key_file = tmp_path / "var" / "secret_key"
    generated = resolve_secret_key(PUBLISHED, key_file)
    assert generated != PUBLISHED and len(generated) >= 48
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert resolve_secret_key("", key_file) == generated  # every worker and the launcher read the same key
    assert resolve_secret_key(None, key_file) == generated
    assert resolve_secret_key("an-operator's own long key", key_file) == "an-operator's own long key"


def test_settings_never_hand_out_the_shipped_key() -> None:
    shipped = load_settings(environ={"ZWKF_CONFIG": str(DEFAULT_CONFIG_PATH)})
    assert shipped.secret_key not in ("", PUBLISHED)
    forced = load_settings(environ={"ZWKF_HUB__SECRET_KEY": PUBLISHED})
    assert forced.secret_key == shipped.secret_key  # the published value is ignored, not used


def test_the_public_default_gives_no_valid_action_webhook_token(system: RunningSystem) -> None:
    call = {"next_action": "action_handoff", "sender_id": "someone-elses-conversation", "tracker": {}}
    with httpx.Client(base_url=system.hub_url, timeout=30) as http:
        for guessed in (PUBLISHED, ""):
            reply = http.post("/actions/webhook", params={"token": action_token(guessed)}, json=call)
            assert reply.status_code == 403
        # the hub's real key does open it (this call is garbage: 400, not 403)
        real = http.post("/actions/webhook", params={"token": action_token(load_settings().secret_key)}, content=b"x")
        assert real.status_code == 400
