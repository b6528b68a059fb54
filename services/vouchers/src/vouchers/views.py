"""Pages of vouchers (``/vouchers/...``): budgets per comune, sub-ambito and fund, the ledger, CSV exports.

ambito_admin sees every comune; a comune_operator only their own.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from typing import Any

from ambito_common import uploads
from ambito_common.db import db_session, utcnow
from ambito_common.errors import Conflict, InvalidInput
from ambito_common.identity import AMBITO_ADMIN, require_roles
from flask import Blueprint, Response, current_app, redirect, render_template, request

from . import reimbursements, services, xlsx
from .api import check_comune, invoice_rules, read_invoices, send_invoice
from .models import Fund, Period
from .pages import (
    STAFF,
    comune_choices,
    comune_filter,
    comune_names,
    euro_text,
    form_key,
    form_once,
    identity_actor,
    parse_euro,
    selection,
)

bp = Blueprint("vouchers_pages", __name__)

MOVEMENT_LABELS = {
    services.RECEIPT: "Somma ricevuta", services.ALLOCATION: "Assegnazione",
    services.REALLOCATION: "Riassegnazione", services.CARRY_OVER: "Riporto", services.RESERVE: "Prenotazione",
    services.POST: "Spesa", services.VOID: "Annullamento", services.EXPIRE: "Scadenza",
    services.REVERSAL: "Storno", services.REIMBURSEMENT: "Rimborso",
}
ACCOUNT_LABELS = {"income": "Entrate", "pool": "Da assegnare", "available": "Disponibile",
                  "reserved": "Prenotato", "spent": "Speso"}
REQUEST_LABELS = {"filed": "Presentata", "approved": "Approvata", "partially_approved": "Approvata in parte",
                  "rejected": "Respinta", "paid": "Pagata"}
CSV_HEADER: list[str | int] = ["comune", "sub_ambito", "assegnato", "prenotato", "speso", "disponibile",
                               "in_attesa", "importo_in_attesa"]
LEDGER_HEADER: list[str | int] = ["movimento", "data_utc", "tipo", "autore", "causale", "comune", "conto",
                                  "importo"]


def _visible_rows(fund: Fund, period: Period) -> list[dict[str, Any]]:
    rows = services.budget_rows(db_session(), fund_code=fund.code, period_code=period.code,
                                comuni=current_app.extensions["ambito"]["comuni"])
    comune = comune_filter()
    return rows if comune is None else [row for row in rows if row["comune"] == comune]


def _total(rows: list[dict[str, Any]], label: str) -> dict[str, Any]:
    keys = ("allocated", "reserved", "spent", "available", "waiting", "waiting_amount")
    return {"label": label, **{key: sum(row[key] for row in rows) for key in keys}}


@bp.get("/vouchers/")
@bp.get("/vouchers/budget")
@require_roles(*STAFF)
def budget():  # type: ignore[no-untyped-def]
    """Allocated, reserved, spent, available and waiting per comune, with subtotals per sub-ambito."""
    funds, fund, period = selection()
    rows = _visible_rows(fund, period)
    ambito = current_app.extensions["ambito"]
    names = comune_names()
    groups = []
    for sub in ambito.get("sub_ambiti", []):
        members = [row for row in rows if row["sub_ambito"] == sub["code"]]
        if members:
            groups.append({"name": sub["name"], "rows": members, "total": _total(members, sub["name"])})
    return render_template("vouchers/budget.html", funds=funds, fund=fund, period=period, groups=groups,
                           names=names, total=_total(rows, fund.name), show_totals=len(rows) > 1)


def _budget_table(fund: Fund, period: Period) -> list[list[str | int]]:
    return [CSV_HEADER, *([row["comune"], row["sub_ambito"], row["allocated"], row["reserved"], row["spent"],
                           row["available"], row["waiting"], row["waiting_amount"]]
                          for row in _visible_rows(fund, period))]


def _ledger_table(period: Period) -> list[list[str | int]]:
    rows: list[list[str | int]] = [LEDGER_HEADER]
    for m in services.movements(db_session(), period_id=period.id, comune=comune_filter()):
        rows += [[m["id"], m["created_at"].isoformat(), m["kind"], m["actor"], m["memo"], e["comune"],
                  e["account"], e["amount"]] for e in m["entries"]]
    return rows


def _download(rows: list[list[str | int]], stem: str, fmt: str) -> Response:
    if fmt == "xlsx":
        body: bytes | str = xlsx.workbook(stem, rows)
        mimetype = xlsx.MIMETYPE
    else:
        out = io.StringIO()
        csv.writer(out, delimiter=";").writerows(rows)
        body, mimetype = "\ufeff" + out.getvalue(), "text/csv"
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})


@bp.get("/vouchers/budget.<any(csv, xlsx):fmt>")
@require_roles(*STAFF)
def budget_export(fmt: str):  # type: ignore[no-untyped-def]
    """The budget table as CSV or XLSX (cents), for spreadsheets."""
    _, fund, period = selection()
    return _download(_budget_table(fund, period), f"budget-{fund.code}-{period.code}", fmt)


@bp.get("/vouchers/registro.<any(csv, xlsx):fmt>")
@require_roles(*STAFF)
def ledger_export(fmt: str):  # type: ignore[no-untyped-def]
    """Every ledger entry of the period, one row each, as CSV or XLSX."""
    _, fund, period = selection()
    return _download(_ledger_table(period), f"registro-{fund.code}-{period.code}", fmt)


@bp.get("/vouchers/registro")
@require_roles(*STAFF)
def ledger():  # type: ignore[no-untyped-def]
    """Every movement of the period and who made it (a comune operator: their comune's only)."""
    funds, fund, period = selection()
    movements = services.movements(db_session(), period_id=period.id, comune=comune_filter())
    return render_template("vouchers/ledger.html", funds=funds, fund=fund, period=period, movements=movements,
                           labels=MOVEMENT_LABELS, accounts=ACCOUNT_LABELS)


@bp.get("/vouchers/rimborsi")
@require_roles(*STAFF)
def reimbursement_requests():  # type: ignore[no-untyped-def]
    """The period's reimbursement requests and, for Ambito staff, the pro-rata plan explained per comune."""
    funds, fund, period = selection()
    comune = comune_filter()
    requests = reimbursements.list_requests(db_session(), period_id=period.id, comune=comune)
    plan = (reimbursements.pro_rata_plan(db_session(), fund_code=fund.code, period_code=period.code)
            if comune is None else None)
    names = comune_names()
    return render_template("vouchers/reimbursements.html", funds=funds, fund=fund, period=period,
                           requests=requests, plan=plan, names=names, labels=REQUEST_LABELS)


# --- reimbursement forms: file, decide, pro-rata, pay (helper vouchers-documents) ------------------
# The pages call the same service functions as the API. Each rendered form carries its own key
# (hidden field), used like the API's Idempotency-Key: a double submit writes once.

DEFAULT_ROWS, MAX_ROWS = 3, 30
LINE_LABELS = {"beneficiary_ref": "Beneficiario (riferimento della cartella)",
               "service": "Struttura o servizio", "service_period": "Periodo del servizio",
               "amount_paid": "Importo pagato (euro)", "amount_asked": "Importo chiesto (euro)"}
FORM_ERRORS = (InvalidInput, Conflict, uploads.TooLarge, uploads.UnsupportedType)


def _line_rows(count: int) -> list[dict[str, dict[str, Any]]]:
    """The line-item rows of the filing form, with what was typed and each field's errors."""
    return [{name: {"name": f"lines.{i}.{name}", "label": label, "widget": "text", "required": i == 0,
                    "value": request.form.get(f"lines.{i}.{name}", ""), "errors": []}
             for name, label in LINE_LABELS.items()} for i in range(count)]


def _render_new(funds: list[Fund], rows: list[dict[str, dict[str, Any]]], errors: dict[str, list[str]],
                status: int = 200):  # type: ignore[no-untyped-def]
    identity, _ = identity_actor()
    comuni = comune_choices(identity)
    fields_by_name = {field["name"]: field for row in rows for field in row.values()}
    summary = []
    for name, messages in errors.items():
        field = fields_by_name.get(name)
        if field is not None:
            field["errors"] = messages
        target = name if field is not None or name in ("fund_period", "comune", "invoices") else ""
        summary += [(target, field["label"] if field else "", message) for message in messages]
    periods = [(f"{f.code}/{p.code}", f"{f.name}, periodo {p.code}") for f in funds for p in f.periods]
    return render_template(
        "vouchers/reimbursement_new.html", rows=rows, errors=errors, summary=summary, periods=periods,
        comuni=comuni, form_key=form_key(),
        chosen={"fund_period": request.form.get("fund_period") or request.args.get("fund_period", ""),
                "comune": request.form.get("comune") or identity.comune or ""}), status


def _typed_lines(rows: list[dict[str, dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[int],
                                                                   dict[str, list[str]]]:
    """The rows a person filled in (blank rows skipped), amounts in cents, and what is wrong."""
    lines, numbers, errors = [], [], {}
    for i, row in enumerate(rows):
        if not any(field["value"].strip() for field in row.values()):
            continue
        line: dict[str, Any] = {}
        for name, field in row.items():
            value = field["value"].strip()
            if not value:
                errors[field["name"]] = ["Obbligatorio."]
            elif name.startswith("amount_"):
                line[name] = parse_euro(value)
                if not line[name]:
                    errors[field["name"]] = ["Importo in euro maggiore di zero, ad esempio 1.234,56."]
            else:
                line[name] = value
        lines.append(line)
        numbers.append(i)
    if not lines:
        errors["lines.0.beneficiary_ref"] = ["Indicare almeno una riga."]
    return lines, numbers, errors


@bp.route("/vouchers/rimborsi/nuova", methods=["GET", "POST"])
@require_roles(*STAFF)
def reimbursement_new():  # type: ignore[no-untyped-def]
    """A comune operator files a request: line items and invoices (no JavaScript needed)."""
    funds = [f for f in services.list_funds(db_session()) if f.periods]
    count = min(MAX_ROWS, max(DEFAULT_ROWS, request.form.get("rows", DEFAULT_ROWS, type=int)))
    if request.method == "GET" or "more" in request.form:
        return _render_new(funds, _line_rows(count + (3 if "more" in request.form else 0)), {})
    identity, actor = identity_actor()
    rows = _line_rows(count)
    lines, numbers, errors = _typed_lines(rows)
    fund_code, _, period_code = request.form.get("fund_period", "").partition("/")
    if not period_code:
        errors["fund_period"] = ["Scegliere fondo e periodo."]
    comune = request.form.get("comune", "")
    if not comune:
        errors["comune"] = ["Scegliere il comune."]
    if errors:
        return _render_new(funds, rows, errors, 422)
    check_comune(identity, comune)
    rules = invoice_rules()
    try:
        invoices = read_invoices(request.files.getlist("invoices"), rules)
        sha = [hashlib.sha256(invoice.data).hexdigest() for invoice in invoices]
        filed = form_once(lambda: {"id": reimbursements.file_request(
            db_session(), fund_code=fund_code, period_code=period_code, comune=comune, lines=lines,
            actor=actor, now=utcnow(), invoices=invoices, rules=rules).id}, sha)
    except FORM_ERRORS as exc:
        found = {_row_field(name, numbers): messages for name, messages in exc.errors.items()}
        return _render_new(funds, rows, {"": [exc.detail], **found}, exc.status)
    return redirect(f"/vouchers/rimborsi/{filed['id']}", code=303)


def _row_field(name: str, numbers: list[int]) -> str:
    """``lines.<k>.<field>`` of the k-th filled row as the name of its row on the form."""
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == "lines" and parts[1].isdigit() and int(parts[1]) < len(numbers):
        return f"lines.{numbers[int(parts[1])]}.{parts[2]}"
    return name


def _render_detail(request_id: int, status: int = 200, errors: dict[str, list[str]] | None = None):  # type: ignore[no-untyped-def]
    session = db_session()
    filed = reimbursements.get_request(session, request_id)
    identity, _ = identity_actor()
    check_comune(identity, filed.comune)
    names = comune_names()
    summary = [(name, "", message) for name, messages in (errors or {}).items() for message in messages]
    return render_template(
        "vouchers/reimbursement_detail.html", r=filed, names=names, labels=REQUEST_LABELS,
        is_admin=AMBITO_ADMIN in identity.roles, errors=errors or {},
        summary=summary, form=request.form, euro_text=euro_text, form_key=uuid.uuid4().hex), status


@bp.get("/vouchers/rimborsi/<int:request_id>")
@require_roles(*STAFF)
def reimbursement_detail(request_id: int):  # type: ignore[no-untyped-def]
    """A request: lines, invoices, sealed documents (state, protocol), and for Ambito staff the decision."""
    return _render_detail(request_id)


@bp.get("/vouchers/rimborsi/<int:request_id>/fatture/<int:invoice_id>")
@require_roles(*STAFF)
def reimbursement_invoice(request_id: int, invoice_id: int):  # type: ignore[no-untyped-def]
    return send_invoice(request_id, invoice_id)


@bp.post("/vouchers/rimborsi/<int:request_id>/decisione")
@require_roles(AMBITO_ADMIN)
def reimbursement_decide(request_id: int):  # type: ignore[no-untyped-def]
    """Approve wholly, approve the amounts typed per line, or reject with a reason."""
    _, actor = identity_actor()
    outcome, reason = request.form.get("outcome", ""), request.form.get("reason", "")
    filed = reimbursements.get_request(db_session(), request_id)
    approved: dict[int, int] | None = None
    if outcome == "partial":
        approved, errors = {}, {}
        for line in filed.lines:
            amount = parse_euro(request.form.get(f"approved.{line.id}", "").strip() or "x")
            if amount is None:
                errors[f"approved.{line.id}"] = [
                    f"Riga {line.beneficiary_ref}: importo in euro, ad esempio 80,00."]
            else:
                approved[line.id] = amount
        if errors:
            return _render_detail(request_id, 422, errors)
    elif outcome not in ("approve", "reject"):
        return _render_detail(request_id, 422, {"outcome": ["Scegliere l'esito della decisione."]})
    try:
        form_once(lambda: {"id": (
            reimbursements.reject(db_session(), request_id=request_id, reason=reason, actor=actor,
                                  now=utcnow())
            if outcome == "reject" else
            reimbursements.approve(db_session(), request_id=request_id, approved=approved, actor=actor,
                                   now=utcnow(), reason=reason)).id})
    except FORM_ERRORS as exc:
        return _render_detail(request_id, exc.status, {"": [exc.detail], **exc.errors})
    return redirect(f"/vouchers/rimborsi/{request_id}", code=303)


@bp.post("/vouchers/rimborsi/<int:request_id>/pagamento")
@require_roles(AMBITO_ADMIN)
def reimbursement_pay(request_id: int):  # type: ignore[no-untyped-def]
    """Record the payment (the mandate's references) of an approved request."""
    _, actor = identity_actor()
    try:
        form_once(lambda: {"id": reimbursements.record_payment(
            db_session(), request_id=request_id, payment_ref=request.form.get("payment_ref", ""), actor=actor,
            now=utcnow()).id})
    except FORM_ERRORS as exc:
        return _render_detail(request_id, exc.status, {"": [exc.detail], **exc.errors})
    return redirect(f"/vouchers/rimborsi/{request_id}", code=303)


@bp.route("/vouchers/rimborsi/riparto", methods=["GET", "POST"])
@require_roles(AMBITO_ADMIN)
def reimbursement_pro_rata():  # type: ignore[no-untyped-def]
    """The pro-rata plan computed and explained per comune; applied only as shown (else shown again)."""
    _, actor = identity_actor()
    funds, fund, period = selection(request.values)
    plan = reimbursements.pro_rata_plan(db_session(), fund_code=fund.code, period_code=period.code)
    names = comune_names()
    error = ""
    if request.method == "POST":
        shown = (request.form.get("available"), request.form.get("asked"))

        def apply() -> dict[str, Any]:
            current = reimbursements.pro_rata_plan(db_session(), fund_code=fund.code, period_code=period.code)
            if shown != (str(current["available"]), str(current["asked"])):
                raise Conflict("Le richieste o le somme disponibili sono cambiate: controlli il nuovo "
                               "riparto e confermi.")
            return {"decided": [r.id for r in reimbursements.apply_pro_rata(
                db_session(), fund_code=fund.code, period_code=period.code, actor=actor, now=utcnow())]}

        try:
            form_once(apply)
            return redirect(f"/vouchers/rimborsi?fund={fund.code}&period={period.code}", code=303)
        except FORM_ERRORS as exc:
            error = exc.detail
    page = render_template("vouchers/reimbursement_pro_rata.html", funds=funds, fund=fund, period=period,
                           plan=plan, names=names, error=error, form_key=uuid.uuid4().hex)
    return page, (409 if error else 200)
