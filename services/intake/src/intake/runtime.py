"""Per-process resources of the intake service, built once and shared by views and tasks."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ambito_common.db import make_engine, make_session_factory, migrate
from ambito_common.outbox import OutboxRelay
from ambito_common.tasks import make_celery
from ambito_common.web import load_ambito
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from .desk import DeskConfig
from .models import OutboxMessage
from .sad import SadConfig
from .settings import Settings

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@dataclass
class Runtime:
    settings: Settings
    session_factory: sessionmaker[Session]
    celery: Celery
    outbox: OutboxRelay
    ambito: dict[str, Any]  # data/ambiti/<code>/ambito.json: lead body, register
    sad: SadConfig  # sad.json (providers, co-payment rules), aoo.json, upload limits
    desk: DeskConfig  # desk.json: the Sportello's locations, hours, capacity

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        session_factory = make_session_factory(make_engine(settings.database_url))
        celery = make_celery("intake", settings.platform)
        outbox = OutboxRelay(OutboxMessage, session_factory, celery).install()
        ambito = load_ambito(settings.platform)
        sad = SadConfig.load(settings.platform.data_dir, ambito, storage_dir=settings.storage_dir,
                             max_file_bytes=settings.upload_max_file_bytes,
                             max_request_bytes=settings.upload_max_request_bytes,
                             draft_ttl=dt.timedelta(days=settings.draft_ttl_days))
        desk = DeskConfig.load(settings.platform.data_dir, ambito, settings.link_key_file.read_bytes())
        return cls(settings, session_factory, celery, outbox, ambito, sad, desk)

    def migrate(self) -> None:
        migrate(MIGRATIONS, self.settings.database_url)


@functools.cache
def worker_runtime() -> Runtime:
    """The runtime of a worker process, built from the environment on first use."""
    return Runtime.build(Settings.from_env())
