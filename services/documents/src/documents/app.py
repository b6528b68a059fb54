"""The documents app factory: the protocol inbox API and pages."""

from __future__ import annotations

from pathlib import Path

from ambito_common.web import create_service_app
from flask import Flask

from . import api, views
from .runtime import Runtime
from .services import human_size
from .settings import Settings

TEMPLATES = Path(__file__).resolve().parent / "templates"


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    runtime = runtime or Runtime.build(settings or Settings.from_env())
    app = create_service_app(
        "documents", __name__, platform=runtime.settings.platform,
        session_factory=runtime.session_factory, template_folder=TEMPLATES,
        spec_factory=api.api_spec,
    )
    app.extensions["runtime"] = runtime
    app.jinja_env.filters["filesize"] = human_size
    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    return app
