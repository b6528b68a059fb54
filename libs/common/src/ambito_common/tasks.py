"""The Celery app factory and the conventions every task follows.

One queue per service (``intake``, ``vouchers``, ``documents``); a task's name
starts with its service, which routes it. Tasks are idempotent and keyed by
business ids, acknowledged late and re-queued if the worker dies, and retried
with backoff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog
from celery import Celery, signals

from . import heartbeat  # noqa: F401 - connects the worker heartbeat to worker_ready
from .logging import bind_request_id, configure_logging, current_request_id
from .settings import PlatformSettings, platform_settings

SERVICES = ("intake", "vouchers", "documents")


def broker_transport_options(platform: PlatformSettings) -> dict[str, Any]:
    if platform.broker_url.startswith("filesystem://"):
        folder = Path(platform.broker_url.removeprefix("filesystem://"))
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    # Redis re-delivers a message a dead worker held after this many seconds.
    return {"visibility_timeout": platform.broker_visibility_timeout}


def make_celery(main: str, platform: PlatformSettings) -> Celery:
    broker = platform.broker_url
    if broker.startswith("filesystem://"):
        broker = "filesystem://"
    app = Celery(main, broker=broker, set_as_current=False)
    app.conf.update(
        broker_transport_options=broker_transport_options(platform),
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        # Our structlog lines go to stderr as they are (one JSON object a line in production).
        worker_redirect_stdouts=False,
        task_routes={f"{service}.*": {"queue": service} for service in SERVICES},
        task_default_queue=main if main in SERVICES else "celery",
        timezone="Europe/Rome",
        enable_utc=True,
    )
    return app


@signals.worker_init.connect
def _configure_worker_logging(**_: Any) -> None:
    configure_logging(json=platform_settings().log_json)


@signals.before_task_publish.connect
def _attach_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None and "request_id" not in headers:
        headers["request_id"] = current_request_id()


@signals.task_prerun.connect
def _bind_request_id(task: Any = None, **_: Any) -> None:
    bind_request_id(getattr(task.request, "request_id", None) if task else None)
    structlog.contextvars.bind_contextvars(task=getattr(task, "name", None))


def relay_schedule(*services: str, every: float = 10.0) -> dict[str, dict[str, Any]]:
    """Beat entries running each service's periodic outbox relay."""
    return {f"{service}-relay-outbox": {"task": f"{service}.relay_outbox", "schedule": every}
            for service in services}
