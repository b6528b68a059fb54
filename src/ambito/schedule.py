"""The periodic tasks of the platform (Celery beat)."""

from __future__ import annotations

from typing import Any

from ambito_common.tasks import SERVICES, relay_schedule

RECONCILE_EVERY = 60.0


def beat_schedule() -> dict[str, dict[str, Any]]:
    schedule = relay_schedule(*SERVICES)
    schedule["intake-reconcile"] = {"task": "intake.reconcile", "schedule": RECONCILE_EVERY}
    return schedule
