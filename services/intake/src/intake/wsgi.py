"""WSGI entry point of the intake service (gunicorn ``intake.wsgi:app``)."""

from .app import create_app

app = create_app()
