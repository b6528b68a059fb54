"""WSGI entry point of the gateway (gunicorn ``gateway.wsgi:app``)."""

from .app import create_app

app = create_app()
