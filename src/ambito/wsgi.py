"""WSGI entry point of embedded mode (gunicorn ``ambito.wsgi:app``)."""

from .embedded import create_embedded_app

app = create_embedded_app()
