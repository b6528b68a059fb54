"""The vouchers app factory."""

from __future__ import annotations

from pathlib import Path

from ambito_common.web import create_service_app
from flask import Flask

from . import operations, views
from .api import bp as api_bp
from .api import build_spec
from .runtime import Runtime
from .services import format_eur
from .settings import Settings

TEMPLATES = Path(__file__).parent / "templates"


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    runtime = runtime or Runtime.build(settings or Settings.from_env())
    app = create_service_app(
        "vouchers", __name__, platform=runtime.settings.platform,
        session_factory=runtime.session_factory, template_folder=TEMPLATES, spec_factory=build_spec,
    )
    app.extensions["runtime"] = runtime
    app.jinja_env.filters["eur"] = format_eur
    app.register_blueprint(api_bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(operations.bp)
    return app
