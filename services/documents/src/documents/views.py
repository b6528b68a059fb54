"""The protocol inbox pages (``/protocollo``): what the protocol officer sees and does.

Thin views over the same service functions as the API. The confirmation after
registering travels in a short-lived cookie naming a fixed message, because the
services share no session store (the Flask session cookie belongs to the gateway).
"""

from __future__ import annotations

from typing import Any

from ambito_common.db import db_session
from ambito_common.errors import Conflict, InvalidInput
from ambito_common.identity import PROTOCOL_OFFICER, current_identity, require_roles
from flask import Blueprint, Response, after_this_request, redirect, render_template, request, url_for

from . import services
from .api import actor_label, runtime
from .downloads import file_response, zip_response
from .models import BUILT, DELIVERED, REGISTERED, Package
from .schemas import RegistrationSchema

bp = Blueprint("protocollo", __name__, url_prefix="/protocollo")

STATUS_LABELS = {BUILT: "in consegna", DELIVERED: "da protocollare", REGISTERED: "protocollato"}
#: The inbox shows what has reached it; "built" packages are still on their way (seconds).
INBOX_FILTERS = {"": "Tutti", DELIVERED: "Da protocollare", REGISTERED: "Protocollati"}
ROLE_LABELS = {
    "primary": "Documento principale",
    "attachment": "Allegato",
    "segnatura": "Segnatura di protocollo",
    "manifest": "Indice dei file",
    "message": "Messaggio PEC",
}
EVENT_LABELS = {
    "built": "Pacchetto creato",
    "sealed": "Sigillo elettronico apposto",
    "delivered": "Consegnato",
    "registered": "Protocollato",
}
#: The registration form, driven by the schema that also validates it: name -> field metadata.
REGISTRATION_FIELDS = {name: field.metadata for name, field in RegistrationSchema().fields.items()}
NOTICE_COOKIE = "documents_notice"
NOTICES = {"registered": "Numero di protocollo registrato. Il mittente ne riceverà notizia."}


@bp.app_context_processor
def _labels() -> dict[str, Any]:
    return {"status_labels": STATUS_LABELS, "role_labels": ROLE_LABELS, "event_labels": EVENT_LABELS}


@bp.get("/")
@require_roles(PROTOCOL_OFFICER)
def inbox() -> str:
    status = request.args.get("status", "")
    statuses = [status] if status else [DELIVERED, REGISTERED]
    packages = services.list_packages(db_session(), statuses)
    return render_template("protocollo/inbox.html", packages=packages, status=status,
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
    response = redirect(url_for(".package_detail", package_id=package_id), code=303)
    response.set_cookie(NOTICE_COOKIE, "registered", max_age=120, path="/protocollo", httponly=True,
                        samesite="Lax",
                        secure=runtime().settings.platform.public_url.startswith("https://"))
    return response


def _detail_page(package: Package, *, form: dict[str, str] | None = None,
                 errors: dict[str, list[str]] | None = None, problem: str | None = None,
                 notice: str | None = None) -> str:
    primary = package.primary_file
    seal = None
    if primary is not None:
        seal = runtime().verify_seal(runtime().store.path(package.id, primary.name).read_bytes())
    fields = _registration_fields(form or {}, errors or {})
    summary = [(field["name"], field["label"], message) for field in fields for message in field["errors"]]
    return render_template("protocollo/package.html", package=package, seal=seal,
                           protocol=services.protocol_of(package), fields=fields, summary=summary,
                           problem=problem, notice=notice)


def _registration_fields(values: dict[str, str], errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The registration form's fields in the shape of the common ``render_field`` macro."""
    return [{"name": name, "label": meta["label"], "help": meta["help"], "widget": meta["widget"],
             "required": True, "autocomplete": "off", "value": values.get(name, ""),
             "errors": errors.get(name, [])}
            for name, meta in REGISTRATION_FIELDS.items()]


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
