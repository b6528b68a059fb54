"""The protocol inbox API (``/api/documents``), for protocol officers only."""

from __future__ import annotations

from ambito_common.db import db_session
from ambito_common.errors import ProblemSchema
from ambito_common.identity import PROTOCOL_OFFICER, Identity, current_identity, require_roles
from ambito_common.web import new_spec, problem_response
from apispec import APISpec
from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response, current_app, jsonify, request

from . import services
from .downloads import file_response, zip_response
from .runtime import Runtime
from .schemas import PackageDetailSchema, PackageListQuerySchema, PackageSchema, RegistrationSchema

bp = Blueprint("documents_api", __name__, url_prefix="/api/documents")


def runtime() -> Runtime:
    return current_app.extensions["runtime"]


def actor_label(identity: Identity | None) -> str:
    """Who did it, as the timeline and the package record show it."""
    if identity is None:
        return ""
    if identity.display_name:
        return f"{identity.display_name} ({identity.username})"
    return identity.username or identity.subject


@bp.get("/packages")
@require_roles(PROTOCOL_OFFICER)
def list_packages() -> Response:
    query = PackageListQuerySchema().load(request.args)
    status = query.get("status")
    packages = services.list_packages(db_session(), [status] if status else None, search=query["q"])
    return jsonify(PackageSchema(many=True).dump(packages))


@bp.get("/packages/<package_id>")
@require_roles(PROTOCOL_OFFICER)
def get_package(package_id: str) -> Response:
    return jsonify(PackageDetailSchema().dump(services.get_package(db_session(), package_id)))


@bp.get("/packages/<package_id>/files/<name>")
@require_roles(PROTOCOL_OFFICER)
def download_file(package_id: str, name: str) -> Response:
    return file_response(runtime().store, services.get_package(db_session(), package_id), name)


@bp.get("/packages/<package_id>/download")
@require_roles(PROTOCOL_OFFICER)
def download_package(package_id: str) -> Response:
    return zip_response(runtime().store, services.get_package(db_session(), package_id))


@bp.post("/packages/<package_id>/registration")
@require_roles(PROTOCOL_OFFICER)
def register(package_id: str) -> Response:
    body = request.get_json(silent=True)
    session = db_session()
    package = services.register_protocol(session, package_id, body if isinstance(body, dict) else {},
                                         actor=actor_label(current_identity()))
    session.commit()
    return jsonify(PackageDetailSchema().dump(package))


@bp.post("/packages/<package_id>/delivery")
@require_roles(PROTOCOL_OFFICER)
def retry_delivery(package_id: str) -> Response:
    """Retry now a delivery that failed (the worker picks it up at once)."""
    session = db_session()
    package = services.retry_delivery(session, package_id, runtime().delivery,
                                      actor=actor_label(current_identity()))
    session.commit()
    return jsonify(PackageDetailSchema().dump(package)), 202


@bp.post("/packages/<package_id>/rejection")
@require_roles(PROTOCOL_OFFICER)
def reject(package_id: str) -> Response:
    body = request.get_json(silent=True)
    reason = str(body.get("reason") or "") if isinstance(body, dict) else ""
    session = db_session()
    package = services.reject_package(session, package_id, reason, actor=actor_label(current_identity()))
    session.commit()
    return jsonify(PackageDetailSchema().dump(package))


@bp.post("/replies")
@require_roles(PROTOCOL_OFFICER)
def upload_reply() -> Response:
    """A Conferma.xml, Eccezione.xml or PEC receipt (.eml) as the raw request body."""
    session = db_session()
    package = services.record_reply(session, request.get_data(cache=False), channel="upload",
                                    actor=actor_label(current_identity()))
    session.commit()
    return jsonify({"package_id": package.id, "status": package.status})


@bp.get("/certificates/seal.pem")
def seal_certificate() -> Response:
    """The seal certificate, so that a recipient can verify our seals (public)."""
    cert = runtime().sealer.identity.cert
    return _pem(cert.public_bytes(serialization.Encoding.PEM), "sigillo.pem")


@bp.get("/certificates/ca.pem")
def ca_certificates() -> Response:
    """The CA certificate(s) the seal chains to (public)."""
    return _pem(runtime().settings.seal_trust_file.read_bytes(), "ca.pem")


def _pem(data: bytes, name: str) -> Response:
    return Response(data, mimetype="application/x-pem-file",
                    headers={"Content-Disposition": f"attachment; filename={name}",
                             "Cache-Control": "public, max-age=3600"})


def api_spec() -> APISpec:
    spec = new_spec("documents", "Ambito - Documenti e protocollo")
    spec.components.schema("Package", schema=PackageSchema)
    spec.components.schema("PackageDetail", schema=PackageDetailSchema)
    spec.components.schema("Registration", schema=RegistrationSchema)
    secured = {"security": [{"bearer": []}], "tags": ["protocollo"]}
    spec.components.schema("Problem", schema=ProblemSchema)
    problem = problem_response("Errore (application/problem+json)")
    package_id = {"in": "path", "name": "package_id", "required": True, "schema": {"type": "string"}}
    package_json = {"application/json": {"schema": "PackageDetail"}}
    errors = {"401": problem, "403": problem, "404": problem}
    spec.path(path="/api/documents/packages", operations={"get": {
        **secured, "summary": "Pacchetti ricevuti, dal più recente",
        "parameters": [{"in": "query", "schema": PackageListQuerySchema}],
        "responses": {"200": {"description": "Elenco dei pacchetti", "content": {"application/json": {
            "schema": {"type": "array", "items": "Package"}}}}, "401": problem, "403": problem,
            "422": problem}}})
    spec.path(path="/api/documents/packages/{package_id}", operations={"get": {
        **secured, "summary": "Un pacchetto", "parameters": [package_id],
        "responses": {"200": {"description": "Il pacchetto", "content": package_json}, **errors}}})
    spec.path(path="/api/documents/packages/{package_id}/files/{name}", operations={"get": {
        **secured, "summary": "Un file del pacchetto",
        "parameters": [package_id, {"in": "path", "name": "name", "required": True,
                                    "schema": {"type": "string"}}],
        "responses": {"200": {"description": "Il file (Content-Disposition: attachment)"}, **errors}}})
    spec.path(path="/api/documents/packages/{package_id}/download", operations={"get": {
        **secured, "summary": "L'intero pacchetto in formato .zip", "parameters": [package_id],
        "responses": {"200": {"description": "Archivio .zip", "content": {"application/zip": {}}},
                      **errors}}})
    spec.path(path="/api/documents/packages/{package_id}/registration", operations={"post": {
        **secured, "summary": "Registra il numero di protocollo assegnato dal protocollo del destinatario",
        "parameters": [package_id],
        "requestBody": {"required": True, "content": {"application/json": {"schema": "Registration"}}},
        "responses": {"200": {"description": "Il pacchetto protocollato", "content": package_json},
                      **errors, "409": problem, "422": problem}}})
    spec.path(path="/api/documents/packages/{package_id}/delivery", operations={"post": {
        **secured, "summary": "Ritenta subito la consegna non riuscita", "parameters": [package_id],
        "responses": {"202": {"description": "Consegna rimessa in coda", "content": package_json},
                      **errors, "409": problem}}})
    spec.path(path="/api/documents/packages/{package_id}/rejection", operations={"post": {
        **secured, "summary": "Respinge il pacchetto indicando il motivo", "parameters": [package_id],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]}}}},
        "responses": {"200": {"description": "Il pacchetto respinto", "content": package_json},
                      **errors, "409": problem, "422": problem}}})
    spec.path(path="/api/documents/replies", operations={"post": {
        **secured, "summary": "Carica una risposta: Conferma.xml, Eccezione.xml o ricevuta PEC (.eml)",
        "requestBody": {"required": True, "content": {
            "application/xml": {"schema": {"type": "string"}},
            "message/rfc822": {"schema": {"type": "string"}}}},
        "responses": {"200": {"description": "Il pacchetto a cui si riferisce", "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "package_id": {"type": "string"}, "status": {"type": "string"}}}}}},
            "401": problem, "403": problem, "409": problem, "422": problem}}})
    for name, summary in (("seal.pem", "Certificato del sigillo elettronico (PEM)"),
                          ("ca.pem", "Certificati della CA del sigillo (PEM)")):
        spec.path(path=f"/api/documents/certificates/{name}", operations={"get": {
            "tags": ["certificati"], "summary": summary,
            "responses": {"200": {"description": summary,
                                  "content": {"application/x-pem-file": {}}}}}})
    return spec
