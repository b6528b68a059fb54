"""Build any service's runtime by name (for the CLI and cross-service tests)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ambito_common.tasks import SERVICES

ALL = ("gateway", *SERVICES)


def build(name: str, environ: Mapping[str, str] | None = None) -> Any:
    if name not in ALL:
        raise ValueError(f"unknown service {name!r}")
    settings = importlib.import_module(f"{name}.settings").Settings.from_env(environ)
    return importlib.import_module(f"{name}.runtime").Runtime.build(settings)
