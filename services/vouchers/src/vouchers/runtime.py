"""Per-process resources of the vouchers service, built once and shared by views and tasks."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from ambito_common.db import make_engine, make_session_factory, migrate
from ambito_common.outbox import OutboxRelay
from ambito_common.tasks import make_celery
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from .documents import DocumentsConfig
from .models import OutboxMessage
from .settings import Settings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@dataclass
class Runtime:
    settings: Settings
    session_factory: sessionmaker[Session]
    celery: Celery
    outbox: OutboxRelay

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        session_factory = make_session_factory(make_engine(settings.database_url))
        celery = make_celery("vouchers", settings.platform)
        outbox = OutboxRelay(OutboxMessage, session_factory, celery).install()
        return cls(settings, session_factory, celery, outbox)

    @functools.cached_property
    def documents_config(self) -> DocumentsConfig:
        """Read once per process: every seal_document task needs it, and the data files it comes
        from (ambito.json, aoo.json, sad.json) change only with a redeploy."""
        return DocumentsConfig.from_settings(self.settings)

    def migrate(self) -> None:
        migrate(MIGRATIONS, self.settings.database_url)


@functools.cache
def worker_runtime() -> Runtime:
    """The runtime of a worker process, built from the environment on first use."""
    return Runtime.build(Settings.from_env())
