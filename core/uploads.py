"""Files citizens send, kept for the agents who answer them: web widget uploads (hub/routes/web_widget.py)
and WeChat images and voice messages (channels/wechat, through `ChannelFiles`).

Every file is stored as `<channels.web.upload_dir>/<YYYY-MM-DD>/<uuid>.<ext>` next to `<uuid>.json`
(whose it is and how to show it), its type recognised by its first bytes (never by its name). It is
served back (hub/routes/uploads.py) at `/api/web/uploads/<YYYY-MM-DD>/<uuid>.<ext>` only to the web visitor who sent it
(`?visitor_id=` or `X-Visitor-Id`) or to logged-in agents, supervisors, inspectors and administrators;
a file from another channel (no `visitor_id` in its record) only to those staff.

A message carrying a file has `meta.attachment = {url, name, type, size}` (what the consoles show).
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.config import PROJECT_ROOT

URL_PREFIX = "/api/web/uploads/"
DEFAULT_DIR = "var/uploads"

# kind -> (extensions a file name may carry, the one we store, MIME type)
TYPES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "jpg": ((".jpg", ".jpeg", ".jfif"), "jpg", "image/jpeg"),
    "png": ((".png",), "png", "image/png"),
    "gif": ((".gif",), "gif", "image/gif"),
    "webp": ((".webp",), "webp", "image/webp"),
    "pdf": ((".pdf",), "pdf", "application/pdf"),
    "amr": ((".amr",), "amr", "audio/amr"),  # WeChat voice messages
}
MIME_OF_EXT = {ext: mime for _names, ext, mime in TYPES.values()}
KIND_OF_NAME_EXT = {name: kind for kind, (names, _ext, _mime) in TYPES.items() for name in names}
IMAGE_KINDS = frozenset({"jpg", "png", "gif", "webp"})

DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NAME_PATTERN = re.compile(r"^([0-9a-f]{32})\.(" + "|".join(sorted(MIME_OF_EXT)) + r")$")
# an image or an audio file opened on its own can run nothing (the PDF viewer needs no such fence)
FENCE = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; sandbox"


def sniff(data: bytes) -> str | None:
    """The file's real kind from its first bytes (never from its name)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:1024].lstrip(b"\r\n\t ").startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"#!AMR\n"):
        return "amr"
    return None


def clean_name(name: str | None, kind: str) -> str:
    """A display name safe to show anywhere: no path, no control characters, at most 100 characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    return name[:100] or f"未命名.{TYPES[kind][1]}"


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f} MB".replace(".0 MB", " MB")
    return f"{max(1, round(size / 1024))} KB"


def upload_root(settings: Any) -> Path:
    root = Path(str(settings.get("channels.web.upload_dir") or DEFAULT_DIR))
    return root if root.is_absolute() else PROJECT_ROOT / root


@dataclass(frozen=True)
class Stored:
    """A kept file: what a message's `meta.attachment` says, and where it lies."""

    attachment: dict[str, Any]
    path: Path
    owner_path: Path


async def keep(settings: Any, data: bytes, kind: str, name: str, owner: dict[str, Any]) -> Stored:
    """Store `data` (already known to be of `kind`) for `owner` (e.g. {"visitor_id": ...}). Raises OSError."""
    ext, mime = TYPES[kind][1], TYPES[kind][2]
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    file_id = uuid.uuid4().hex
    folder = upload_root(settings) / day
    path, owner_path = folder / f"{file_id}.{ext}", folder / f"{file_id}.json"
    attachment = {"url": f"{URL_PREFIX}{day}/{file_id}.{ext}", "name": name, "type": mime, "size": len(data)}
    await asyncio.to_thread(_write, folder, path, owner_path, data, {**owner, **attachment})
    return Stored(attachment, path, owner_path)


async def discard(stored: Stored) -> None:
    """Remove a kept file whose message could not be recorded."""
    await asyncio.to_thread(_unlink, stored.path, stored.owner_path)


def _write(folder: Path, path: Path, owner_path: Path, data: bytes, owner: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for target, content in ((owner_path, json.dumps(owner, ensure_ascii=False).encode("utf-8")), (path, data)):
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(content)
        partial.replace(target)


def _unlink(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


class ChannelFiles:
    """What a chat channel gets to keep a citizen's file (WeChat images and voice messages):
    `keep(data, label=, owner=)` stores it and returns the message's `meta.attachment`."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings

    async def keep(self, data: bytes, *, label: str, owner: dict[str, Any]) -> dict[str, Any]:
        """Raises ValueError for a file of no known kind, OSError when it cannot be written."""
        kind = sniff(data)
        if kind is None:
            raise ValueError("not a file kind the hub keeps")
        stored = await keep(self._settings, data, kind, clean_name(f"{label}.{TYPES[kind][1]}", kind), owner)
        return stored.attachment
