"""The intake app factory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ambito_common.web import ROME, create_service_app
from flask import Flask

from . import api, desk_api, desk_views, sad_api, sad_views, views
from .runtime import Runtime
from .settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
WEEKDAYS = ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica")


def weekday_it(value: dt.date) -> str:
    """The Italian name of the day, as calls write meeting dates ("lunedì 07/10/2024")."""
    return WEEKDAYS[value.weekday()]


def time_it(value: dt.datetime) -> str:
    """HH:MM in Europe/Rome."""
    return value.astimezone(ROME).strftime("%H:%M")


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    runtime = runtime or Runtime.build(settings or Settings.from_env())
    app = create_service_app(
        "intake", __name__, platform=runtime.settings.platform,
        session_factory=runtime.session_factory, template_folder=TEMPLATES,
        spec_factory=api.build_spec,
    )
    app.extensions["runtime"] = runtime
    app.jinja_env.filters["weekday_it"] = weekday_it
    app.jinja_env.filters["time_it"] = time_it
    app.register_blueprint(api.bp)
    app.register_blueprint(sad_api.bp)
    app.register_blueprint(desk_api.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(sad_views.bp)
    app.register_blueprint(desk_views.bp)
    return app
