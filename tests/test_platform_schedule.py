"""The single beat of the platform runs every periodic task each service declares."""

from __future__ import annotations

import importlib

from ambito_common.tasks import SERVICES

from ambito.schedule import beat_schedule


def test_platform_beat_runs_every_service_schedule():
    schedule = beat_schedule()
    for service in SERVICES:
        own = importlib.import_module(f"{service}.worker").celery.conf.beat_schedule
        assert own, service
        for name, entry in own.items():
            assert schedule[name] == entry
    tasks = {entry["task"] for entry in schedule.values()}
    assert {"intake.relay_outbox", "documents.relay_outbox", "vouchers.relay_outbox",
            "intake.reconcile"} <= tasks
