"""Text-to-speech behind one small interface; the engine is chosen by `voice.tts`.

`espeak_pinyin`: Debian's espeak-ng speaks Mandarin with the right tones only through its
`cmn-latn-pinyin` voice, fed tone-numbered pinyin (its `cmn` voice reads characters wrongly), so the
text is turned into pinyin with pypinyin first. Audio is cached on disk by text: prompts are
synthesised once."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from typing import Protocol

from pypinyin import Style, lazy_pinyin

from voice_bridge.pcm import read_wav

_DIGITS = dict(zip("0123456789", "零一二三四五六七八九", strict=True))
_PAUSES = str.maketrans(
    {"，": ",", "。": ".", "？": "?", "！": "!", "；": ";", "：": ",", "、": ",", "（": ",", "）": ","}
)


class Tts(Protocol):
    name: str

    async def synthesise(self, text: str) -> bytes:
        """8 kHz 16-bit mono PCM of `text`."""
        ...


def to_pinyin(text: str) -> str:
    """Chinese text as espeak's pinyin voice reads it: syllables with tone numbers (5 = neutral),
    digits read one by one (phone and ticket numbers), Chinese punctuation as pauses."""
    text = re.sub(r"\d", lambda m: _DIGITS[m.group(0)], text).translate(_PAUSES)
    parts = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=lambda s: list(s))
    words: list[str] = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        if part in ",.?!;" and words:
            words[-1] += part
        elif re.fullmatch(r"[a-zü]+[1-5]", part):
            words.append(part.replace("ü", "v"))
        elif re.fullmatch(r"[A-Za-z]+", part):
            words.append(part.lower())
    return " ".join(words)


class EspeakPinyinTts:
    name = "espeak_pinyin"

    def __init__(self, cache_dir: Path, speed: int = 165) -> None:
        self.cache_dir = cache_dir
        self.speed = speed
        self._locks: dict[str, asyncio.Lock] = {}

    async def synthesise(self, text: str) -> bytes:
        pinyin = to_pinyin(text)
        if not pinyin:
            return b""
        key = hashlib.sha1(f"{self.speed}|{pinyin}".encode()).hexdigest()
        path = self.cache_dir / f"{key}.pcm"
        if path.exists():
            return path.read_bytes()
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if path.exists():
                return path.read_bytes()
            proc = await asyncio.create_subprocess_exec(
                "espeak-ng", "-v", "cmn-latn-pinyin", "-s", str(self.speed), "--stdout", pinyin,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            wav, err = await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"espeak-ng failed: {err.decode(errors='replace')[:200]}")
            pcm = read_wav(wav)
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(pcm)
            tmp.replace(path)
        self._locks.pop(key, None)
        return pcm


def make_tts(name: str, cache_dir: Path) -> Tts:
    if name == "espeak_pinyin":
        return EspeakPinyinTts(cache_dir)
    raise ValueError(f"unknown voice.tts engine {name!r}")
