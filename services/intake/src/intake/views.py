"""The pages of intake (``/intake/...``): calls, the application form, receipts and tracking.

They work without JavaScript: the form posts back to itself and, when
something is wrong, comes back (HTTP 422) with every value kept, a summary of
the errors at the top and each message next to its field.
"""

from __future__ import annotations

from ambito_common.db import db_session, utcnow
from ambito_common.errors import Conflict, InvalidInput
from ambito_common.forms import Form, build_form, load, parse_form
from flask import Blueprint, current_app, redirect, render_template, request, url_for

from . import services
from .codes import group_tracking_code, normalise_tracking_code
from .models import Call
from .schemas import CATEGORIES, LEGAL_FORMS, LEGAL_FORMS_BY_CATEGORY, TrackingLookupSchema

bp = Blueprint("intake_pages", __name__)


def _eligibility() -> list[tuple[str, list[str]]]:
    """§4 of the call, summarised from the same lists the form validates against."""
    return [(label, [LEGAL_FORMS[code] for code in LEGAL_FORMS_BY_CATEGORY[category]])
            for category, label in CATEGORIES]


@bp.get("/intake/avvisi")
def calls():  # type: ignore[no-untyped-def]
    now = utcnow()
    items = [(call, services.call_status(call, now) == services.OPEN)
             for call in services.list_calls(db_session(), now)]
    return render_template("intake/calls.html", items=items)


@bp.get("/intake/avvisi/<slug>")
def call(slug: str):  # type: ignore[no-untyped-def]
    found = services.get_call(db_session(), slug)
    return render_template("intake/call.html", call=found, eligibility=_eligibility(),
                           is_open=services.call_status(found, utcnow()) == services.OPEN)


def _render_form(call: Call, form: Form, status: int = 200, duplicate: Conflict | None = None):  # type: ignore[no-untyped-def]
    existing = duplicate.extra.get("tracking_code") if duplicate else None
    return render_template("intake/application_form.html", call=call, form=form,
                           duplicate=duplicate,
                           existing_code=group_tracking_code(existing) if existing else None,
                           existing_url=url_for(".receipt", code=existing) if existing else None), status


@bp.route("/intake/avvisi/<slug>/domanda", methods=["GET", "POST"])
def application_form(slug: str):  # type: ignore[no-untyped-def]
    """The form of a call. An organisation that already applied is told so, with its code (409)."""
    session = db_session()
    found = services.get_call(session, slug)
    now = utcnow()
    if services.call_status(found, now) == services.CLOSED:
        raise Conflict(services.closed_detail(found))
    schema = services.application_schema(found)
    if request.method == "GET":
        return _render_form(found, build_form(schema))
    data = parse_form(schema, request.form)
    try:
        application = services.submit_application(session, call_slug=slug, data=data, now=now,
                                                  ambito=current_app.extensions["ambito"])
    except InvalidInput as exc:
        session.rollback()
        return _render_form(found, build_form(schema, data, exc.errors), 422)
    except Conflict as exc:
        session.rollback()
        if "tracking_code" not in exc.extra:
            raise
        return _render_form(found, build_form(schema, data), 409, duplicate=exc)
    session.commit()
    return redirect(url_for(".receipt", code=application.tracking_code), 303)


STEPS = (
    (services.RECEIVED, "Domanda ricevuta e registrata"),
    (services.PACKAGED, "Documenti pronti e sigillati"),
    (services.DELIVERED, "Consegnata all'ufficio protocollo dell'ente capofila"),
    (services.REGISTERED, "Protocollata"),
)


@bp.get("/intake/domande/<code>")
def receipt(code: str):  # type: ignore[no-untyped-def]
    application = services.get_application(db_session(), code)
    return render_template(
        "intake/receipt.html", application=application, call=application.call,
        code=group_tracking_code(application.tracking_code),
        registration=services.registration_label(application),
        status_label=services.STATUS_LABELS[application.status], steps=services.package_steps(
            application.status, STEPS, {e.status: e for e in application.events}),
        delivered=application.status in (services.DELIVERED, services.REGISTERED, services.REJECTED))


@bp.get("/intake/domande")
def lookup():  # type: ignore[no-untyped-def]
    """Find an application by its code (a GET form: bookmarkable, no CSRF token needed)."""
    schema = TrackingLookupSchema()
    if "code" not in request.args:
        return render_template("intake/lookup.html", form=build_form(schema))
    data = parse_form(schema, request.args)
    try:
        clean = load(schema, data)
    except InvalidInput as exc:
        return render_template("intake/lookup.html", form=build_form(schema, data, exc.errors)), 422
    return redirect(url_for(".receipt", code=normalise_tracking_code(clean["code"])), 303)
