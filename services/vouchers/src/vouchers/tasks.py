"""Celery tasks of the vouchers service (queue ``vouchers``)."""

from __future__ import annotations

from typing import Any

from ambito_common.db import utcnow
from celery import shared_task

from . import issuing, services
from .runtime import worker_runtime


@shared_task(name="vouchers.relay_outbox")
def relay_outbox() -> int:
    """Publish outbox rows that the after-commit relay could not (periodic safety net)."""
    return worker_runtime().outbox.relay()


@shared_task(name="vouchers.expire_reservations")
def expire_reservations() -> int:
    """Give back to their budgets the reservations nobody posted in time (periodic)."""
    session = worker_runtime().session_factory()
    try:
        return services.run_transaction(session, lambda: services.expire_reservations(session, now=utcnow()))
    finally:
        session.close()


@shared_task(name="vouchers.request_voucher")
def request_voucher(source: str, source_ref: str, comune: str, beneficiary: dict[str, str],
                    isee_cents: int | None, submitted_at: str | None, care_plan: dict[str, Any]) -> list[int]:
    """An approved SAD care plan from intake becomes vouchers: reserved, or on the waiting list.

    Idempotent on ``source_ref`` (publishing is at-least-once); returns the voucher ids.
    """
    runtime = worker_runtime()
    session = runtime.session_factory()
    try:
        vouchers = services.run_transaction(session, lambda: issuing.issue_from_care_plan(
            session, fund_code=runtime.settings.sad_fund, source_ref=f"{source}:{source_ref}", comune=comune,
            beneficiary=beneficiary, isee_cents=isee_cents, submitted_at=submitted_at, care_plan=care_plan,
            now=utcnow()))
        return [voucher.id for voucher in vouchers]
    finally:
        session.close()
