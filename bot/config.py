"""Settings, read once: environment first, then ``.env``, then defaults.

The names are fixed for every deployment (see DESIGN.md); secrets are typed as secrets so
they never appear in a log line or a repr.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.desk import Desk, ServiceHours
from nlu.config import EngineMode, NluConfig

__all__ = ["Settings", "default_data_dir"]


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "portpal"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str | None = None
    database_url: str | None = None
    portpal_data_dir: Path = default_data_dir()
    rasa_url: str | None = None
    staff_chat_id: int | None = None
    portpal_public_url: str | None = None
    portpal_http_host: str = "127.0.0.1"
    portpal_http_port: int = 8080
    # Beyond DESIGN.md's fixed names: where Rasa lives and which engine to insist on.
    portpal_rasa_venv: Path | None = None
    portpal_rasa_model_dir: Path | None = None
    portpal_nlu: EngineMode = "auto"
    # Send a PDF beside each .docx/.xlsx (LibreOffice headless; skipped when not installed).
    portpal_forms_pdf: bool = False
    # Webhook secret token (Telegram's X-Telegram-Bot-Api-Secret-Token); unset: derived from
    # the bot token, so every replica agrees.
    portpal_webhook_secret: SecretStr | None = None
    # Messages per second over all chats (Telegram allows about 30); 0: no overall limit
    # (a local Bot API server or a benchmark).
    portpal_telegram_rate: float = 30.0
    # Messages a minute one Telegram user may send before the bot pauses answering them
    # (a notice says so once); 0: no limit. Messages relayed to staff are not limited.
    portpal_user_rate: int = 30
    # Conversations untouched this many days are deleted with everything about them (and
    # delivery records older than that); 0 keeps everything. Run daily by the bot, or by
    # ``portpal privacy purge``.
    portpal_retention_days: int = 365
    # Logs: WARNING (default), INFO (a line per handled event) or DEBUG; text or json lines.
    portpal_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    portpal_log_format: Literal["text", "json"] = "text"
    # The help desk (with STAFF_CHAT_ID): when staff answer, when to nudge them about an
    # unclaimed handoff, when to give up and offer the hotline, the wait users are told,
    # and whether users see staff names.
    portpal_service_hours: str = "mon-fri 09:00-17:30"
    portpal_service_timezone: str = "Asia/Shanghai"
    portpal_handoff_nudge_minutes: int = 5
    portpal_handoff_timeout_minutes: int = 15
    portpal_handoff_wait_minutes: int = 5
    portpal_staff_names: bool = False

    @field_validator("portpal_service_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        ServiceHours.parse(value)  # ValueError says what a valid value looks like
        return value

    def desk(self) -> Desk:
        """How the help desk works; without STAFF_CHAT_ID there is none (hotlines instead)."""
        return Desk(
            enabled=self.staff_chat_id is not None,
            hours=ServiceHours.parse(self.portpal_service_hours, self.portpal_service_timezone),
            nudge_after=timedelta(minutes=self.portpal_handoff_nudge_minutes),
            give_up_after=timedelta(minutes=self.portpal_handoff_timeout_minutes),
            wait_minutes=self.portpal_handoff_wait_minutes,
            show_names=self.portpal_staff_names,
        )

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def data_dir(self) -> Path:
        return self.portpal_data_dir.expanduser()

    @property
    def rasa_model_dir(self) -> Path:
        return (self.portpal_rasa_model_dir or self.data_dir / "rasa-models").expanduser()

    def nlu_config(self, mode: EngineMode | None = None) -> NluConfig:
        return NluConfig(
            mode=mode or self.portpal_nlu,
            rasa_url=self.rasa_url,
            rasa_venv=self.portpal_rasa_venv,
            model_dir=self.rasa_model_dir,
            log_dir=self.data_dir / "logs",
        )

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'portpal.sqlite3'}"
