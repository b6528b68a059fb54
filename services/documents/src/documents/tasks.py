"""Celery tasks of the documents service (queue ``documents``).

Each task is keyed by business ids and idempotent, acknowledged late (a worker
that dies mid-task leaves the message to be redelivered) and retried with
backoff on errors that waiting can cure: the database or the disk briefly
unavailable, the timestamp authority not answering. A malformed payload is not
retried: it would fail the same way every time.
"""

from __future__ import annotations

from typing import Any

from ambito_common.db import session_scope
from celery import shared_task
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from . import services
from .runtime import worker_runtime

#: OSError covers the disk, the network and pyHanko's TimestampRequestError.
TRANSIENT = (OperationalError, PoolTimeoutError, OSError)
RETRY = {"bind": True, "acks_late": True, "autoretry_for": TRANSIENT, "retry_backoff": True,
         "retry_backoff_max": 600, "max_retries": 10}


@shared_task(name="documents.build_package", **RETRY)
def build_package(self: Any, source: str, source_ref: str, callback: str, payload: dict[str, Any]) -> str:
    """Render, seal and store the package for ``(source, source_ref)`` once; returns its id."""
    runtime = worker_runtime()
    return services.build_package(
        runtime.session_factory, runtime.store, runtime.build_documents,
        source=source, source_ref=source_ref, callback=callback, payload=payload,
        seal_detail=runtime.seal_detail)


@shared_task(name="documents.deliver_package", **RETRY)
def deliver_package(self: Any, package_id: str) -> str:
    """Deliver a built package with the configured backend; returns its status."""
    runtime = worker_runtime()
    with session_scope(runtime.session_factory) as session:
        return services.deliver_package(session, package_id, runtime.delivery).status


@shared_task(name="documents.relay_outbox")
def relay_outbox() -> int:
    """Publish outbox rows that the after-commit relay could not (periodic safety net)."""
    return worker_runtime().outbox.relay()
