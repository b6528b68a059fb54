"""The transactional outbox: a message is committed with the data it is about.

A view or task that must tell another service something adds an outbox row in
the same transaction as its own change (``enqueue``). Right after the commit
the relay publishes pending rows to Celery; a periodic relay task catches what
a crash or a broker outage left behind. Publishing is at-least-once, so every
task on the receiving side is idempotent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import structlog
from celery import Celery
from sqlalchemy import JSON, Integer, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from .db import UTCDateTime, utcnow
from .logging import current_request_id

log = structlog.get_logger(__name__)

_PENDING_FLAG = "outbox_pending"


class OutboxMixin:
    """Columns of a service's ``outbox`` table (each service owns its own)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_name: Mapped[str] = mapped_column(String(200))
    kwargs: Mapped[dict[str, Any]] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))


def enqueue(session: Session, model: type[OutboxMixin], task_name: str, **kwargs: Any) -> None:
    """Add a message to the outbox; it is published only if the transaction commits."""
    session.add(model(task_name=task_name, kwargs=kwargs, request_id=current_request_id()))
    session.info[_PENDING_FLAG] = True


class OutboxRelay:
    def __init__(self, model: type[OutboxMixin], session_factory: sessionmaker[Session],
                 celery: Celery) -> None:
        self.model = model
        self.session_factory = session_factory
        self.celery = celery

    def install(self) -> OutboxRelay:
        """Publish right after any commit of this factory's sessions that enqueued a message."""
        event.listen(self.session_factory, "after_commit", self._after_commit)
        return self

    def _after_commit(self, session: Session) -> None:
        # Releasing a SAVEPOINT fires this event too; only the outermost commit makes rows visible.
        if session.in_nested_transaction():
            return
        if session.info.pop(_PENDING_FLAG, False):
            try:
                self.relay()
            except Exception:  # the periodic relay will publish it later
                log.warning("outbox_relay_deferred", exc_info=True)

    def relay(self, limit: int = 100) -> int:
        """Publish pending rows in order; returns how many were published."""
        published = 0
        with self.session_factory() as session, session.begin():
            rows = session.scalars(
                select(self.model).where(self.model.published_at.is_(None))
                .order_by(self.model.id).limit(limit).with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                row.attempts += 1
                try:
                    self.celery.send_task(row.task_name, kwargs=row.kwargs,
                                          headers={"request_id": row.request_id})
                except Exception as exc:
                    row.last_error = str(exc)[:500]
                    log.warning("outbox_publish_failed", task=row.task_name, outbox_id=row.id)
                    break
                row.published_at = utcnow()
                published += 1
                log.info("outbox_published", task=row.task_name, outbox_id=row.id,
                         request_id=row.request_id)
        return published

    def pending(self) -> int:
        with self.session_factory() as session:
            return len(session.scalars(
                select(self.model.id).where(self.model.published_at.is_(None))).all())
