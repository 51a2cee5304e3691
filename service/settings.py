"""Service settings, read from UXCX_* environment variables once, in the app factory."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the HTTP service can be told; each limit is a named setting with a sane default."""

    model_config = SettingsConfigDict(env_prefix="UXCX_", extra="ignore")

    models_dir: Path = Field(default=Path("models"), description="folder of model versions; `current` names the one served")
    max_batch: int = Field(default=1000, ge=1, description="most items in one classify request")
    max_text_chars: int = Field(default=20_000, ge=1, description="longest text accepted, in characters")
    max_body_bytes: int = Field(default=5_000_000, ge=1024, description="largest request body accepted, in bytes")
    cors_origins: list[str] = Field(default_factory=list, description="origins allowed by CORS; none by default")
