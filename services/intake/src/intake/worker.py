"""Celery worker entry point of the intake service: ``celery -A intake.worker worker -Q intake``."""

from ambito_common.settings import platform_settings
from ambito_common.tasks import make_celery, relay_schedule

celery = make_celery("intake", platform_settings())
celery.conf.beat_schedule = {
    **relay_schedule("intake"),
    # The safety net that re-asks documents for packages a lost message never built.
    "intake-reconcile": {"task": "intake.reconcile", "schedule": 60.0},
    # Drafts of SAD requests past their expiry go, with their files.
    "intake-purge-drafts": {"task": "intake.purge_drafts", "schedule": 3600.0},
    # Reminders for tomorrow's desk appointments.
    "intake-desk-reminders": {"task": "intake.send_desk_reminders", "schedule": 900.0},
}
celery.conf.imports = ["intake.tasks"]
