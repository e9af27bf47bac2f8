"""The media store: photos, voice and video kept once, by content hash, under data/media/.

A platform's media ids belong to it (and WeChat's expire after 3 days), so what a resident
sends is fetched when it arrives and kept here; a sender that cannot re-use an id uploads the
bytes from the store. A photo reference (`photo_ref`) carries both, so each sender picks.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import filetype

# what residents and workers send; anything else is refused rather than kept
ALLOWED = {
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/heic",
    "audio/ogg", "audio/amr", "audio/mpeg", "audio/mp4", "audio/x-wav",
    "video/mp4", "video/quicktime", "video/3gpp",
}
MAX_BYTES = 20 * 1024 * 1024  # Telegram's own download limit; a WeChat photo is far less


class MediaRefused(ValueError):
    """Too large, empty, or not a kind of media the store keeps."""


@dataclass(frozen=True, slots=True)
class Stored:
    sha256: str
    mime: str
    size: int


class MediaStore:
    def __init__(self, root: Path, max_bytes: int = MAX_BYTES) -> None:
        self.root, self.max_bytes = root, max_bytes

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise MediaRefused("not a media reference")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> Stored:
        """Keep `data` (once: the same bytes are the same file); checks size and type."""
        if not data:
            raise MediaRefused("empty file")
        if len(data) > self.max_bytes:
            raise MediaRefused(f"{len(data)} bytes is over the {self.max_bytes}-byte limit")
        kind = filetype.guess(data)
        if kind is None or kind.mime not in ALLOWED:
            raise MediaRefused(f"not a photo, voice or video ({kind.mime if kind else '?'})")
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # write then rename: a crash never leaves half a file under the final name
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".in-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        return Stored(sha, kind.mime, len(data))

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def has(self, sha256: str) -> bool:
        try:
            return self.path(sha256).exists()
        except MediaRefused:
            return False


def photo_ref(channel: str, file_id: str, sha256: str | None) -> str:
    """How a photo travels in an outgoing message: its origin, its id there, its bytes' hash."""
    return f"{channel}|{file_id}|{sha256 or ''}"


def parse_ref(ref: str) -> tuple[str | None, str, str | None]:
    """(origin channel, file id, sha256); a bare file id (older rows) has no origin or hash."""
    parts = ref.split("|")
    if len(parts) != 3:
        return None, ref, None
    channel, file_id, sha = parts
    return channel or None, file_id, sha or None
