"""The vouchers app factory."""

from __future__ import annotations

from ambito_common.web import create_service_app, new_spec
from flask import Flask

from .runtime import Runtime
from .settings import Settings


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    runtime = runtime or Runtime.build(settings or Settings.from_env())
    app = create_service_app(
        "vouchers", __name__, platform=runtime.settings.platform,
        session_factory=runtime.session_factory,
        spec_factory=lambda: new_spec("vouchers", "Ambito - Buoni e budget"),
    )
    app.extensions["runtime"] = runtime
    return app
