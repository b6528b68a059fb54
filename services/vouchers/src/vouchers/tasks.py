"""Celery tasks of the vouchers service (queue ``vouchers``)."""

from __future__ import annotations

from celery import shared_task

from .runtime import worker_runtime


@shared_task(name="vouchers.relay_outbox")
def relay_outbox() -> int:
    """Publish outbox rows that the after-commit relay could not (periodic safety net)."""
    return worker_runtime().outbox.relay()
