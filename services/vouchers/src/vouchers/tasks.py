"""Celery tasks of the vouchers service (queue ``vouchers``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ambito_common.copayment import load_rules
from ambito_common.db import utcnow
from celery import shared_task

from . import documents, issuing, services
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

    Idempotent on ``source_ref`` (publishing is at-least-once); returns the voucher ids. The
    outcome goes back to intake as ``intake.voucher_status``.
    """
    runtime = worker_runtime()
    session = runtime.session_factory()
    try:
        rules = load_rules(runtime.settings.platform.data_dir)
        vouchers = services.run_transaction(session, lambda: issuing.issue_from_care_plan(
            session, fund_code=runtime.settings.sad_fund, source=source, source_ref=source_ref, comune=comune,
            beneficiary=beneficiary, isee_cents=isee_cents, submitted_at=submitted_at, care_plan=care_plan,
            rules=rules, now=utcnow()))
        return [voucher.id for voucher in vouchers]
    finally:
        session.close()


# --- sealed documents (helper vouchers-documents) -------------------------------------------------

@shared_task(name="vouchers.seal_document")
def seal_document(document_id: int) -> bool:
    """Ask documents to seal a recorded act (request, decision, voucher); safe to repeat."""
    runtime = worker_runtime()
    config = runtime.documents_config
    session = runtime.session_factory()
    try:
        return services.run_transaction(
            session, lambda: documents.seal(session, document_id, config, utcnow()))
    finally:
        session.close()


@shared_task(name="vouchers.reconcile_documents")
def reconcile_documents() -> int:
    """Re-ask documents for the packages still missing after the retry delay (periodic)."""
    runtime = worker_runtime()
    older_than = dt.timedelta(seconds=runtime.settings.package_retry_seconds)
    session = runtime.session_factory()
    try:
        return services.run_transaction(session, lambda: documents.requeue_stale(
            session, now=utcnow(), older_than=older_than))
    finally:
        session.close()


@shared_task(name="vouchers.package_status")
def package_status(source_ref: str, package_id: str | None, status: str,
                   protocol: dict[str, str] | None = None, rejection: dict[str, Any] | None = None,
                   **_later: Any) -> str | None:
    """Documents reports on a package (contract 1); unknown later keyword arguments are ignored."""
    session = worker_runtime().session_factory()
    try:
        document = services.run_transaction(session, lambda: documents.record_package_status(
            session, source_ref=source_ref, package_id=package_id, status=status, protocol=protocol,
            rejection=rejection))
        return document.status if document is not None else None
    finally:
        session.close()
