"""Embedded mode: the gateway and the three services in one WSGI process."""

from __future__ import annotations

from collections.abc import Mapping

import documents.app
import gateway.app
import intake.app
import vouchers.app
from documents.settings import Settings as DocumentsSettings
from gateway.settings import Settings as GatewaySettings
from intake.settings import Settings as IntakeSettings
from vouchers.settings import Settings as VouchersSettings

from .dispatcher import PrefixDispatcher


def create_embedded_app(environ: Mapping[str, str] | None = None) -> PrefixDispatcher:
    # The gateway first: in embedded mode it creates the identity keys the others verify with.
    gateway_app = gateway.app.create_app(GatewaySettings.from_env(environ))
    return PrefixDispatcher(gateway_app, {
        "intake": intake.app.create_app(IntakeSettings.from_env(environ)),
        "vouchers": vouchers.app.create_app(VouchersSettings.from_env(environ)),
        "documents": documents.app.create_app(DocumentsSettings.from_env(environ)),
    })
