"""The `voice:` section of config.yml as one typed object."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import PROJECT_ROOT, Settings


@dataclass(frozen=True)
class VadConfig:
    speech_threshold: int = 500
    end_silence_ms: int = 600
    max_utterance_seconds: float = 12.0


@dataclass(frozen=True)
class VoiceConfig:
    enabled: bool = False
    sip_listen: str = "127.0.0.1:5070"
    hotline_user: str = "12345"
    registrar: str = ""
    password: str = ""
    trunk: str = ""
    max_calls: int = 60
    greeting: str = ""
    menu_prompt: str = ""
    menu: dict[str, str] = field(default_factory=dict)
    no_input_prompt: str = ""
    no_match_prompt: str = ""
    input_timeout_seconds: float = 6.0
    failures_before_handoff: int = 2
    hold_prompt: str = ""
    position_prompt: str = ""
    hold_music_seconds: float = 20.0
    agent_ring_seconds: float = 20.0
    asr: str = "none"
    tts: str = "espeak_pinyin"
    engines: dict[str, dict[str, Any]] = field(default_factory=dict)
    vad: VadConfig = field(default_factory=VadConfig)
    recordings_dir: Path = PROJECT_ROOT / "var" / "recordings"
    recording_retention_days: int = 180
    tts_cache_dir: Path = PROJECT_ROOT / "var" / "tts-cache"

    @property
    def listen_host(self) -> str:
        return self.sip_listen.rsplit(":", 1)[0]

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiceConfig:
        raw: dict[str, Any] = dict(settings.get("voice", {}) or {})
        vad = VadConfig(**{k: v for k, v in (raw.pop("vad", {}) or {}).items() if k in VadConfig.__dataclass_fields__})
        engines = {name: dict(raw.pop(name, {}) or {}) for name in ("aliyun_nls",)}
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        known["menu"] = {str(k): str(v) for k, v in (known.get("menu") or {}).items()}
        for key in ("recordings_dir", "tts_cache_dir"):
            if key in known:
                path = Path(str(known[key]))
                known[key] = path if path.is_absolute() else PROJECT_ROOT / path
        for key in ("enabled",):
            if isinstance(known.get(key), str):
                known[key] = known[key].lower() in ("1", "true", "yes", "on")
        for key in ("max_calls", "failures_before_handoff", "recording_retention_days"):
            if key in known:
                known[key] = int(known[key])
        for key in ("input_timeout_seconds", "hold_music_seconds", "agent_ring_seconds"):
            if key in known:
                known[key] = float(known[key])
        for key in ("hotline_user", "registrar", "password", "trunk", "sip_listen"):
            if key in known:
                known[key] = "" if known[key] is None else str(known[key])
        return cls(**known, vad=vad, engines=engines)
