"""Typed settings read from environment variables (12-factor).

Platform-wide variables start with ``AMBITO_``; each service reads its own with
its prefix (``INTAKE_``, ``DOCUMENTS_``, ...). In embedded mode everything has a
working default under ``var/``; in distributed mode a missing secret stops the
process at start-up instead of failing on the first request.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from environs import Env

EMBEDDED = "embedded"
DISTRIBUTED = "distributed"


class SettingsError(RuntimeError):
    """Raised when the environment does not describe a runnable service."""


class _MappingEnv(Env):
    """An environs reader over an explicit mapping instead of ``os.environ``.

    Tests and the embedded runner build several services with different settings
    in one process; reading a mapping keeps them from leaking into each other.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(eager=True)
        self._mapping = dict(environ)

    def _get_value(self, env_key: str, default: object) -> object:
        return self._mapping.get(env_key, default)


def read_env(environ: Mapping[str, str] | None = None) -> Env:
    """An environs reader over ``environ`` (default: the process environment)."""
    return _MappingEnv(os.environ if environ is None else environ)


@dataclass(frozen=True)
class PlatformSettings:
    """What every service needs to know about the platform it runs in."""

    mode: str
    var_dir: Path
    data_dir: Path
    broker_url: str
    public_url: str
    identity_public_key_file: Path
    identity_cookie: str
    demo: bool
    demo_password: str
    log_json: bool
    smtp_url: str
    mail_from: str
    broker_visibility_timeout: int

    @property
    def embedded(self) -> bool:
        return self.mode == EMBEDDED


def platform_settings(environ: Mapping[str, str] | None = None) -> PlatformSettings:
    env = read_env(environ)
    with env.prefixed("AMBITO_"):
        root = env.path("ROOT", Path.cwd())
        mode = env.str("MODE", EMBEDDED)
        if mode not in (EMBEDDED, DISTRIBUTED):
            raise SettingsError(f"AMBITO_MODE must be {EMBEDDED!r} or {DISTRIBUTED!r}, not {mode!r}")
        var_dir = env.path("VAR_DIR", root / "var").resolve()
        default_broker = f"filesystem://{var_dir}/broker" if mode == EMBEDDED else ""
        settings = PlatformSettings(
            mode=mode,
            var_dir=var_dir,
            data_dir=env.path("DATA_DIR", root / "data" / "ambiti" / "vsssc").resolve(),
            broker_url=env.str("BROKER_URL", default_broker),
            public_url=env.str("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            identity_public_key_file=env.path(
                "IDENTITY_PUBLIC_KEY_FILE", var_dir / "keys" / "identity.pub.pem"
            ),
            identity_cookie=env.str("IDENTITY_COOKIE", "ambito_identity"),
            demo=env.bool("DEMO", mode == EMBEDDED),
            demo_password=env.str("DEMO_PASSWORD", "demo"),
            log_json=env.bool("LOG_JSON", mode == DISTRIBUTED),
            # Embedded mode writes mail as .eml files under var/mail/.
            smtp_url=env.str("SMTP_URL", f"file://{var_dir}/mail" if mode == EMBEDDED else ""),
            mail_from=env.str("MAIL_FROM", "Ambito Valle Seriana Superiore <noreply@ambito.invalid>"),
            broker_visibility_timeout=env.int("BROKER_VISIBILITY_TIMEOUT", 3600),
        )
    if mode == DISTRIBUTED:
        require(settings.broker_url, "AMBITO_BROKER_URL")
        require(settings.smtp_url, "AMBITO_SMTP_URL")
    return settings


def require(value: object, name: str) -> None:
    """Fail fast on a missing setting in distributed mode."""
    if not value:
        raise SettingsError(f"{name} must be set in distributed mode")


def embedded_secret(path: Path, nbytes: int) -> bytes:
    """The content of a secret file, generated on first run and kept (embedded mode, tests).

    Kept so logins and e-mailed links survive restarts. The web process and the
    worker start together and both may find the file missing: each writes its
    own candidate and hard-links it into place, the first link wins and both
    read the winner, so they never end up signing with different keys.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_text(secrets.token_urlsafe(nbytes), encoding="ascii")
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def service_database_url(env: Env, service: str, platform: PlatformSettings) -> str:
    """``<SERVICE>_DATABASE_URL``, or a SQLite file under var/ in embedded mode."""
    url = env.str(f"{service.upper()}_DATABASE_URL", "")
    if not url and platform.embedded:
        url = f"sqlite:///{platform.var_dir / (service + '.sqlite3')}"
    require(url, f"{service.upper()}_DATABASE_URL")
    return url
