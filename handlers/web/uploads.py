"""Uploads waiting for their confirmation: held in this process, for one person, a short while.

Confirming names the upload by a random id, so the file is not sent twice; an upload not
confirmed in time is forgotten. With several service instances the confirmation must reach
the one that checked the file, or it asks for the upload again.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

TTL_SECONDS = 15 * 60
MAX_HELD = 8  # zips of at most 5 MiB each: memory stays bounded


@dataclass(frozen=True, slots=True)
class Upload:
    person_id: int
    file_name: str
    data: bytes
    at: float  # the service clock's timestamp when it was checked


@dataclass
class Uploads:
    held: dict[str, Upload] = field(default_factory=dict)

    def _expire(self, now: float) -> None:
        self.held = {k: u for k, u in self.held.items() if 0 <= now - u.at <= TTL_SECONDS}

    def hold(self, upload: Upload) -> str:
        self._expire(upload.at)
        # one waiting upload per person: a second check replaces the first
        self.held = {k: u for k, u in self.held.items() if u.person_id != upload.person_id}
        while len(self.held) >= MAX_HELD:
            del self.held[min(self.held, key=lambda k: self.held[k].at)]
        key = secrets.token_urlsafe(18)
        self.held[key] = upload
        return key

    def take(self, key: str, person_id: int, now: float) -> Upload | None:
        """The upload, once: only to the person who made it, and only while it is fresh."""
        self._expire(now)
        found = self.held.get(key)
        if found is None or found.person_id != person_id:
            return None
        del self.held[key]
        return found
