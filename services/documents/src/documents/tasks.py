"""Celery tasks of the documents service (queue ``documents``).

Each task is keyed by business ids and idempotent, acknowledged late (a worker
that dies mid-task leaves the message to be redelivered) and retried with
backoff on errors that waiting can cure: the database or the disk briefly
unavailable, the timestamp authority not answering. A malformed payload is not
retried: it would fail the same way every time.
"""

from __future__ import annotations

from typing import Any

import structlog
from ambito_common.db import session_scope
from ambito_common.errors import Conflict, InvalidInput
from celery import shared_task
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from . import services
from .delivery import DeliveryRefused, DeliveryUncertain
from .models import BUILT
from .pec_inbox import poll_mailbox
from .routing import route
from .runtime import worker_runtime

log = structlog.get_logger(__name__)

#: OSError covers the disk, the network and pyHanko's TimestampRequestError.
TRANSIENT = (OperationalError, PoolTimeoutError, OSError)
RETRY = {"bind": True, "acks_late": True, "autoretry_for": TRANSIENT, "retry_backoff": True,
         "retry_backoff_max": 600, "max_retries": 10}


@shared_task(name="documents.build_package", **RETRY)
def build_package(self: Any, source: str, source_ref: str, callback: str, payload: dict[str, Any]) -> str:
    """Render, seal and store the package for ``(source, source_ref)`` once; returns its id.

    The recipient is the AOO the kind of submission is routed to (``routing``).
    """
    runtime = worker_runtime()
    return services.build_package(
        runtime.session_factory, runtime.store, runtime.build_documents,
        source=source, source_ref=source_ref, callback=callback, payload=route(payload, runtime.aoo),
        seal_detail=runtime.seal_detail)


@shared_task(name=services.COPIES_TASK, **RETRY)
def send_copies(self: Any, package_id: str, copies: list[dict[str, str]]) -> int:
    """E-mail the built package's sealed document to its courtesy copies, once per address."""
    runtime = worker_runtime()
    return services.send_copies(runtime.session_factory, runtime.store, runtime.settings.platform,
                                package_id=package_id, copies=copies)


@shared_task(name="documents.deliver_package", **RETRY)
def deliver_package(self: Any, package_id: str) -> str:
    """Deliver a built package with the configured backend; returns its status.

    Every failure is recorded on the package (visible with a "retry now" action); a
    transient one (SMTP down) is then retried with backoff, a refusal is not. A PEC whose
    earlier send may have reached the provider waits for its receipt (see
    ``services.deliver_package``): the task comes back when the grace period ends.
    """
    runtime = worker_runtime()
    try:
        return services.deliver_package(runtime.session_factory, package_id, runtime.delivery,
                                        resend_after=runtime.settings.pec_resend_after)
    except services.AwaitingReceipt as exc:
        raise self.retry(countdown=exc.remaining.total_seconds() + 1) from exc
    except DeliveryRefused as exc:
        with session_scope(runtime.session_factory) as session:
            services.record_delivery_failure(session, package_id, str(exc), retrying=False)
        return BUILT
    except TRANSIENT as exc:
        retrying = self.request.retries < self.max_retries and not self.request.called_directly
        with session_scope(runtime.session_factory) as session:
            services.record_delivery_failure(session, package_id, f"Consegna non riuscita: {exc}",
                                             retrying=retrying, uncertain=isinstance(exc, DeliveryUncertain))
        raise


@shared_task(name="documents.poll_replies", acks_late=True)
def poll_replies() -> int:
    """Read the PEC mailbox (``DOCUMENTS_PEC_IMAP_URL``) and apply the replies in it (beat)."""
    runtime = worker_runtime()
    if not runtime.settings.pec_imap_url:
        return 0

    def handle(raw: bytes) -> None:
        try:
            with session_scope(runtime.session_factory) as session:
                services.record_reply(session, raw, channel="imap")
        except (InvalidInput, Conflict) as exc:  # not for us, or already settled: nothing to retry
            log.info("pec_message_ignored", reason=exc.detail, errors=getattr(exc, "errors", None))

    return poll_mailbox(runtime.settings.pec_imap_url, handle)


@shared_task(name="documents.relay_outbox")
def relay_outbox() -> int:
    """Publish outbox rows that the after-commit relay could not (periodic safety net)."""
    return worker_runtime().outbox.relay()
