"""Per-process resources of the gateway, built once and shared by the views."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ambito_common.db import make_engine, make_session_factory, migrate
from ambito_common.identity import TokenIssuer
from sqlalchemy.orm import Session, sessionmaker

from .settings import Settings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@dataclass
class Runtime:
    settings: Settings
    session_factory: sessionmaker[Session]
    issuer: TokenIssuer

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        session_factory = make_session_factory(make_engine(settings.database_url))
        issuer = TokenIssuer(settings.identity_private_key_file.read_bytes(),
                             dt.timedelta(seconds=settings.token_ttl_seconds))
        return cls(settings, session_factory, issuer)

    def migrate(self) -> None:
        migrate(MIGRATIONS, self.settings.database_url)
