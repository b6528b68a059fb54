"""Celery worker entry point of the documents service: ``celery -A documents.worker worker -Q documents``."""

from ambito_common.settings import platform_settings
from ambito_common.tasks import make_celery, relay_schedule

celery = make_celery("documents", platform_settings())
celery.conf.beat_schedule = relay_schedule("documents")
celery.conf.imports = ["documents.tasks"]
