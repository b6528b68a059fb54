"""Structured logs (structlog) with a request id that follows a submission.

The id comes from the ``X-Request-ID`` header (nginx sets one) or is minted
here; it is bound for the request, returned in the response, stored on outbox
rows and carried in Celery task headers, so one grep finds a submission's
whole path through the gateway, intake, the broker and documents.
"""

from __future__ import annotations

import logging
import sys
import uuid

import structlog
from flask import Flask, g, request

REQUEST_ID_HEADER = "X-Request-ID"


def configure_logging(*, json: bool, level: int = logging.INFO) -> None:
    renderer = (structlog.processors.JSONRenderer() if json
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def current_request_id() -> str | None:
    return structlog.contextvars.get_contextvars().get("request_id")


def bind_request_id(request_id: str | None) -> str:
    request_id = request_id or uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    return request_id


def init_request_id(app: Flask, service: str) -> None:
    @app.before_request
    def _bind() -> None:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # Accept a caller's id only if it looks like one; never log arbitrary input.
        valid = incoming if 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum() else None
        g.request_id = bind_request_id(valid)
        structlog.contextvars.bind_contextvars(service=service)

    @app.after_request
    def _echo(response):  # type: ignore[no-untyped-def]
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response
