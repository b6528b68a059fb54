"""Form pages for what comune operators and Ambito staff do with vouchers and money.

Entering a voucher, recording monthly hours (one by one or from a CSV file, with the
report of every bad row), closing a voucher; for ambito_admin, allocating a period by
hand or by formula, moving money between comuni and carrying it into another period.
The pages call the same service functions as the API and follow its rules: a
comune_operator acts only on their comune, and every write runs once per form
(``pages.form_once``): the form carries a hidden key minted when it is shown, used like
the API's ``Idempotency-Key``, so a double click or a resubmitted page gets the first
result instead of a second voucher or movement.
Money is typed in euro (``1.234,56``) and hours like ``2,5``; both are stored as
integers (cents, hundredths of an hour).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from ambito_common import uploads
from ambito_common.copayment import load_rules
from ambito_common.db import db_session, utcnow
from ambito_common.errors import Conflict, DomainError, InvalidInput, NotFound
from ambito_common.forms import FormSchema, build_form, load, parse_form
from ambito_common.identity import AMBITO_ADMIN, require_roles
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.wrappers import Response

from . import documents, issuing, services
from .api import check_comune
from .models import PROFILES, Fund, Period, Voucher
from .pages import (
    STAFF,
    comune_choices,
    comune_filter,
    comune_names,
    form_key,
    form_once,
    identity_actor,
    parse_euro,
    selection,
)

bp = Blueprint("vouchers_operations", __name__)
MAX_CSV_BYTES = 1024 * 1024  # a month of hours of every voucher of the Ambito is far smaller
STATUS_LABELS = {"waiting": "In lista d'attesa", "active": "Attivo", "closed": "Chiuso",
                 "cancelled": "Annullato"}
OUTCOMES = {
    "buono": "Buono registrato.", "ore": "Ore registrate.", "chiuso": "Buono chiuso: il residuo è tornato "
    "disponibile.", "importate": "Ore importate.", "formula": "Assegnazione per formula registrata.",
    "mano": "Assegnazione registrata.", "riassegnazione": "Riassegnazione registrata.",
    "riporto": "Riporto registrato.",
}


# --- fields typed the Italian way ---------------------------------------------------------------

class Euro(fields.Field):
    """An amount in euro as Italians type it (``1.234,56``, ``1234``), loaded as integer cents."""

    def __init__(self, *, signed: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.signed = signed

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = str(value).strip()
        negative = self.signed and text.startswith("-")
        cents = parse_euro(text.removeprefix("-") if negative else text)
        if cents is None:
            raise ValidationError("Importo non valido: ad esempio 1.234,56.")
        return -cents if negative else cents


class Hours(fields.Field):
    """Hours as ``2,5`` (or ``2.5``), loaded as hundredths of an hour."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        text = str(value).strip()
        if not issuing.HOURS.match(text):
            raise ValidationError("Ore non valide: ad esempio 2,5.")
        return issuing.parse_hours(text)


class VoucherForm(FormSchema):
    """The fields of ``VoucherIn`` as an operator types them."""

    comune = fields.String(required=True, metadata={"label": "Comune", "section": "Beneficiario"})
    beneficiary_name = fields.String(required=True, validate=validate.Length(max=200),
                                     metadata={"label": "Nome e cognome", "section": "Beneficiario"})
    beneficiary_ref = fields.String(required=True, validate=validate.Length(max=120), metadata={
        "label": "Riferimento della cartella sociale", "section": "Beneficiario"})
    isee = Euro(load_default=None, metadata={
        "label": "ISEE (euro)", "section": "Beneficiario",
        "help": "Facoltativo: senza un ISEE valido si applica la compartecipazione massima del comune "
                "e il buono è in fondo alla lista d'attesa."})
    provider = fields.String(required=True, validate=validate.Length(max=200),
                             metadata={"label": "Ente erogatore accreditato", "section": "Servizio"})
    profile = fields.String(required=True, validate=validate.OneOf(PROFILES), metadata={
        "label": "Profilo", "section": "Servizio", "widget": "radio",
        "choices": [("ASA", "ASA - ausiliario socio-assistenziale"),
                    ("OSS", "OSS - operatore socio-sanitario")]})
    hours_per_week = Hours(required=True, metadata={"label": "Ore settimanali", "section": "Servizio",
                                                    "help": "Ad esempio 2,5."})
    weeks = fields.Integer(required=True, validate=validate.Range(min=1, max=104),
                           metadata={"label": "Settimane", "section": "Servizio", "widget": "text"})
    contact_email = fields.Email(load_default=None, validate=validate.Length(max=254), metadata={
        "label": "E-mail del beneficiario o della famiglia", "section": "Beneficiario", "widget": "email",
        "help": "Facoltativa: riceve una copia del buono sigillato."})


class HoursForm(FormSchema):
    month = fields.String(required=True, validate=validate.Regexp(
        r"^\d{4}-(0[1-9]|1[0-2])$", error="Mese nel formato AAAA-MM, ad esempio 2026-11."),
        metadata={"label": "Mese (AAAA-MM)", "section": "Ore erogate nel mese"})
    hours = Hours(required=True, metadata={"label": "Ore erogate", "section": "Ore erogate nel mese",
                                           "help": "Ad esempio 12,5."})


class FormulaForm(FormSchema):
    total = Euro(required=True, metadata={"label": "Totale da ripartire (euro)", "section": "Per formula"})
    base_per_comune = Euro(load_default=0, metadata={
        "label": "Quota fissa per comune (euro)", "section": "Per formula",
        "help": "Facoltativa; il resto è ripartito in proporzione alla popolazione, al centesimo."})


class ReallocationForm(FormSchema):
    from_comune = fields.String(required=True, metadata={"label": "Dal comune", "section": "Riassegnazione"})
    to_comune = fields.String(required=True, metadata={"label": "Al comune", "section": "Riassegnazione"})
    amount = Euro(required=True, metadata={"label": "Importo (euro)", "section": "Riassegnazione"})


class CarryOverForm(FormSchema):
    comune = fields.String(required=True, metadata={"label": "Comune", "section": "Riporto"})
    to_period = fields.String(required=True, metadata={"label": "Nel periodo", "section": "Riporto"})
    amount = Euro(load_default=None, data_key="carry_amount", metadata={  # one id per page
        "label": "Importo (euro)", "section": "Riporto",
        "help": "Facoltativo: senza importo si riporta tutto il disponibile del comune."})


def _with_choices(schema: Schema, **choices: list[tuple[str, str]]) -> Schema:
    """The schema with select options (and a check against them) for the named fields."""
    for name, options in choices.items():
        field_obj = schema.fields[name]
        field_obj.metadata = {**field_obj.metadata, "choices": options, "widget": "select"}
        field_obj.validators = [*field_obj.validators, validate.OneOf(
            [value for value, _ in options], error="Scegliere una delle voci dell'elenco.")]
    return schema


def _hand_form(comuni: list[dict[str, str]]) -> Schema:
    """One signed amount per comune: a positive one gives, a negative one takes back."""
    return FormSchema.from_dict({c["code"]: Euro(signed=True, load_default=0, metadata={
        "label": c["name"], "section": "A mano (euro, negativo per riprendere)"}) for c in comuni})()


# --- writes, once per form ----------------------------------------------------------------------

def _failure(exc: DomainError) -> dict[str, list[str]]:
    """A refused write as form errors: per field when the rule said which, else for the whole form."""
    return {name: list(messages) for name, messages in (exc.errors or {}).items()} or {"": [exc.detail]}


def _back(endpoint: str, outcome: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, esito=outcome, **values), 303)


# --- vouchers -----------------------------------------------------------------------------------

def _own_voucher(voucher_id: int) -> Voucher:
    voucher = issuing.get_voucher(db_session(), voucher_id)
    check_comune(identity_actor()[0], voucher.budget.comune)
    return voucher


@bp.get("/vouchers/buoni")
@require_roles(*STAFF)
def vouchers():  # type: ignore[no-untyped-def]
    """The period's vouchers (a comune operator: their comune's), waiting ones with their rank."""
    funds, fund, period = selection()
    rows = issuing.list_vouchers(db_session(), period_id=period.id, comune=comune_filter())
    return render_template("vouchers/vouchers.html", funds=funds, fund=fund, period=period, rows=rows,
                           labels=STATUS_LABELS, names=comune_names(), identity=identity_actor()[0],
                           outcome=OUTCOMES.get(request.args.get("esito")))


@bp.route("/vouchers/buoni/nuovo", methods=["GET", "POST"])
@require_roles(*STAFF)
def new_voucher():  # type: ignore[no-untyped-def]
    """Enter a voucher: valued by the fund's tariff and the comune's co-payment, reserved or queued."""
    funds, fund, period = selection()
    identity = identity_actor()[0]
    schema = _with_choices(VoucherForm(), comune=comune_choices(identity))
    page = {"funds": funds, "fund": fund, "period": period, "key": form_key()}
    if request.method == "GET":
        values = {"comune": identity.comune} if identity.comune else {}
        return render_template("vouchers/voucher_form.html", form=build_form(schema, values), **page)
    data = parse_form(schema, request.form)
    try:
        clean = load(schema, data)
        check_comune(identity, clean["comune"])

        def issue() -> dict[str, Any]:
            now = utcnow()
            rules = load_rules(current_app.extensions["runtime"].settings.platform.data_dir)
            voucher_request = issuing.operator_request({**clean, "fund": fund.code, "period": period.code},
                                                       rules, now.date())
            issued = issuing.issue_voucher(db_session(), voucher_request, actor=identity_actor()[1], now=now)
            return {"voucher": issued.id}

        result = form_once(issue)
    except (InvalidInput, Conflict, NotFound) as exc:
        return render_template("vouchers/voucher_form.html", form=build_form(schema, data, _failure(exc)),
                               **page), exc.status
    return _back(".voucher", "buono", voucher_id=result["voucher"])


def _voucher_page(voucher: Voucher, *, failed: str = "", hours_form: Any = None,
                  close_errors: list[str] | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    """The voucher's page; after a refused form, that form keeps its values, errors and key."""
    session = db_session()
    keys = {name: form_key() if name == failed else uuid.uuid4().hex for name in ("ore", "chiusura")}
    return render_template(
        "vouchers/voucher.html", voucher=voucher, labels=STATUS_LABELS, names=comune_names(), keys=keys,
        months=issuing.voucher_months(session, voucher.id),
        position=services.waiting_position(session, voucher),
        document=documents.voucher_document(session, voucher.id),
        hours_form=hours_form or build_form(HoursForm()), close_errors=close_errors or [],
        outcome=OUTCOMES.get(request.args.get("esito"))), status


@bp.get("/vouchers/buoni/<int:voucher_id>")
@require_roles(*STAFF)
def voucher(voucher_id: int):  # type: ignore[no-untyped-def]
    """A voucher: value, co-payment, reservation, months recorded; forms to record hours and close it."""
    return _voucher_page(_own_voucher(voucher_id))


@bp.post("/vouchers/buoni/<int:voucher_id>/ore")
@require_roles(*STAFF)
def record_hours(voucher_id: int):  # type: ignore[no-untyped-def]
    """A month's delivered hours, posted against the voucher's reservation."""
    found = _own_voucher(voucher_id)
    schema = HoursForm()
    data = parse_form(schema, request.form)
    try:
        clean = load(schema, data)
        form_once(lambda: {"month": issuing.record_hours(db_session(), voucher_id=voucher_id, now=utcnow(),
                                                          actor=identity_actor()[1], **clean).id})
    except (InvalidInput, Conflict) as exc:
        return _voucher_page(found, failed="ore", hours_form=build_form(schema, data, _failure(exc)),
                             status=exc.status)
    return _back(".voucher", "ore", voucher_id=voucher_id)


@bp.post("/vouchers/buoni/<int:voucher_id>/chiusura")
@require_roles(*STAFF)
def close_voucher(voucher_id: int):  # type: ignore[no-untyped-def]
    """Close a voucher: the unspent rest returns to the budget and the waiting list moves up."""
    found = _own_voucher(voucher_id)
    try:
        form_once(lambda: {"voucher": issuing.close_voucher(db_session(), voucher_id=voucher_id,
                                                             actor=identity_actor()[1], now=utcnow()).id})
    except Conflict as exc:
        return _voucher_page(found, failed="chiusura", close_errors=[exc.detail], status=exc.status)
    return _back(".voucher", "chiuso", voucher_id=voucher_id)


@bp.route("/vouchers/ore/importa", methods=["GET", "POST"])
@require_roles(*STAFF)
def import_hours():  # type: ignore[no-untyped-def]
    """Monthly hours from a CSV file (``buono;mese;ore``): all rows, or none and a report per row."""
    page: dict[str, Any] = {"key": form_key(), "report": None, "error": None,
                            "outcome": OUTCOMES.get(request.args.get("esito")),
                            "imported": request.args.get("righe", type=int)}
    if request.method == "GET":
        return render_template("vouchers/hours_import.html", **page)
    upload = request.files.get("file")
    try:
        content = uploads.read_limited(upload.stream, MAX_CSV_BYTES) if upload is not None else b""
        text = content.decode("utf-8")
    except uploads.TooLarge as exc:
        page["error"] = exc.detail
    except UnicodeDecodeError:
        page["error"] = "Il file deve essere un CSV in UTF-8."
    else:
        page["error"] = None if content else "Scegliere un file CSV."
    if page["error"]:
        return render_template("vouchers/hours_import.html", **page), 422
    try:
        result = form_once(lambda: {"imported": len(issuing.import_hours_csv(
            db_session(), data=text, actor=identity_actor()[1], now=utcnow(), comune=comune_filter()))},
            files=[hashlib.sha256(content).hexdigest()])
    except InvalidInput as exc:  # every bad row, in the file's order
        page.update(error=exc.detail, report=list((exc.errors or {}).items()))
        return render_template("vouchers/hours_import.html", **page), 422
    return _back(".import_hours", "importate", righe=result["imported"])


# --- allocations (Ambito staff) -----------------------------------------------------------------

def _allocation_forms(fund: Fund, period: Period) -> dict[str, Schema]:
    comuni = current_app.extensions["ambito"]["comuni"]
    choices = list(comune_names().items())
    later = [(p.code, f"{p.code} ({p.start_date:%d/%m/%Y} - {p.end_date:%d/%m/%Y})")
             for p in fund.periods if p.start_date > period.start_date]
    return {"formula": FormulaForm(), "mano": _hand_form(comuni),
            "riassegnazione": _with_choices(ReallocationForm(), from_comune=choices, to_comune=choices),
            "riporto": _with_choices(CarryOverForm(), comune=choices, to_period=later)}


def _allocation_page(fund: Fund, period: Period, funds: list[Fund], failed: str = "",
                     data: dict[str, Any] | None = None, errors: dict[str, list[str]] | None = None,
                     status: int = 200):  # type: ignore[no-untyped-def]
    schemas = _allocation_forms(fund, period)
    forms = {name: build_form(schema, data if name == failed else None, errors if name == failed else None)
             for name, schema in schemas.items()}
    keys = {name: form_key() if name == failed else uuid.uuid4().hex for name in schemas}
    rows = services.budget_rows(db_session(), fund_code=fund.code, period_code=period.code,
                                comuni=current_app.extensions["ambito"]["comuni"])
    return render_template("vouchers/allocations.html", funds=funds, fund=fund, period=period, forms=forms,
                           keys=keys, rows=rows, names=comune_names(), failed=failed,
                           has_later=bool(schemas["riporto"].fields["to_period"].metadata["choices"]),
                           outcome=OUTCOMES.get(request.args.get("esito"))), status


@bp.get("/vouchers/assegnazioni")
@require_roles(AMBITO_ADMIN)
def allocations():  # type: ignore[no-untyped-def]
    """The period's money per comune and the forms that move it (Ambito staff only)."""
    funds, fund, period = selection()
    return _allocation_page(fund, period, funds)


@bp.post("/vouchers/assegnazioni/<any(formula, mano, riassegnazione, riporto):kind>")
@require_roles(AMBITO_ADMIN)
def allocate(kind: str):  # type: ignore[no-untyped-def]
    """Allocate by formula or by hand, move money between comuni, or carry it into a later period."""
    funds, fund, period = selection()
    schema = _allocation_forms(fund, period)[kind]
    data = parse_form(schema, request.form)
    comuni = [c["code"] for c in current_app.extensions["ambito"]["comuni"]]
    actor = identity_actor()[1]
    try:
        clean = load(schema, data)

        def move() -> dict[str, Any]:
            session = db_session()
            if kind == "formula":
                journal = services.allocate_by_formula(session, period_id=period.id, comuni=comuni,
                                                       actor=actor, **clean)
            elif kind == "mano":
                if not any(clean.values()):
                    raise InvalidInput("Indicare almeno un importo.")
                journal = services.allocate(session, period_id=period.id, amounts=clean, actor=actor)
            elif kind == "riassegnazione":
                journal = services.reallocate(session, period_id=period.id, actor=actor, **clean)
            else:
                target = services.get_period(session, fund.code, clean["to_period"])
                journal = services.carry_over(session, from_period_id=period.id, to_period_id=target.id,
                                              comune=clean["comune"], amount=clean["amount"], actor=actor)
            return {"journal": journal.id}

        form_once(move)
    except (InvalidInput, Conflict, NotFound) as exc:
        return _allocation_page(fund, period, funds, kind, data, _failure(exc), exc.status)
    return _back(".allocations", kind, fund=fund.code, period=period.code)
