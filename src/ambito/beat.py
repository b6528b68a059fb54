"""Distributed mode's one beat process: ``celery -A ambito.beat beat``."""

from ambito_common.settings import platform_settings
from ambito_common.tasks import make_celery

from .schedule import beat_schedule

celery = make_celery("ambito-beat", platform_settings())
celery.conf.beat_schedule = beat_schedule()
