"""The gateway app factory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ambito_common.errors import ProblemSchema
from ambito_common.web import create_service_app, new_spec, problem_response, secure_cookies
from apispec import APISpec
from flask import Flask

from .runtime import Runtime
from .schemas import IdentitySchema, LoginSchema, TokenSchema
from .settings import Settings
from .views import bp

TEMPLATES = Path(__file__).parent / "templates"
SESSION_COOKIE = "ambito_session"


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    runtime = runtime or Runtime.build(settings or Settings.from_env())
    settings = runtime.settings
    app = create_service_app(
        "gateway", __name__, platform=settings.platform, session_factory=runtime.session_factory,
        template_folder=TEMPLATES, spec_factory=gateway_spec,
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies(settings.platform),
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.session_hours),
        # A login lasts GATEWAY_SESSION_HOURS from the moment it happened, not from the last click.
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.extensions["runtime"] = runtime
    app.register_blueprint(bp)
    return app


def gateway_spec() -> APISpec:
    spec = new_spec("gateway", "Ambito - Accesso e portale")
    spec.components.schema("Login", schema=LoginSchema)
    spec.components.schema("Token", schema=TokenSchema)
    spec.components.schema("Identity", schema=IdentitySchema)
    spec.components.schema("Problem", schema=ProblemSchema)
    problem = problem_response("Errore (application/problem+json)")
    spec.path(path="/auth/login", operations={"post": {
        "summary": "Accesso di un operatore: token di identità e cookie di sessione.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": "Login"}}},
        "responses": {"200": {"description": "Accesso riuscito",
                              "content": {"application/json": {"schema": "Token"}}},
                      "401": problem, "422": problem},
    }})
    spec.path(path="/auth/me", operations={"get": {
        "summary": "L'identità del token presentato.", "security": [{"bearer": []}],
        "responses": {"200": {"description": "Identità",
                              "content": {"application/json": {"schema": "Identity"}}},
                      "401": problem},
    }})
    return spec
