"""The protocol inbox pages (``/protocollo``): what the protocol officer sees and does.

Thin views over the same service functions as the API. The confirmation after
registering travels in a short-lived cookie naming a fixed message, because the
services share no session store (the Flask session cookie belongs to the gateway).
"""

from __future__ import annotations

from typing import Any

from ambito_common.db import db_session
from ambito_common.errors import Conflict, InvalidInput, NotFound
from ambito_common.forms import build_form
from ambito_common.identity import PROTOCOL_OFFICER, current_identity, require_roles
from cryptography.hazmat.primitives import hashes
from flask import Blueprint, Response, after_this_request, redirect, render_template, request, url_for

from . import services
from .api import actor_label, runtime
from .downloads import file_response, zip_response
from .models import BUILT, DELIVERED, REGISTERED, REJECTED, SENT, Package
from .schemas import RegistrationSchema

bp = Blueprint("protocollo", __name__, url_prefix="/protocollo")

STATUS_LABELS = {BUILT: "in consegna", SENT: "inviato via PEC", DELIVERED: "da protocollare",
                 REGISTERED: "protocollato", REJECTED: "respinto"}
FAILED = "failed"
#: The inbox shows what has reached it, and deliveries that failed; other "built" packages
#: are still on their way (seconds).
INBOX_FILTERS = {"": "Tutti", SENT: "Inviati via PEC", DELIVERED: "Da protocollare",
                 REGISTERED: "Protocollati", REJECTED: "Respinti", FAILED: "Consegna non riuscita"}
ROLE_LABELS = {
    "primary": "Documento principale",
    "attachment": "Allegato",
    "segnatura": "Segnatura di protocollo",
    "metadata": "Metadati del documento (Allegato 5)",
    "manifest": "Indice dei file",
    "message": "Messaggio PEC",
}
EVENT_LABELS = {
    "built": "Pacchetto creato",
    "sealed": "Sigillo elettronico apposto",
    "sent": "Inviato via PEC",
    "accepted": "Accettato dal gestore PEC",
    "not_accepted": "Non accettato dal gestore PEC",
    "delivered": "Consegnato",
    "delivery_failed": "Consegna non riuscita",
    "delivery_error": "Errore di consegna PEC",
    "retry_requested": "Nuovo tentativo di consegna",
    "registered": "Protocollato",
    "rejected": "Respinto",
    "copy_sent": "Copia di cortesia inviata",
    "resending": "Nuovo invio PEC (stesso Message-ID)",
}
REPLY_LABELS = {
    "conferma": "Conferma di protocollazione (Conferma.xml)",
    "eccezione": "Notifica di eccezione (Eccezione.xml)",
    "accettazione": "Ricevuta PEC di accettazione",
    "non-accettazione": "Ricevuta PEC di non accettazione",
    "avvenuta-consegna": "Ricevuta PEC di avvenuta consegna",
    "errore-consegna": "Ricevuta PEC di errore di consegna",
    "preavviso-errore-consegna": "Preavviso PEC di errore di consegna",
}
NOTICE_COOKIE = "documents_notice"
NOTICES = {
    "registered": "Numero di protocollo registrato. Il mittente ne riceverà notizia.",
    "retry": "Nuovo tentativo di consegna avviato: l'esito comparirà nella cronologia.",
    "rejected": "Pacchetto respinto.",
    "reply": "Risposta registrata nella cronologia del pacchetto.",
}


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"status_labels": STATUS_LABELS, "role_labels": ROLE_LABELS, "event_labels": EVENT_LABELS,
            "reply_labels": REPLY_LABELS}


@bp.get("/")
@require_roles(PROTOCOL_OFFICER)
def inbox() -> str:
    status = request.args.get("status", "")
    search = request.args.get("q", "").strip()[:100]
    if status == FAILED:
        packages = services.list_packages(db_session(), None, search=search, failed=True)
    else:
        statuses = [status] if status else [SENT, DELIVERED, REGISTERED, REJECTED]
        packages = services.list_packages(db_session(), statuses, search=search, failed=not status)
    return render_template("protocollo/inbox.html", packages=packages, status=status, search=search,
                           filters=INBOX_FILTERS)


@bp.get("/pacchetti/<package_id>")
@require_roles(PROTOCOL_OFFICER)
def package_detail(package_id: str) -> str:
    return _detail_page(services.get_package(db_session(), package_id), notice=_take_notice())


@bp.get("/pacchetti/<package_id>/file/<name>")
@require_roles(PROTOCOL_OFFICER)
def download_file(package_id: str, name: str) -> Response:
    return file_response(runtime().store, services.get_package(db_session(), package_id), name)


@bp.get("/pacchetti/<package_id>/pacchetto.zip")
@require_roles(PROTOCOL_OFFICER)
def download_package(package_id: str) -> Response:
    return zip_response(runtime().store, services.get_package(db_session(), package_id))


@bp.get("/pacchetti/<package_id>/risposte/<int:reply_id>")
@require_roles(PROTOCOL_OFFICER)
def download_reply(package_id: str, reply_id: int) -> Response:
    """A reply exactly as received (Conferma.xml, Eccezione.xml, PEC receipt): the evidence."""
    package = services.get_package(db_session(), package_id)
    reply = next((r for r in package.replies if r.id == reply_id), None)
    if reply is None:
        raise NotFound("Risposta non trovata.")
    extension = "eml" if reply.media_type == "message/rfc822" else "xml"
    return Response(reply.content, mimetype=reply.media_type, headers={
        "Content-Disposition": f"attachment; filename={reply.kind}-{reply.id}.{extension}"})


@bp.post("/pacchetti/<package_id>/registrazione")
@require_roles(PROTOCOL_OFFICER)
def register(package_id: str) -> Any:
    form = {"number": request.form.get("number", ""), "date": request.form.get("date", "")}
    session = db_session()
    try:
        services.register_protocol(session, package_id, form, actor=actor_label(current_identity()))
    except (InvalidInput, Conflict) as error:
        session.rollback()
        page = _detail_page(services.get_package(session, package_id), form=form,
                            errors=error.errors, problem=error.detail)
        return page, error.status
    session.commit()
    return _redirect_with_notice(package_id, "registered")


@bp.post("/pacchetti/<package_id>/consegna")
@require_roles(PROTOCOL_OFFICER)
def retry_delivery(package_id: str) -> Any:
    """"Riprova ora": deliver again a package whose delivery failed."""
    session = db_session()
    try:
        services.retry_delivery(session, package_id, runtime().delivery,
                                actor=actor_label(current_identity()))
    except Conflict as error:
        session.rollback()
        return _detail_page(services.get_package(session, package_id), problem=error.detail), error.status
    session.commit()
    return _redirect_with_notice(package_id, "retry")


@bp.post("/pacchetti/<package_id>/rifiuto")
@require_roles(PROTOCOL_OFFICER)
def reject(package_id: str) -> Any:
    session = db_session()
    try:
        services.reject_package(session, package_id, request.form.get("reason", ""),
                                actor=actor_label(current_identity()))
    except (InvalidInput, Conflict) as error:
        session.rollback()
        return _detail_page(services.get_package(session, package_id), problem=error.detail,
                            reject_errors=error.errors.get("reason", [])), error.status
    session.commit()
    return _redirect_with_notice(package_id, "rejected")


@bp.post("/risposte")
@require_roles(PROTOCOL_OFFICER)
def upload_reply() -> Any:
    """A Conferma.xml, Eccezione.xml or PEC receipt uploaded by hand (file field ``reply``)."""
    upload = request.files.get("reply")
    session = db_session()
    try:
        package = services.record_reply(session, upload.read() if upload else b"", channel="upload",
                                        actor=actor_label(current_identity()))
    except (InvalidInput, Conflict) as error:
        session.rollback()
        reasons = [message for messages in error.errors.values() for message in messages]
        return render_template("protocollo/reply_error.html", problem=error.detail,
                               reasons=reasons), error.status
    session.commit()
    return _redirect_with_notice(package.id, "reply")


@bp.get("/certificati")
def certificates() -> str:
    """The seal certificate and its CA, for anyone who must verify our seals (no login)."""
    cert = runtime().sealer.identity.cert
    return render_template("protocollo/certificates.html", cert=cert,
                           fingerprint=cert.fingerprint(hashes.SHA256()).hex(":").upper())


def _redirect_with_notice(package_id: str, notice: str) -> Response:
    response = redirect(url_for(".package_detail", package_id=package_id), code=303)
    response.set_cookie(NOTICE_COOKIE, notice, max_age=120, path="/protocollo", httponly=True,
                        samesite="Lax",
                        secure=runtime().settings.platform.public_url.startswith("https://"))
    return response


def _detail_page(package: Package, *, form: dict[str, str] | None = None,
                 errors: dict[str, list[str]] | None = None, problem: str | None = None,
                 notice: str | None = None, reject_errors: list[str] | None = None) -> str:
    primary = package.primary_file
    seal = None
    if primary is not None:
        seal = runtime().verify_seal(runtime().store.path(package.id, primary.name).read_bytes())
    # The registration form, driven by the schema that also validates it.
    registration = build_form(RegistrationSchema(), form, errors)
    refusal = runtime().delivery.permanent_refusal(package) if package.status == BUILT else None
    return render_template("protocollo/package.html", package=package, seal=seal, refusal=refusal,
                           protocol=services.protocol_of(package),
                           fields=registration.sections[0].fields, summary=registration.errors,
                           problem=problem, notice=notice, reject_errors=reject_errors or [])


def _take_notice() -> str | None:
    """The one-time confirmation left by the previous POST, cleared as it is shown."""
    key = request.cookies.get(NOTICE_COOKIE)
    if key is None:
        return None

    @after_this_request
    def _clear(response: Response) -> Response:
        response.delete_cookie(NOTICE_COOKIE, path="/protocollo", httponly=True, samesite="Lax")
        return response

    return NOTICES.get(key)
