"""Settings of the gateway app (``GATEWAY_*`` environment variables).

The gateway is the one holder of the identity private key and of the session
secret. In embedded mode both are generated once under ``var/keys/`` so a
fresh checkout runs; in distributed mode they are mounted secrets and a
missing one stops the process at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ambito_common.identity import ensure_keypair
from ambito_common.settings import (
    PlatformSettings,
    SettingsError,
    embedded_secret,
    platform_settings,
    read_env,
    require,
    service_database_url,
)
from ambito_common.tasks import SERVICES


@dataclass(frozen=True)
class Settings:
    platform: PlatformSettings
    database_url: str  # GATEWAY_DATABASE_URL; SQLite var/gateway.sqlite3 when embedded
    secret_key: str  # GATEWAY_SECRET_KEY signs the session cookie; generated under var/keys/ when embedded
    identity_private_key_file: Path  # GATEWAY_IDENTITY_PRIVATE_KEY_FILE, Ed25519 PEM (var/keys/identity.pem)
    token_ttl_seconds: int  # GATEWAY_TOKEN_TTL_SECONDS: identity tokens are short-lived (600)
    session_hours: int  # GATEWAY_SESSION_HOURS: how long a login lasts before asking again (8)
    service_urls: Mapping[str, str]  # GATEWAY_SERVICE_URLS "intake=http://h:p,vouchers=...,documents=..."

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        platform = platform_settings(environ)
        env = read_env(environ)
        keys = platform.var_dir / "keys"
        with env.prefixed("GATEWAY_"):
            secret_key = env.str("SECRET_KEY", "")
            private_key_file = env.path("IDENTITY_PRIVATE_KEY_FILE", keys / "identity.pem")
            ttl = env.int("TOKEN_TTL_SECONDS", 600)
            session_hours = env.int("SESSION_HOURS", 8)
            urls = env.str("SERVICE_URLS", "")
        if platform.embedded:
            secret_key = secret_key or embedded_secret(keys / "gateway-secret", 48).decode("ascii").strip()
            ensure_keypair(private_key_file, platform.identity_public_key_file)
            urls = urls or ",".join(f"{service}={platform.public_url}" for service in SERVICES)
        require(secret_key, "GATEWAY_SECRET_KEY")
        require(urls, "GATEWAY_SERVICE_URLS")
        if not private_key_file.is_file():
            raise SettingsError(f"GATEWAY_IDENTITY_PRIVATE_KEY_FILE: {private_key_file} does not exist")
        if ttl <= 0 or session_hours <= 0:
            raise SettingsError("GATEWAY_TOKEN_TTL_SECONDS and GATEWAY_SESSION_HOURS must be positive")
        return cls(platform=platform,
                   database_url=service_database_url(env, "gateway", platform),
                   secret_key=secret_key,
                   identity_private_key_file=private_key_file,
                   token_ttl_seconds=ttl,
                   session_hours=session_hours,
                   service_urls=parse_service_urls(urls))


def parse_service_urls(value: str) -> dict[str, str]:
    """``"intake=http://h:p,vouchers=..."`` as a mapping naming exactly the platform's services."""
    urls: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not url.strip():
            raise SettingsError(f"GATEWAY_SERVICE_URLS: {item!r} is not service=url")
        urls[name.strip()] = url.strip().rstrip("/")
    if sorted(urls) != sorted(SERVICES):
        raise SettingsError(f"GATEWAY_SERVICE_URLS must name exactly {', '.join(SERVICES)}")
    return urls
