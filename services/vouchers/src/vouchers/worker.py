"""Celery worker entry point of the vouchers service: ``celery -A vouchers.worker worker -Q vouchers``."""

from ambito_common.settings import platform_settings
from ambito_common.tasks import make_celery, relay_schedule

celery = make_celery("vouchers", platform_settings())
celery.conf.beat_schedule = {
    **relay_schedule("vouchers"),
    "vouchers-expire-reservations": {"task": "vouchers.expire_reservations", "schedule": 3600.0},
    "vouchers-reconcile-documents": {"task": "vouchers.reconcile_documents", "schedule": 300.0},
}
celery.conf.imports = ["vouchers.tasks"]
