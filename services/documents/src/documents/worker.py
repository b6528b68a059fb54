"""Celery worker entry point of the documents service: ``celery -A documents.worker worker -Q documents``."""

from ambito_common.settings import platform_settings, read_env
from ambito_common.tasks import make_celery, relay_schedule

celery = make_celery("documents", platform_settings())
celery.conf.beat_schedule = {
    **relay_schedule("documents"),
    # A no-op unless DOCUMENTS_PEC_IMAP_URL names the PEC mailbox replies arrive in.
    "documents-poll-replies": {"task": "documents.poll_replies",
                               "schedule": read_env().float("DOCUMENTS_PEC_POLL_SECONDS", 60.0)},
}
celery.conf.imports = ["documents.tasks"]
