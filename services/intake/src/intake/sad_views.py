"""The pages of SAD voucher requests: the citizen's form, uploads and tracking; the comune's cases.

No JavaScript is needed: every step is a form that posts and redirects
(303), or comes back with the error on the page and the HTTP status of the
API (422, 413, 415, 409) so page and API say the same thing.
"""

from __future__ import annotations

from typing import Any

from ambito_common.db import db_session, utcnow
from ambito_common.errors import Conflict, DomainError, InvalidInput
from ambito_common.forms import build_form, document_sections, parse_form
from ambito_common.identity import SOCIAL_WORKER, current_identity, require_roles
from ambito_common.web import format_date
from flask import Blueprint, abort, current_app, redirect, render_template, request, send_file, url_for

from . import sad, services
from .codes import group_tracking_code
from .models import SadRequest, SadSupplement
from .sad_schemas import ATTACHMENT_KINDS, CarePlanSchema

bp = Blueprint("intake_sad_pages", __name__)

PACKAGE_STEPS = (
    (services.RECEIVED, "Richiesta presentata e registrata"),
    (services.PACKAGED, "Documenti pronti e sigillati"),
    (services.DELIVERED, "Consegnata all'ufficio protocollo del comune"),
    (services.REGISTERED, "Protocollata"),
)

# The case page's Italian slugs for the decisions of sad.decide.
DECISIONS = {"nota": "notes", "piano": "care-plan", "approva": "approve", "respingi": "reject",
             "documenti": "request-documents"}


def _config() -> sad.SadConfig:
    return current_app.extensions["runtime"].sad


def package_state(target: SadRequest | SadSupplement) -> str:
    """Where a package stands at the comune's protocol, in the citizen's words."""
    if target.status == services.REGISTERED and target.protocol_date:
        return f"protocollata: n. {target.protocol_number} del {format_date(target.protocol_date)}"
    if target.status == services.REJECTED:
        return services.rejection_detail(target)
    return services.STATUS_LABELS.get(target.status, target.status)


def _render_request(found: SadRequest, status: int = 200, upload_error: DomainError | None = None):  # type: ignore[no-untyped-def]
    config = _config()
    return render_template(
        "intake/sad_request.html", request_=found, code=group_tracking_code(found.tracking_code),
        comune_name=config.comune_name(found.comune),
        steps=services.package_steps(found.status, PACKAGE_STEPS),
        case_label=sad.case_label(found), registration=sad.registration_label(found),
        package_state=package_state, kind_labels=dict(ATTACHMENT_KINDS), voucher_labels=sad.VOUCHER_LABELS,
        kinds=ATTACHMENT_KINDS, upload_error=upload_error,
        incomplete=found.status == sad.DRAFT and not sad.is_complete(found, config),
        can_upload=found.status == sad.DRAFT or found.case_status == sad.DOCUMENTS_REQUESTED,
        max_file=config.max_file_bytes, max_request=config.max_request_bytes,
        history=[e for e in found.events if e.status != sad.DRAFT]), status


@bp.route("/intake/sad/nuova", methods=["GET", "POST"])
def new_request():  # type: ignore[no-untyped-def]
    schema = _config().schema()
    if request.method == "GET":
        return render_template("intake/sad_form.html", form=build_form(schema))
    data = parse_form(schema, request.form)
    session = db_session()
    try:
        found = sad.create_request(session, data=data, now=utcnow(), config=_config(),
                                   complete=not _half_filled())
    except InvalidInput as exc:
        session.rollback()
        return render_template("intake/sad_form.html", form=build_form(schema, data, exc.errors)), 422
    session.commit()
    return redirect(url_for(".tracking", code=found.tracking_code), 303)


def _half_filled() -> bool:
    """The citizen pressed "Salva bozza": keep the form as typed, checks come at submission."""
    return request.form.get("azione") == "bozza"


@bp.get("/intake/sad/<code>")
def tracking(code: str):  # type: ignore[no-untyped-def]
    return _render_request(sad.get_live(db_session(), code, utcnow()))


def _form_values(data: dict[str, Any]) -> dict[str, Any]:
    """Stored data as the form shows it: money in euros, the way a person typed it."""
    isee = dict(data.get("isee") or {})
    if isinstance(isee.get("value_cents"), int):  # a half-filled draft keeps the text typed
        isee["value_cents"] = f"{isee['value_cents'] / 100:.2f}".replace(".", ",")
    return {**data, "isee": isee}


def _render_draft_form(found: SadRequest, values: dict[str, Any], errors: dict[str, list[str]] | None = None,
                       status: int = 200, submitting: bool = False):  # type: ignore[no-untyped-def]
    form = build_form(_config().schema(), values, errors)
    return render_template("intake/sad_form.html", form=form, resumed=found, submitting=submitting,
                           action=url_for(".edit_draft", code=found.tracking_code)), status


@bp.route("/intake/sad/<code>/modifica", methods=["GET", "POST"])
def edit_draft(code: str):  # type: ignore[no-untyped-def]
    """Resume a draft: the form again, filled with what was saved."""
    session = db_session()
    found = sad.get_live(session, code, utcnow())
    if found.status != sad.DRAFT:
        raise Conflict("La richiesta è già stata presentata e non può essere modificata.")
    schema = _config().schema()
    if request.method == "GET":
        return _render_draft_form(found, _form_values(found.data))
    data = parse_form(schema, request.form)
    try:
        sad.update_draft(session, tracking_code=code, data=data, now=utcnow(), config=_config(),
                         complete=not _half_filled())
    except InvalidInput as exc:
        session.rollback()
        return _render_draft_form(found, data, exc.errors, 422)
    session.commit()
    return redirect(url_for(".tracking", code=found.tracking_code), 303)


@bp.post("/intake/sad/<code>/allegati")
def upload(code: str):  # type: ignore[no-untyped-def]
    session = db_session()
    file = request.files.get("file")
    try:
        sad.add_attachment(session, tracking_code=code, kind=request.form.get("kind"),
                           filename=(file.filename or "") if file else "",
                           stream=file.stream if file and file.filename else None,
                           now=utcnow(), config=_config())
    except DomainError as exc:
        session.rollback()
        if exc.status == 404:
            raise
        return _render_request(sad.get_live(session, code, utcnow()), exc.status, upload_error=exc)
    session.commit()
    return redirect(url_for(".tracking", code=code) + "#allegati", 303)


@bp.post("/intake/sad/<code>/presenta")
def submit(code: str):  # type: ignore[no-untyped-def]
    session = db_session()
    try:
        sad.submit(session, tracking_code=code, now=utcnow(), config=_config())
    except InvalidInput as exc:
        # A draft saved half-filled: the form again, with what to complete, before anything is sent.
        session.rollback()
        found = sad.get_live(session, code, utcnow())
        return _render_draft_form(found, _form_values(found.data), exc.errors, 422, submitting=True)
    session.commit()
    return redirect(url_for(".tracking", code=code), 303)


@bp.post("/intake/sad/<code>/documenti-inviati")
def documents_sent(code: str):  # type: ignore[no-untyped-def]
    session = db_session()
    try:
        sad.documents_sent(session, tracking_code=code, now=utcnow(), config=_config())
    except InvalidInput as exc:
        session.rollback()
        return _render_request(sad.get_by_code(session, code), 422, upload_error=exc)
    session.commit()
    return redirect(url_for(".tracking", code=code), 303)


# The comune's social workers


@bp.get("/intake/servizi-sociali/sad")
@require_roles(SOCIAL_WORKER)
def queue():  # type: ignore[no-untyped-def]
    identity = current_identity()
    assert identity is not None
    comune = identity.comune or ""
    return render_template("intake/sad_queue.html", cases=sad.case_queue(db_session(), comune),
                           comune_name=_config().comune_name(comune), labels=sad.CASE_LABELS)


def _render_case(found: SadRequest, status: int = 200, errors: dict[str, list[str]] | None = None,
                 plan_data: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    config = _config()
    plan_values = plan_data if plan_data is not None else (found.care_plan or {})
    schema = config.schema()
    return render_template(
        "intake/sad_case.html", case=found, code=group_tracking_code(found.tracking_code),
        comune_name=config.comune_name(found.comune), labels=sad.CASE_LABELS,
        case_label=sad.case_label(found), package_state=package_state, voucher_labels=sad.VOUCHER_LABELS,
        sections=document_sections(schema, schema.load(found.data)),
        plan_form=build_form(CarePlanSchema(providers=config.providers), plan_values,
                             errors if plan_data is not None else None),
        errors=errors or {}, is_open=found.case_status in sad.OPEN_CASES,
        registration=sad.registration_label(found), kinds=dict(ATTACHMENT_KINDS)), status


@bp.get("/intake/servizi-sociali/sad/<request_id>")
@require_roles(SOCIAL_WORKER)
def case(request_id: str):  # type: ignore[no-untyped-def]
    return _render_case(sad.get_case(db_session(), request_id, current_identity(), decide=True))


@bp.get("/intake/servizi-sociali/sad/<request_id>/allegati/<sha256>")
@require_roles(SOCIAL_WORKER)
def attachment(request_id: str, sha256: str):  # type: ignore[no-untyped-def]
    found = sad.get_case(db_session(), request_id, current_identity(), decide=True)
    match = next((a for a in found.attachments if a.sha256 == sha256), None)
    if match is None:
        abort(404)
    return send_file(sad.attachment_path(_config(), match), mimetype=match.media_type,
                     download_name=match.name, as_attachment=True)


@bp.post("/intake/servizi-sociali/sad/<request_id>/<any(nota, piano, approva, respingi, documenti):action>")
@require_roles(SOCIAL_WORKER)
def decide(request_id: str, action: str):  # type: ignore[no-untyped-def]
    session = db_session()
    identity = current_identity()
    assert identity is not None
    found = sad.get_case(session, request_id, identity, decide=True)
    plan_data = None
    try:
        if action == "piano":
            plan_data = parse_form(CarePlanSchema(providers=_config().providers), request.form)
        sad.decide(session, found, identity, DECISIONS[action],
                   request.form if plan_data is None else plan_data, utcnow(), _config())
    except DomainError as exc:
        session.rollback()
        errors = exc.errors or {"_schema": [exc.detail]}
        return _render_case(sad.get_case(session, request_id, identity, decide=True), exc.status, errors,
                            plan_data)
    session.commit()
    return redirect(url_for(".case", request_id=request_id), 303)
