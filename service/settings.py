"""Service settings, read from UXCX_* environment variables once, in the app factory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from limits import parse_many
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the HTTP service can be told; each limit is a named setting with a sane default."""

    model_config = SettingsConfigDict(env_prefix="UXCX_", extra="ignore")

    models_dir: Path = Field(default=Path("models"), description="folder of model versions; `current` names the one served")
    data_dir: Path = Field(default=Path("var"), description="folder for the default SQLite database")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/uxcx.db (PostgreSQL: postgresql+psycopg://...)"
    )
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, description="comma-separated API keys; needed for feedback and export"
    )
    classify_needs_key: bool = Field(default=False, description="require an API key for POST /v1/classify")
    stats_needs_key: bool = Field(default=False, description="require an API key for GET /v1/stats")
    store_text: bool = Field(default=False, description="store the text of recorded predictions (masked)")
    record: bool = Field(default=True, description="record classified items in the database unless a request opts out")
    max_pending_records: int = Field(
        default=50_000, ge=1, description="predictions kept in memory while the database is down, then the oldest are dropped"
    )
    max_batch: int = Field(default=1000, ge=1, description="most items in one classify request")
    max_text_chars: int = Field(default=20_000, ge=1, description="longest text accepted, in characters")
    max_body_bytes: int = Field(default=5_000_000, ge=1024, description="largest request body accepted, in bytes")
    rate_limit: str = Field(
        default="6000/minute", description="per-client limit on /v1 requests, e.g. '100/second;6000/minute'; empty: none"
    )
    blas_threads: int = Field(default=1, ge=1, le=64, description="BLAS threads per worker process")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated origins allowed by CORS; none by default"
    )

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        if value.strip():
            try:
                parse_many(value)
            except ValueError as exc:
                raise ValueError(f"UXCX_RATE_LIMIT {value!r} is not a rate such as '100/second': {exc}") from exc
        return value.strip()

    @property
    def db_url(self) -> str:
        """The database URL in use: the setting, or the default SQLite file under data_dir."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'uxcx.db').as_posix()}"
