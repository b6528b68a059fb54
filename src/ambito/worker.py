"""Embedded mode's single Celery worker: every queue, every task, and beat.

``celery -A ambito.worker worker -Q intake,vouchers,documents -B``
"""

from ambito_common.settings import platform_settings
from ambito_common.tasks import SERVICES, make_celery

from .schedule import beat_schedule

celery = make_celery("ambito", platform_settings())
celery.conf.imports = [f"{service}.tasks" for service in SERVICES]
celery.conf.beat_schedule = beat_schedule()
celery.conf.task_default_queue = SERVICES[0]
