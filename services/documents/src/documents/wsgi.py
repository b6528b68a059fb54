"""WSGI entry point of the documents service (gunicorn ``documents.wsgi:app``)."""

from .app import create_app

app = create_app()
