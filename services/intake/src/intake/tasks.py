"""Celery tasks of the intake service (queue ``intake``); each is safe to run more than once."""

from __future__ import annotations

import datetime as dt
import smtplib

from ambito_common.db import session_scope, utcnow
from celery import shared_task

from . import services
from .runtime import worker_runtime


@shared_task(name="intake.send_receipt", autoretry_for=(smtplib.SMTPException, OSError),
             retry_backoff=30, retry_backoff_max=3600, retry_jitter=True, max_retries=12)
def send_receipt(application_id: str) -> bool:
    """E-mail the receipt to the organisation (copy to its contact person), once."""
    runtime = worker_runtime()
    with session_scope(runtime.session_factory) as session:
        return services.send_receipt(session, application_id=application_id,
                                     platform=runtime.settings.platform, ambito=runtime.ambito,
                                     now=utcnow())


@shared_task(name="intake.package_status")
def package_status(source_ref: str, package_id: str | None, status: str,
                   protocol: dict[str, str] | None = None) -> str | None:
    """Documents reports on a package: move the application forward (never back)."""
    with session_scope(worker_runtime().session_factory) as session:
        application = services.record_package_status(session, source_ref=source_ref,
                                                     package_id=package_id, status=status,
                                                     protocol=protocol, now=utcnow())
        return application.status if application else None


@shared_task(name="intake.relay_outbox")
def relay_outbox() -> int:
    """Publish outbox rows that the after-commit relay could not (periodic safety net)."""
    return worker_runtime().outbox.relay()


@shared_task(name="intake.reconcile")
def reconcile() -> int:
    """Re-ask documents for packages still missing after INTAKE_PACKAGE_RETRY_SECONDS."""
    runtime = worker_runtime()
    with session_scope(runtime.session_factory) as session:
        return services.requeue_stale_packages(
            session, now=utcnow(), older_than=dt.timedelta(seconds=runtime.settings.package_retry_seconds),
            ambito=runtime.ambito)
