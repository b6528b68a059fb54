"""The JSON API of SAD voucher requests and the comuni (``/api/intake/...``).

The citizen needs no account: a request is reached by its tracking code, which
is unguessable. A case is read and decided by its comune's social workers
(and read by the Ambito's staff), identified by their bearer token.
"""

from __future__ import annotations

from typing import Any

from ambito_common.db import db_session, utcnow
from ambito_common.identity import AMBITO_ADMIN, SOCIAL_WORKER, current_identity, require_roles
from ambito_common.web import ROME
from apispec import APISpec
from flask import Blueprint, Response, current_app, jsonify, request, url_for

from . import sad, services
from .models import SadRequest
from .sad_schemas import (
    AttachmentOut,
    CarePlanSchema,
    SadCreatedOut,
    SadRequestOut,
    SadRequestSchema,
)

bp = Blueprint("intake_sad_api", __name__)


def config() -> sad.SadConfig:
    return current_app.extensions["runtime"].sad


def comuni_json() -> list[dict[str, str]]:
    return [{"code": c["code"], "name": c["name"], "sub_ambito": c["sub_ambito"]}
            for c in current_app.extensions["ambito"]["comuni"]]


def status_json(found: SadRequest) -> dict[str, Any]:
    """What ``GET /api/intake/applications/<code>`` says of a SAD request."""
    protocol = None
    if found.protocol_number:
        protocol = {"number": found.protocol_number, "date": found.protocol_date.isoformat()
                    if found.protocol_date else None}
    rejection = {"code": found.rejection_code, "reason": found.rejection_reason} \
        if found.status == services.REJECTED else None
    return {"tracking_code": found.tracking_code, "status": found.status, "package_id": found.package_id,
            "protocol": protocol, "case_status": found.case_status, "rejection": rejection,
            "waiting_position": found.waiting_position}


def case_json(found: SadRequest) -> dict[str, Any]:
    protocol = None
    if found.protocol_number:
        protocol = {"number": found.protocol_number, "date": found.protocol_date}
    return SadRequestOut().dump({
        "id": found.id, "tracking_code": found.tracking_code, "status": found.status,
        "case_status": found.case_status, "comune": found.comune, "isee_expired": found.isee_expired,
        "submitted_at": found.submitted_at.astimezone(ROME) if found.submitted_at else None,
        "registration": sad.registration_label(found), "protocol": protocol, "data": found.data,
        "care_plan": found.care_plan, "decision_reason": found.decision_reason,
        "history": [{"at": e.at.astimezone(ROME), "status": e.status, "actor": e.actor,
                     "actor_role": e.actor_role, "detail": e.detail} for e in found.events],
        "attachments": [{"name": a.name, "sha256": a.sha256, "size": a.size, "kind": a.kind,
                         "media_type": a.media_type, "uploaded_at": a.uploaded_at.astimezone(ROME)}
                        for a in found.attachments],
    })


def _created(body: dict[str, Any], location: str | None = None) -> Response:
    response = jsonify(body)
    response.status_code = 201
    if location:
        response.headers["Location"] = location
    return response


@bp.get("/api/intake/comuni")
def comuni():  # type: ignore[no-untyped-def]
    return jsonify(comuni_json())


@bp.post("/api/intake/sad-requests")
def create_request():  # type: ignore[no-untyped-def]
    session = db_session()
    found = sad.create_request(session, data=request.get_json(silent=True), now=utcnow(), config=config())
    session.commit()
    return _created(SadCreatedOut().dump(found),
                    url_for("intake_api.get_application", tracking_code=found.tracking_code))


@bp.post("/api/intake/sad-requests/<tracking_code>/attachments")
def add_attachment(tracking_code: str):  # type: ignore[no-untyped-def]
    session = db_session()
    upload = request.files.get("file")
    attachment = sad.add_attachment(
        session, tracking_code=tracking_code, kind=request.form.get("kind"),
        filename=upload.filename or "" if upload else "", stream=upload.stream if upload else None,
        now=utcnow(), config=config())
    session.commit()
    return _created(AttachmentOut().dump(attachment))


@bp.post("/api/intake/sad-requests/<tracking_code>/submit")
def submit(tracking_code: str):  # type: ignore[no-untyped-def]
    session = db_session()
    found = sad.submit(session, tracking_code=tracking_code, now=utcnow(), config=config())
    session.commit()
    return jsonify({"status": found.status})


@bp.post("/api/intake/sad-requests/<tracking_code>/documents-sent")
def documents_sent(tracking_code: str):  # type: ignore[no-untyped-def]
    session = db_session()
    found = sad.documents_sent(session, tracking_code=tracking_code, now=utcnow(), config=config())
    session.commit()
    return jsonify({"case_status": found.case_status})


@bp.get("/api/intake/sad-requests/<request_id>")
@require_roles(SOCIAL_WORKER, AMBITO_ADMIN)
def get_case(request_id: str):  # type: ignore[no-untyped-def]
    return jsonify(case_json(sad.get_case(db_session(), request_id, current_identity())))


@bp.post("/api/intake/sad-requests/<request_id>/<any(notes, 'care-plan', approve, reject, "
         "'request-documents'):action>")
@require_roles(SOCIAL_WORKER)
def decide(request_id: str, action: str):  # type: ignore[no-untyped-def]
    """Run one decision of the social worker on a case of their comune, and answer with the case."""
    session = db_session()
    identity = current_identity()
    assert identity is not None
    found = sad.get_case(session, request_id, identity, decide=True)
    sad.decide(session, found, identity, action, request.get_json(silent=True) or {}, utcnow(), config())
    session.commit()
    return jsonify(case_json(found))


def document_sad(spec: APISpec, problem: Any) -> None:
    """Add the comuni and SAD paths to intake's OpenAPI."""
    spec.components.schema("SadRequestForm", schema=SadRequestSchema)
    spec.components.schema("SadCreated", schema=SadCreatedOut)
    spec.components.schema("SadAttachment", schema=AttachmentOut)
    spec.components.schema("SadCase", schema=SadRequestOut)
    spec.components.schema("CarePlan", schema=CarePlanSchema)
    code = {"name": "tracking_code", "in": "path", "required": True, "schema": {"type": "string"}}
    ident = {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}
    upload = ("Accessibile con il solo codice di tracciamento (nessun accesso né token del modulo: le API "
              "sono escluse dal controllo CSRF delle pagine). Limiti per file e per richiesta configurabili "
              "(INTAKE_UPLOAD_MAX_FILE_BYTES, INTAKE_UPLOAD_MAX_REQUEST_BYTES).")
    spec.path(path="/api/intake/comuni", operations={"get": {
        "summary": "I comuni dell'Ambito", "tags": ["comuni"],
        "responses": {"200": {"description": "`[{code, name, sub_ambito}]`"}}}})
    spec.path(path="/api/intake/sad-requests", operations={"post": {
        "summary": "Compila una richiesta di voucher SAD (bozza)", "tags": ["sad"],
        "description": "La bozza scade dopo INTAKE_DRAFT_TTL_DAYS giorni; il link per riprenderla è inviato "
                       "per e-mail. `isee.value_cents` è in centesimi.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": "SadRequestForm"}}},
        "responses": {"201": {"description": "Bozza salvata",
                              "content": {"application/json": {"schema": "SadCreated"}}},
                      "422": problem("Dati non validi: `errors` per campo")}}})
    spec.path(path="/api/intake/sad-requests/{tracking_code}/attachments", parameters=[code], operations={
        "post": {"summary": "Allega un file (PDF, JPEG, PNG, riconosciuti dal contenuto)", "tags": ["sad"],
                 "description": upload,
                 "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                     "type": "object", "properties": {
                         "file": {"type": "string", "format": "binary"},
                         "kind": {"type": "string",
                                  "enum": ["isee", "certificate", "identity", "other"]}}}}}},
                 "responses": {"201": {"description": "File salvato",
                                       "content": {"application/json": {"schema": "SadAttachment"}}},
                               "404": problem("Codice sconosciuto o bozza scaduta"),
                               "409": problem("Richiesta già presentata, o file già caricato"),
                               "413": problem("File o allegati troppo grandi"),
                               "415": problem("Tipo di file non ammesso"),
                               "422": problem("Tipo di documento mancante o file vuoto")}}})
    spec.path(path="/api/intake/sad-requests/{tracking_code}/submit", parameters=[code], operations={
        "post": {"summary": "Presenta la richiesta: registrazione e invio al protocollo del comune",
                 "tags": ["sad"],
                 "description": "Controlla l'intero modulo: una bozza salvata dalla pagina può essere "
                                "incompleta.",
                 "responses": {"200": {"description": "`{\"status\": \"received\"}`"},
                               "404": problem("Codice sconosciuto o bozza scaduta"),
                               "409": problem("Richiesta già presentata"),
                               "422": problem("Dati della bozza incompleti: `errors` per campo")}}})
    spec.path(path="/api/intake/sad-requests/{tracking_code}/documents-sent", parameters=[code], operations={
        "post": {"summary": "Il cittadino conferma di aver caricato i documenti richiesti", "tags": ["sad"],
                 "responses": {"200": {"description": "`{\"case_status\": \"assessment\"}`"},
                               "409": problem("Nessun documento richiesto"),
                               "422": problem("Nessun nuovo documento caricato")}}})
    spec.path(path="/api/intake/sad-requests/{request_id}", parameters=[ident], operations={"get": {
        "summary": "Una richiesta con stato, storia e allegati", "tags": ["sad"],
        "security": [{"bearer": []}],
        "description": "Per gli assistenti sociali del comune del beneficiario e per lo staff dell'Ambito.",
        "responses": {"200": {"description": "La richiesta", "content": {"application/json": {
            "schema": "SadCase"}}}, "401": problem("Accesso richiesto"),
            "403": problem("Profilo o comune diverso"), "404": problem("Richiesta inesistente")}}})
    for action, summary, body in (
            ("notes", "Nota di valutazione (`{text}`)", None),
            ("care-plan", "Piano assistenziale (PAI) con compartecipazione calcolata", "CarePlan"),
            ("approve", "Approva: la richiesta di voucher va al servizio vouchers", None),
            ("reject", "Respinge (`{reason}`)", None),
            ("request-documents", "Chiede documenti al cittadino (`{message}`)", None)):
        operation: dict[str, Any] = {
            "summary": summary, "tags": ["sad"], "security": [{"bearer": []}],
            "responses": {"200": {"description": "La richiesta aggiornata",
                                  "content": {"application/json": {"schema": "SadCase"}}},
                          "403": problem("Solo un assistente sociale del comune"),
                          "409": problem("Richiesta già decisa"), "422": problem("Dati non validi")}}
        if body:
            operation["requestBody"] = {"content": {"application/json": {"schema": body}}}
        spec.path(path=f"/api/intake/sad-requests/{{request_id}}/{action}", parameters=[ident],
                  operations={"post": operation})
