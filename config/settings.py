"""Service settings, read from the environment and `.env` (see `.env.example`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(default=f"sqlite+aiosqlite:///{ROOT / 'data' / 'grid_intake.db'}")
    http_host: str = "127.0.0.1"
    http_port: int = 8080

    telegram_bot_token: SecretStr | None = None
    telegram_api_base: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_bot_username: str | None = None
    telegram_polling_timeout: int = 25

    language: str = "zh"
    timezone: str = "Asia/Shanghai"
    ticket_prefix: str = "FS"

    sample_data: bool = True
    county_dir: Path = SAMPLE_DIR

    invite_ttl_days: int = 7
    route_answer_minutes: int = 30
    confirm_days: int = 3
    media_window_seconds: int = 120

    ack_hours: float = 2.0
    resolve_work_days: int = 3
    escalation_steps_hours: float = 4.0
    work_day_start: int = 8
    work_day_end: int = 18

    outbox_max_attempts: int = 6
    outbox_poll_seconds: float = 0.5
    sweep_seconds: float = 30.0
    private_per_second: float = 1.0
    group_per_minute: int = 20
    global_per_second: int = 30

    intake_batch_max: int = 64
    log_level: str = "INFO"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
