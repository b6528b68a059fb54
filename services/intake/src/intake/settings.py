"""Settings of the intake service (``INTAKE_*`` environment variables)."""

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
    database_url: str  # INTAKE_DATABASE_URL; SQLite under var/ when embedded
    # INTAKE_PACKAGE_RETRY_SECONDS: how long an application may wait for its
    # document package before the reconcile task asks documents again.
    package_retry_seconds: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        platform = platform_settings(environ)
        env = read_env(environ)
        with env.prefixed("INTAKE_"):
            retry = env.int("PACKAGE_RETRY_SECONDS", 300)
        return cls(platform=platform,
                   database_url=service_database_url(env, "intake", platform),
                   package_retry_seconds=retry)
