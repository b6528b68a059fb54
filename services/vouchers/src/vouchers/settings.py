"""Settings of the vouchers service (``VOUCHERS_*`` environment variables)."""

from __future__ import annotations

import datetime as dt
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
    reservation_ttl: dt.timedelta  # VOUCHERS_RESERVATION_TTL_DAYS: unposted reservations then expire
    sad_fund: str  # VOUCHERS_SAD_FUND: the fund that pays SAD vouchers from intake's care plans

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        platform = platform_settings(environ)
        env = read_env(environ)
        with env.prefixed("VOUCHERS_"):
            ttl_days = env.int("RESERVATION_TTL_DAYS", 180)
            sad_fund = env.str("SAD_FUND", "fnps")
        return cls(platform=platform,
                   database_url=service_database_url(env, "vouchers", platform),
                   reservation_ttl=dt.timedelta(days=ttl_days), sad_fund=sad_fund)
