"""Load `config.yml` and apply environment overrides.

Every setting can be overridden by `ZWKF_<SECTION>__<KEY>` so that one image serves many
deployments; the few names every operator knows (DATABASE_URL, REDIS_URL, RASA_URL,
HUB_PORT) are honoured too.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.secrets import rasa_api_token, resolve_secret_key

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yml"

_WELL_KNOWN_ENV = {
    "DATABASE_URL": ("storage", "database_url"),
    "REDIS_URL": ("storage", "redis_url"),
    "RASA_URL": ("bot", "rasa_url"),
    "HUB_PORT": ("hub", "port"),
}


def _coerce(raw: str, current: Any) -> Any:
    """Give an environment string the type of the value it replaces."""
    if isinstance(current, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if current is None:
        return yaml.safe_load(raw)
    return raw


def _parent(tree: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """The dict that holds the last key of ``path``, made on the way when missing."""
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})
    return node


def _set_path(tree: dict[str, Any], path: tuple[str, ...], raw: str) -> None:
    node = _parent(tree, path)
    node[path[-1]] = _coerce(raw, node.get(path[-1]))


@dataclass(frozen=True)
class Settings:
    """The hub's settings as a read-only tree with typed accessors for the common ones."""

    tree: dict[str, Any]

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.tree
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node

    @property
    def database_url(self) -> str:
        return str(self.get("storage.database_url"))

    @property
    def redis_url(self) -> str:
        return str(self.get("storage.redis_url"))

    @property
    def redis_prefix(self) -> str:
        return str(self.get("storage.redis_key_prefix", "zwkf:"))

    @property
    def rasa_url(self) -> str:
        return str(self.get("bot.rasa_url"))

    @property
    def rasa_nodes(self) -> list[str]:
        """Every Rasa server a retrained model is loaded into: ``bot.rasa_nodes`` (a list, or
        comma-separated from the environment), else just ``bot.rasa_url``."""
        raw = self.get("bot.rasa_nodes") or []
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        nodes = [str(n).strip().rstrip("/") for n in items if str(n).strip()]
        return list(dict.fromkeys(nodes)) or [self.rasa_url]

    @property
    def secret_key(self) -> str:
        """`hub.secret_key`, or (when empty or a published default) the key generated on first start
        and kept in `hub.secret_key_file` (default var/secret_key, mode 0600). Use this, never the raw
        setting: the published default must protect nothing."""
        key_file = Path(str(self.get("hub.secret_key_file") or "var/secret_key"))
        if not key_file.is_absolute():
            key_file = PROJECT_ROOT / key_file
        return resolve_secret_key(self.get("hub.secret_key"), key_file)

    @property
    def rasa_token(self) -> str:
        """The token Rasa's HTTP API requires (`rasa run --auth-token`): `bot.rasa_token` when set
        (Rasa on other machines), else derived from the secret key."""
        configured = str(self.get("bot.rasa_token") or "").strip()
        return configured or rasa_api_token(self.secret_key)

    @property
    def host(self) -> str:
        return str(self.get("hub.host"))

    @property
    def port(self) -> int:
        return int(self.get("hub.port"))

    @property
    def public_url(self) -> str:
        return str(self.get("hub.public_url") or f"http://{self.host}:{self.port}")

    def with_overrides(self, overrides: dict[str, Any]) -> Settings:
        """A copy with dotted keys replaced (used by tests and the launcher)."""
        tree = copy.deepcopy(self.tree)
        for dotted, value in overrides.items():
            keys = tuple(dotted.split("."))
            _parent(tree, keys)[keys[-1]] = value
        return Settings(tree)


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    config_path = Path(env.get("ZWKF_CONFIG", path or DEFAULT_CONFIG_PATH))
    tree: dict[str, Any] = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    for name, dotted in _WELL_KNOWN_ENV.items():
        if env.get(name):
            _set_path(tree, dotted, env[name])
    for name, raw in env.items():
        if name.startswith("ZWKF_") and "__" in name:
            keys = tuple(part.lower() for part in name[len("ZWKF_"):].split("__"))
            _set_path(tree, keys, raw)
    return Settings(tree)
