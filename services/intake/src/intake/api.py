"""The JSON API of intake (``/api/intake/...``) and its OpenAPI description.

No login: anyone may read the calls and apply; an application's status is
read with its tracking code, which is unguessable (100 random bits).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ambito_common.db import db_session, utcnow
from ambito_common.forms import document_in_openapi
from ambito_common.web import ROME, new_spec
from ambito_common.web import problem_response as _problem
from apispec import APISpec
from flask import Blueprint, current_app, jsonify, request, url_for

from . import desk_api, sad, sad_api, services
from .models import Application, Call
from .schemas import (
    ApplicationCreatedOut,
    ApplicationSchema,
    ApplicationStatusOut,
    CallOut,
    ProblemOut,
)

bp = Blueprint("intake_api", __name__)


def call_json(call: Call, now: dt.datetime) -> dict[str, Any]:
    return CallOut().dump({
        "slug": call.slug, "title": call.title, "status": services.call_status(call, now),
        "deadline": call.deadline.astimezone(ROME), "areas": call.areas,
    })


def status_json(application: Application) -> dict[str, Any]:
    protocol = None
    if application.protocol_number:
        protocol = {"number": application.protocol_number, "date": application.protocol_date}
    return ApplicationStatusOut().dump({
        "tracking_code": application.tracking_code, "status": application.status,
        "package_id": application.package_id, "protocol": protocol,
    })


@bp.get("/api/intake/calls")
def list_calls():  # type: ignore[no-untyped-def]
    now = utcnow()
    return jsonify([call_json(c, now) for c in services.list_calls(db_session(), now)])


@bp.get("/api/intake/calls/<slug>")
def get_call(slug: str):  # type: ignore[no-untyped-def]
    return jsonify(call_json(services.get_call(db_session(), slug), utcnow()))


@bp.post("/api/intake/calls/<slug>/applications")
def submit_application(slug: str):  # type: ignore[no-untyped-def]
    """Apply to a call. A second application by the same organisation is a 409 naming the first."""
    session = db_session()
    application = services.submit_application(
        session, call_slug=slug, data=request.get_json(silent=True), now=utcnow(),
        ambito=current_app.extensions["ambito"])
    session.commit()
    response = jsonify(ApplicationCreatedOut().dump(application))
    response.status_code = 201
    response.headers["Location"] = url_for(".get_application", tracking_code=application.tracking_code)
    return response


@bp.get("/api/intake/applications/<tracking_code>")
def get_application(tracking_code: str):  # type: ignore[no-untyped-def]
    """The status of an application or of a SAD request: one tracking code space, one endpoint."""
    session = db_session()
    request_found = sad.find_by_code(session, tracking_code)
    if request_found is not None:
        return jsonify(sad_api.status_json(request_found))
    return jsonify(status_json(services.get_application(session, tracking_code)))


def build_spec() -> APISpec:
    """OpenAPI 3 of this API, the request body straight from the form's schema."""
    spec = document_in_openapi(new_spec("intake", "Ambito - Avvisi e domande"))
    spec.components.schema("Call", schema=CallOut)
    spec.components.schema("ApplicationForm", schema=ApplicationSchema)
    spec.components.schema("ApplicationCreated", schema=ApplicationCreatedOut)
    spec.components.schema("ApplicationStatus", schema=ApplicationStatusOut)
    spec.components.schema("Problem", schema=ProblemOut)
    slug = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "Identificativo dell'avviso, ad esempio pdz-2025-2027."}
    spec.path(path="/api/intake/calls", operations={"get": {
        "summary": "Elenco degli avvisi, prima quelli aperti", "tags": ["avvisi"],
        "responses": {"200": {"description": "Avvisi", "content": {"application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Call"}}}}}}}})
    spec.path(path="/api/intake/calls/{slug}", parameters=[slug], operations={"get": {
        "summary": "Un avviso, con aree tematiche e incontri", "tags": ["avvisi"],
        "responses": {"200": {"description": "L'avviso",
                              "content": {"application/json": {"schema": "Call"}}},
                      "404": _problem("Avviso inesistente")}}})
    spec.path(path="/api/intake/calls/{slug}/applications", parameters=[slug], operations={"post": {
        "summary": "Presenta una manifestazione d'interesse", "tags": ["domande"],
        "description": ("Nessun accesso richiesto. Una sola domanda per ente (codice fiscale) e "
                        "avviso: una seconda riceve 409 con il `tracking_code` della prima. "
                        "Dopo il termine (ora di Roma) l'avviso risponde 409."),
        "requestBody": {"required": True,
                        "content": {"application/json": {"schema": "ApplicationForm"}}},
        "responses": {
            "201": {"description": "Domanda ricevuta e registrata",
                    "content": {"application/json": {"schema": "ApplicationCreated"}}},
            "404": _problem("Avviso inesistente"),
            "409": _problem("Avviso chiuso, o domanda già presentata dallo stesso ente"),
            "422": _problem("Dati non validi: `errors` per campo (percorso puntato)")}}})
    spec.path(path="/api/intake/applications/{tracking_code}", parameters=[{
        "name": "tracking_code", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "Codice di tracciamento (20 caratteri; trattini facoltativi)."}],
        operations={"get": {
            "summary": "Stato di una domanda", "tags": ["domande"],
            "responses": {"200": {"description": "Stato e, se assegnato, protocollo",
                                  "content": {"application/json": {"schema": "ApplicationStatus"}}},
                          "404": _problem("Codice sconosciuto")}}})
    sad_api.document_sad(spec, _problem)
    desk_api.document_desk(spec, _problem)
    return spec
