"""WSGI entry point of the vouchers service (gunicorn ``vouchers.wsgi:app``)."""

from .app import create_app

app = create_app()
