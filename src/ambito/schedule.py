"""The periodic tasks of the whole platform (Celery beat): every service's own schedule."""

from __future__ import annotations

import importlib
from typing import Any

from ambito_common.tasks import SERVICES


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The union of the schedules each service's worker declares (its single source of truth)."""
    schedule: dict[str, dict[str, Any]] = {}
    for service in SERVICES:
        schedule.update(importlib.import_module(f"{service}.worker").celery.conf.beat_schedule)
    return schedule
