"""Service settings, read from the environment and `.env` (see `.env.example`)."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"


class Settings(BaseSettings):
    # the project's .env wherever the command runs; one in the current directory wins
    model_config = SettingsConfigDict(env_file=(ROOT / ".env", ".env"), env_file_encoding="utf-8",
                                      extra="ignore")

    database_url: str = Field(default=f"sqlite+aiosqlite:///{ROOT / 'data' / 'grid_intake.db'}")
    http_host: str = "127.0.0.1"
    http_port: int = 8080

    telegram_bot_token: SecretStr | None = None
    telegram_api_base: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_bot_username: str | None = None
    telegram_polling_timeout: int = 25

    # WeChat Official Account (公众号); the channel is off unless APPID, SECRET and TOKEN are set
    wechat_oa_appid: str | None = None
    wechat_oa_secret: SecretStr | None = None
    wechat_oa_token: SecretStr | None = None
    wechat_oa_aes_key: SecretStr | None = None  # EncodingAESKey: compatible and safe modes
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_http_timeout_s: float = 8.0
    wechat_replay_window_s: int = 300  # 0 turns the timestamp check off
    wechat_oa_template_id: str | None = None
    wechat_oa_template_fields: str = (
        "number=character_string1,state=thing2,time=time3,line=thing4")

    # WeCom (企业微信) self-built app: workers and coordinators; off unless CORP_ID, SECRET,
    # AGENT_ID, TOKEN and AES_KEY are all set (WeCom callbacks are always encrypted)
    wecom_corp_id: str | None = None
    wecom_secret: SecretStr | None = None
    wecom_agent_id: int | None = None
    wecom_token: SecretStr | None = None
    wecom_aes_key: SecretStr | None = None
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    # WeCom smart robot (智能机器人, API mode) in staff groups; off unless both are set
    wecom_robot_token: SecretStr | None = None
    wecom_robot_aes_key: SecretStr | None = None
    # WeCom group robot webhook (消息推送) for a coordinators' group: alerts and digests
    wecom_group_webhook_url: SecretStr | None = None
    # 居民上报: how often serve pulls residents' reports from WeCom (0: never)
    wecom_resident_sync_seconds: float = 60.0

    # the signed JSON bridge for group-chat connectors; off unless BRIDGE_SECRET is set
    bridge_secret: SecretStr | None = None
    bridge_callback_url: str | None = None
    bridge_capabilities: str = ""
    bridge_public_url: str = ""  # the service as the connector reaches it (absolute media links)

    # the web desk under /desk/; off unless DESK_SECRET_KEY is set (it encrypts the sessions)
    desk_secret_key: SecretStr | None = None
    desk_base_url: str = ""  # as staff reach the service, for sign-in links (https: Secure)
    desk_session_hours: float = 12.0
    map_tile_url: str = ""  # e.g. 天地图 with its key; none: boundaries on a plain background
    map_tile_datum: Literal["gcj02", "wgs84"] = "gcj02"  # the tiles' datum (天地图: wgs84)

    language: Literal["zh", "en"] = "zh"
    timezone: str = "Asia/Shanghai"
    ticket_prefix: str = "FS"

    sample_data: bool = True
    county_dir: Path = SAMPLE_DIR
    media_dir: Path | None = None  # default: media/ beside the SQLite file, else data/media
    media_max_bytes: int = 20 * 1024 * 1024

    invite_ttl_days: int = 7
    route_answer_minutes: int = 30
    confirm_days: int = 3
    media_window_seconds: int = 120
    repeat_window_seconds: int = 600
    reports_per_minute: int = 5
    # 附议: a new report of the same category this close to an open one (both with points)
    duplicate_radius_m: int = 150
    # 回访: households drawn per community each week; weeks before one is called again
    callback_per_community_min: int = 3
    callback_per_community_max: int = 5
    callback_cooldown_weeks: int = 12

    ack_hours: float = 2.0
    resolve_work_days: int = 3
    escalation_steps_hours: float = 4.0
    # 紧急 tickets: clock hours, not working time (see bot/tickets/sla.py)
    ack_hours_urgent: float = 0.5
    resolve_hours_urgent: float = 24.0
    urgent_categories: str = "安全隐患"  # comma-separated categories urgent from the start
    quiet_hours: str = "22-7"  # local hours when non-urgent escalations wait; "off": none
    digest_at: time = time(8, 30)  # the daily digest in chat, local time
    work_day_start: int = 8
    work_day_end: int = 18

    outbox_max_attempts: int = 6
    outbox_poll_seconds: float = 0.5
    outbox_send_timeout_seconds: float = 20.0
    outbox_lease_seconds: float = 30.0
    sweep_seconds: float = 30.0
    private_per_second: float = 1.0
    group_per_minute: int = 20
    global_per_second: int = 30

    intake_batch_max: int = 64
    log_level: str = "INFO"

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, v: object) -> object:
        lang = v.strip().lower() if isinstance(v, str) else v
        if lang not in ("zh", "en"):
            raise ValueError(f"LANGUAGE 只能是 zh（中文）或 en（English），不能是 {v!r}")
        return lang

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, v: str) -> str:
        start, sep, end = v.strip().partition("-")
        if v.strip().lower() in ("", "off") or (
                sep and start.isdigit() and end.isdigit() and max(int(start), int(end)) < 24):
            return v.strip()
        raise ValueError(f"QUIET_HOURS 应写成 22-7（几点到几点）或 off，不能是 {v!r}")

    def urgent_category_set(self) -> frozenset[str]:
        return frozenset(c.strip() for c in self.urgent_categories.replace("，", ",").split(",")
                         if c.strip())

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"TIMEZONE 不是时区名（应如 Asia/Shanghai）：{v!r}") from None
        return v

    # relative paths mean the same files from any directory the command is run in
    @field_validator("database_url")
    @classmethod
    def _sqlite_under_root(cls, url: str) -> str:
        scheme, sep, rest = url.partition(":///")
        path, q, query = rest.partition("?")
        if (not sep or not scheme.startswith("sqlite") or path in ("", ":memory:")
                or path.startswith("file:") or Path(path).is_absolute()):
            return url
        return f"{scheme}:///{ROOT / path}{q}{query}"

    @field_validator("county_dir")
    @classmethod
    def _county_under_root(cls, v: Path) -> Path:
        return v if v.is_absolute() else ROOT / v

    @field_validator("media_dir")
    @classmethod
    def _media_under_root(cls, v: Path | None) -> Path | None:
        return v if v is None or v.is_absolute() else ROOT / v

    def media_root(self) -> Path:
        if self.media_dir is not None:
            return self.media_dir
        from sqlalchemy.engine import make_url  # here: most commands never need it

        db = make_url(self.database_url)
        if db.get_backend_name() == "sqlite" and db.database not in (None, "", ":memory:"):
            return Path(str(db.database)).parent / "media"
        return ROOT / "data" / "media"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
