"""The part of every service's app factory that is the same everywhere."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, jsonify
from jinja2 import ChoiceLoader, FileSystemLoader
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from .csrf import init_csrf
from .db import init_app_db
from .errors import PROBLEM_JSON, register_error_handlers
from .identity import init_identity, verifier_from_file
from .logging import configure_logging, init_request_id
from .settings import PlatformSettings

ROME = ZoneInfo("Europe/Rome")
COMMON_TEMPLATES = Path(__file__).parent / "templates"
COMMON_STATIC = Path(__file__).parent / "static"


def load_ambito(platform: PlatformSettings) -> dict[str, Any]:
    """The Ambito's identity (name, lead body, comuni) from its data directory."""
    return json.loads((platform.data_dir / "ambito.json").read_text(encoding="utf-8"))


def secure_cookies(platform: PlatformSettings) -> bool:
    """Whether cookies carry ``Secure``: only when people reach the platform over HTTPS, else the
    browser would drop them on a plain-HTTP deployment (a demo, a test, ``make run``)."""
    return platform.public_url.startswith("https://")


def create_service_app(
    service: str,
    import_name: str,
    *,
    platform: PlatformSettings,
    session_factory: sessionmaker[Session],
    template_folder: Path | None = None,
    spec_factory: Callable[[], APISpec] | None = None,
    max_content_length: int = 40 * 1024 * 1024,
) -> Flask:
    """A Flask app with logging, request ids, identity, CSRF, errors, health and OpenAPI."""
    configure_logging(json=platform.log_json)
    app = Flask(import_name, static_folder=None)
    loaders = [FileSystemLoader(str(template_folder))] if template_folder else []
    app.jinja_loader = ChoiceLoader([*loaders, FileSystemLoader(str(COMMON_TEMPLATES))])
    app.config.update(MAX_CONTENT_LENGTH=max_content_length, JSON_SORT_KEYS=False)
    app.extensions["platform"] = platform
    ambito = load_ambito(platform)
    app.extensions["ambito"] = ambito
    init_app_db(app, session_factory)
    init_request_id(app, service)
    init_identity(app, verifier_from_file(platform.identity_public_key_file),
                  platform.identity_cookie)
    init_csrf(app, secure_cookie=secure_cookies(platform))
    register_error_handlers(app)
    app.jinja_env.filters["date_it"] = format_date
    app.jinja_env.filters["datetime_it"] = format_datetime

    @app.context_processor
    def _ambito_in_templates() -> dict[str, Any]:
        return {"ambito": ambito, "demo_mode": platform.demo}

    @app.get(f"/api/{service}/health")
    def health():  # type: ignore[no-untyped-def]
        with session_factory() as session:
            session.execute(text("SELECT 1"))
        return jsonify(status="ok", service=service)

    if spec_factory is not None:
        @app.get(f"/api/{service}/openapi.json")
        def openapi():  # type: ignore[no-untyped-def]
            return jsonify(spec_factory().to_dict())

    return app


def new_spec(service: str, title: str, version: str = "1.0.0") -> APISpec:
    spec = APISpec(title=title, version=version, openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()],
                   info={"description": f"API del servizio {service} della piattaforma Ambito."})
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"})
    return spec


def problem_response(description: str) -> dict[str, Any]:
    """An OpenAPI response answered with the spec's ``Problem`` component (problem+json)."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": "Problem"}}}


def format_date(value: dt.date | dt.datetime | str | None) -> str:
    """dd/mm/yyyy, the way dates are written in Italian offices."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        value = value.astimezone(ROME).date()
    return value.strftime("%d/%m/%Y")


def format_datetime(value: dt.datetime | None) -> str:
    """dd/mm/yyyy HH:MM in Europe/Rome."""
    if value is None:
        return ""
    return value.astimezone(ROME).strftime("%d/%m/%Y %H:%M")
