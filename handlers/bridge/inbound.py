"""What a connector posts to /bridge/v1/messages, checked strictly before anything is stored.

Ids are strings (a number is taken as its decimal string). Only `id`, `chat`, `sender` and one
of `text`, `location` or `media` are required; unknown fields are ignored, so connectors may
send more than this version reads.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

MAX_ID = 64  # the database keeps chat and person ids in 64 characters
MAX_KEY = 96  # chat id + ":" + message id, the inbound log's key
MAX_MEDIA = 9
MAX_URL = 2048


def _id_text(v: object) -> object:
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


Id = Annotated[str, BeforeValidator(_id_text),
               StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID)]
Url = Annotated[str, StringConstraints(max_length=MAX_URL, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://\S+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Chat(_Model):
    id: Id
    kind: Literal["group", "private"]
    title: Annotated[str, StringConstraints(max_length=128)] = ""


class Sender(_Model):
    id: Id
    name: Annotated[str, StringConstraints(max_length=64)] = ""


class Location(_Model):
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
    datum: Literal["wgs84", "gcj02"] = "wgs84"


class MediaIn(_Model):
    kind: Literal["photo", "voice", "video"]
    url: Url


class Message(_Model):
    id: Id
    chat: Chat
    sender: Sender
    text: str = ""  # as long as the body allows: the core cuts a long report and says so
    mentions_bot: bool = False
    reply_to: Annotated[str | None, BeforeValidator(_id_text),
                        StringConstraints(max_length=MAX_ID)] = None
    location: Location | None = None
    media: Annotated[list[MediaIn], Field(max_length=MAX_MEDIA)] = []

    @model_validator(mode="after")
    def _something_said(self) -> Message:
        if not self.text.strip() and self.location is None and not self.media:
            raise ValueError("one of text, location or media is required")
        if len(self.chat.id) + 1 + len(self.id) > MAX_KEY:
            raise ValueError(f"chat.id and id together may have at most {MAX_KEY - 1} "
                             "characters")
        return self

    @property
    def key(self) -> str:
        """What the core's inbound log knows this message by (see Inbound.external_id)."""
        return f"{self.chat.id}:{self.id}"


class BadMessage(ValueError):
    """Not JSON, or not a bridge message; the text says what is wrong, never the values."""


def parse(body: bytes) -> Message:
    try:
        return Message.model_validate_json(body)
    except ValidationError as e:
        problems = []
        for err in e.errors(include_input=False, include_url=False)[:5]:
            where = ".".join(str(p) for p in err["loc"]) or "body"
            problems.append(f"{where}: {err['msg']}")
        raise BadMessage("; ".join(problems)) from None
