"""Settings of the intake service (``INTAKE_*`` environment variables)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ambito_common.settings import (
    PlatformSettings,
    SettingsError,
    embedded_secret,
    platform_settings,
    read_env,
    service_database_url,
)

MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings
    database_url: str  # INTAKE_DATABASE_URL; SQLite under var/ when embedded
    # INTAKE_PACKAGE_RETRY_SECONDS: how long an application may wait for its
    # document package before the reconcile task asks documents again.
    package_retry_seconds: int
    # INTAKE_STORAGE_DIR: where uploaded attachments live (default var/intake-uploads).
    storage_dir: Path
    # INTAKE_UPLOAD_MAX_FILE_BYTES / INTAKE_UPLOAD_MAX_REQUEST_BYTES: 10 MB a file, 30 MB a request.
    upload_max_file_bytes: int
    upload_max_request_bytes: int
    # INTAKE_DRAFT_TTL_DAYS: how long an unsubmitted SAD request is kept (default 30 days).
    draft_ttl_days: int
    # INTAKE_LINK_KEY_FILE: the secret signing desk booking links (default
    # var/keys/intake-links.key, created when embedded; a mounted secret when distributed).
    link_key_file: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        platform = platform_settings(environ)
        env = read_env(environ)
        with env.prefixed("INTAKE_"):
            retry = env.int("PACKAGE_RETRY_SECONDS", 300)
            storage_dir = env.path("STORAGE_DIR", platform.var_dir / "intake-uploads").resolve()
            max_file = env.int("UPLOAD_MAX_FILE_BYTES", 10 * MB)
            max_request = env.int("UPLOAD_MAX_REQUEST_BYTES", 30 * MB)
            draft_ttl_days = env.int("DRAFT_TTL_DAYS", 30)
            link_key_file = env.path("LINK_KEY_FILE", platform.var_dir / "keys" / "intake-links.key")
        if platform.embedded:
            embedded_secret(link_key_file, 32)
        if not link_key_file.is_file():
            raise SettingsError(f"INTAKE_LINK_KEY_FILE: {link_key_file} does not exist")
        return cls(platform=platform,
                   database_url=service_database_url(env, "intake", platform),
                   package_retry_seconds=retry, storage_dir=storage_dir,
                   upload_max_file_bytes=max_file, upload_max_request_bytes=max_request,
                   draft_ttl_days=draft_ttl_days, link_key_file=link_key_file)
