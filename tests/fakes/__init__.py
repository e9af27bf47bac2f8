"""Test doubles for the Telegram side: an in-process recording session and an HTTP Bot API."""

from .botapi import ApiCall, ApiError, FakeBotAPI, UploadedFile
from .recording import (
    BOT_ID,
    BOT_USERNAME,
    RecordingBot,
    RecordingSession,
    callback_update_json,
    make_callback_update,
    make_message_update,
    message_update_json,
)

__all__ = [
    "BOT_ID",
    "BOT_USERNAME",
    "ApiCall",
    "ApiError",
    "FakeBotAPI",
    "RecordingBot",
    "RecordingSession",
    "UploadedFile",
    "callback_update_json",
    "make_callback_update",
    "make_message_update",
    "message_update_json",
]
