"""Domain errors and their one mapping to HTTP.

The service layer raises these; ``register_error_handlers`` turns them into
``application/problem+json`` (RFC 9457) for the API and into an Italian page
for people. Nothing else in a view decides a status code for a rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from flask import Flask, Response, jsonify, render_template, request
from marshmallow import Schema, ValidationError, fields
from werkzeug.exceptions import HTTPException

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A rule of the domain was not met; ``status`` is the HTTP code it maps to."""

    status = 400
    title = "Richiesta non valida"

    def __init__(self, detail: str, *, errors: Mapping[str, list[str]] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = dict(errors or {})
        self.extra = extra


class InvalidInput(DomainError):
    status = 422
    title = "Dati non validi"


class NotFound(DomainError):
    status = 404
    title = "Non trovato"


class Conflict(DomainError):
    status = 409
    title = "Conflitto"


class Unauthorized(DomainError):
    status = 401
    title = "Accesso richiesto"


class Forbidden(DomainError):
    status = 403
    title = "Accesso negato"


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict as ``{"organisation.tax_code": [...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "_schema"
            for sub_path, sub_messages in flatten_errors(value, path).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            flat[prefix or "_schema"] = list(messages)
        else:
            for item in messages:
                for sub_path, sub_messages in flatten_errors(item, prefix).items():
                    flat.setdefault(sub_path, []).extend(sub_messages)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


def wants_json() -> bool:
    """API paths and JSON clients get problem+json; browsers get a page."""
    if request.path.startswith("/api/") or request.path.startswith("/auth/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


class ProblemSchema(Schema):
    """The body of every error answer (RFC 9457); services subclass it to document their extra members."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "Messaggi per campo, con il percorso puntato."})


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_JSON
    return response


def problem_body(error: DomainError) -> dict[str, Any]:
    """The problem+json body of a refusal, built here only: a service that stores a refusal
    to replay it later (an Idempotency-Key) answers the replay exactly as the live refusal."""
    body = {"type": "about:blank", "title": error.title, "status": error.status, "detail": error.detail,
            **error.extra}
    if error.errors:
        body["errors"] = error.errors
    return body


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(error: DomainError):  # type: ignore[no-untyped-def]
        if wants_json():
            response = jsonify(problem_body(error))
            response.status_code = error.status
            response.mimetype = PROBLEM_JSON
            return response
        return render_template("error.html", title=error.title, detail=error.detail), error.status

    @app.errorhandler(ValidationError)
    def _validation_error(error: ValidationError):  # type: ignore[no-untyped-def]
        return _domain_error(InvalidInput("Alcuni dati non sono validi.",
                                          errors=flatten_errors(error.messages)))

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):  # type: ignore[no-untyped-def]
        title = ITALIAN_TITLES.get(error.code or 500, error.name)
        if wants_json():
            return problem(error.code or 500, title, error.description or title)
        return render_template("error.html", title=title, detail=None), error.code

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):  # type: ignore[no-untyped-def]
        log.exception("unhandled_error", path=request.path)
        title = "Errore interno"
        detail = "Si è verificato un errore imprevisto. Riprovi più tardi."
        if wants_json():
            return problem(500, title, detail)
        return render_template("error.html", title=title, detail=detail), 500


ITALIAN_TITLES = {
    400: "Richiesta non valida",
    401: "Accesso richiesto",
    403: "Accesso negato",
    404: "Pagina non trovata",
    405: "Metodo non consentito",
    409: "Conflitto",
    413: "Contenuto troppo grande",
    415: "Tipo di contenuto non supportato",
    422: "Dati non validi",
    429: "Troppe richieste",
    500: "Errore interno",
}
