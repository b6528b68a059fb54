"""Celery tasks of the intake service (queue ``intake``); each is safe to run more than once."""

from __future__ import annotations

import datetime as dt
import smtplib
from typing import Any

from ambito_common.db import session_scope, utcnow
from celery import shared_task

from . import desk, sad, services
from .runtime import worker_runtime

# The e-mail tasks: a mail server down or refusing for a while is retried, with backoff, for hours.
MAIL_RETRY: dict[str, Any] = {"autoretry_for": (smtplib.SMTPException, OSError), "retry_backoff": 30,
              "retry_backoff_max": 3600, "retry_jitter": True, "max_retries": 12}


@shared_task(name="intake.send_receipt", **MAIL_RETRY)
def send_receipt(application_id: str) -> bool:
    """E-mail the receipt to the organisation (copy to its contact person), once."""
    runtime = worker_runtime()
    with session_scope(runtime.session_factory) as session:
        return services.send_receipt(session, application_id=application_id,
                                     platform=runtime.settings.platform, ambito=runtime.ambito,
                                     now=utcnow())


@shared_task(name="intake.package_status")
def package_status(source_ref: str, package_id: str | None, status: str,
                   protocol: dict[str, str] | None = None, rejection: dict[str, str | None] | None = None,
                   **_unknown: object) -> str | None:
    """Documents reports on a package: move the application, SAD request or supplement forward (never back).

    Later keyword arguments of the contract are accepted and ignored, so documents can grow it.
    """
    with session_scope(worker_runtime().session_factory) as session:
        if source_ref.startswith(sad.SOURCE_PREFIX):
            target = sad.record_package_status(session, source_ref=source_ref, package_id=package_id,
                                               status=status, protocol=protocol, rejection=rejection,
                                               now=utcnow())
            return target.status if target else None
        application = services.record_package_status(session, source_ref=source_ref,
                                                     package_id=package_id, status=status,
                                                     protocol=protocol, rejection=rejection, now=utcnow())
        return application.status if application else None


@shared_task(name="intake.voucher_status")
def voucher_status(source_ref: str, status: str, vouchers: list[dict[str, object]] | None = None,
                   waiting_position: int | None = None, **_unknown: object) -> str | None:
    """The vouchers service reports on the vouchers of an approved SAD care plan; returns the case status."""
    with session_scope(worker_runtime().session_factory) as session:
        request = sad.record_voucher_status(session, source_ref=source_ref, status=status,
                                            vouchers=list(vouchers or []), waiting_position=waiting_position,
                                            now=utcnow())
        return request.case_status if request else None


@shared_task(name="intake.send_application_update", **MAIL_RETRY)
def send_application_update(event_id: int) -> bool:
    """E-mail the organisation about an event of its application (a rejection by the protocol), once."""
    runtime = worker_runtime()
    with session_scope(runtime.session_factory) as session:
        return services.send_update(session, event_id=event_id, platform=runtime.settings.platform,
                                    ambito=runtime.ambito, now=utcnow())


@shared_task(name="intake.relay_outbox")
def relay_outbox() -> int:
    """Publish outbox rows that the after-commit relay could not (periodic safety net)."""
    return worker_runtime().outbox.relay()


@shared_task(name="intake.reconcile")
def reconcile() -> int:
    """Re-ask documents for packages (applications and SAD requests) still missing after the retry delay."""
    runtime = worker_runtime()
    older_than = dt.timedelta(seconds=runtime.settings.package_retry_seconds)
    with session_scope(runtime.session_factory) as session:
        now = utcnow()
        applications = services.requeue_stale_packages(session, now=now, older_than=older_than,
                                                       ambito=runtime.ambito)
        return applications + sad.requeue_stale_packages(session, now=now, older_than=older_than,
                                                          config=runtime.sad)


@shared_task(name="intake.send_sad_update", **MAIL_RETRY)
def send_sad_update(event_id: int) -> bool:
    """E-mail the citizen about one transition of a SAD request, once."""
    runtime = worker_runtime()
    with session_scope(runtime.session_factory) as session:
        return sad.send_update(session, event_id=event_id, platform=runtime.settings.platform,
                               config=runtime.sad, now=utcnow())


@shared_task(name="intake.purge_drafts")
def purge_drafts() -> int:
    """Delete SAD drafts past INTAKE_DRAFT_TTL_DAYS, with their files."""
    runtime = worker_runtime()
    with session_scope(runtime.session_factory) as session:
        return sad.purge_expired_drafts(session, now=utcnow(), config=runtime.sad)


@shared_task(name="intake.send_booking_mail", **MAIL_RETRY)
def send_booking_mail(booking_id: str, kind: str, sequence: int) -> bool:
    """The confirmation (with .ics and manage link) or cancellation of a desk booking."""
    runtime = worker_runtime()
    with session_scope(runtime.session_factory) as session:
        return desk.send_booking_mail(session, booking_id=booking_id, kind=kind, sequence=sequence,
                                      config=runtime.desk, platform=runtime.settings.platform)


@shared_task(name="intake.send_desk_reminders")
def send_desk_reminders() -> int:
    """Remind tomorrow's live bookings, once each (cancelled ones are never reminded)."""
    runtime = worker_runtime()
    with session_scope(runtime.session_factory) as session:
        return desk.send_reminders(session, now=utcnow(), config=runtime.desk,
                                   platform=runtime.settings.platform)
