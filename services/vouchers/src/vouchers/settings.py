"""Settings of the vouchers service (``VOUCHERS_*`` environment variables)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ambito_common.settings import (
    PlatformSettings,
    platform_settings,
    read_env,
    service_database_url,
)


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings
    database_url: str  # VOUCHERS_DATABASE_URL; SQLite under var/ when embedded

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        platform = platform_settings(environ)
        env = read_env(environ)
        return cls(platform=platform,
                   database_url=service_database_url(env, "vouchers", platform))
