"""The JSON API of vouchers (``/api/vouchers/...``) and its OpenAPI description.

ambito_admin may act on every comune; a comune_operator only on their own
(403 otherwise). Every write needs an ``Idempotency-Key`` header.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from ambito_common import uploads
from ambito_common.copayment import load_rules
from ambito_common.db import db_session, utcnow
from ambito_common.errors import PROBLEM_JSON, DomainError, Forbidden, InvalidInput, NotFound
from ambito_common.identity import AMBITO_ADMIN, COMUNE_OPERATOR, Identity, current_identity, require_roles
from ambito_common.web import new_spec
from ambito_common.web import problem_response as _problem
from apispec import APISpec
from flask import Blueprint, Response, current_app, jsonify, request, send_file
from werkzeug.datastructures import FileStorage

from . import documents, idempotency, issuing, pages, reimbursements, services
from .models import ReimbursementInvoice, ReimbursementRequest, Reservation, Voucher
from .schemas import (
    AllocationIn,
    BudgetOut,
    CarryOverIn,
    DecisionIn,
    FundOut,
    HoursIn,
    HoursOut,
    MovementOut,
    PaymentIn,
    PopulationIn,
    PopulationOut,
    PostIn,
    ProblemOut,
    ReimbursementIn,
    ReimbursementOut,
    ReservationIn,
    ReservationOut,
    ReversalIn,
    VoucherIn,
    VoucherOut,
)

bp = Blueprint("vouchers_api", __name__)
STAFF = (AMBITO_ADMIN, COMUNE_OPERATOR)


def _identity() -> Identity:
    identity = current_identity()
    assert identity is not None  # require_roles ran first
    return identity


def _actor(identity: Identity) -> str:
    return identity.username or identity.subject


def check_comune(identity: Identity, comune: str) -> None:
    """ambito_admin acts on every comune; anyone else only on the comune in their token."""
    if AMBITO_ADMIN in identity.roles:
        return
    if identity.comune != comune:
        raise Forbidden("Il suo profilo consente di operare solo sul proprio comune.")


def reservation_json(reservation: Reservation) -> dict[str, Any]:
    period = reservation.budget.period
    return ReservationOut().dump({
        "id": reservation.id, "status": reservation.status, "fund": period.fund.code,
        "period": period.code, "comune": reservation.budget.comune, "amount": reservation.amount,
        "posted": reservation.posted_amount, "reference": reservation.reference})


def _idempotent_write(action: Callable[[], tuple[int, dict[str, Any]]],  # type: ignore[no-untyped-def]
                      body: Any = None):
    """Run a write once per Idempotency-Key, in a retried transaction; answer with its result.

    A refusal by the rules (``DomainError``) is remembered under the key as well, so a
    replay gets the same problem+json; a system failure (5xx) is not.

    ``body`` is what identifies the request when its raw body cannot (a multipart upload).
    """
    key = idempotency.check_key(request.headers.get(idempotency.HEADER))
    if body is None:
        body = request.get_json(silent=True) if request.is_json else request.get_data(as_text=True)
    fingerprint = idempotency.request_hash(request.method, request.path, body)
    session, scope = db_session(), _identity().subject
    try:
        status, body = services.run_transaction(session, lambda: idempotency.once(
            session, scope=scope, key=key, fingerprint=fingerprint, action=action))
    except idempotency.KeyReused:
        raise
    except DomainError as refusal:  # rolled back: remembered on its own, so a replay is refused alike
        status, body = services.run_transaction(session, lambda error=refusal: idempotency.remember_refusal(
            session, scope=scope, key=key, fingerprint=fingerprint, error=error))
    response = jsonify(body)
    response.status_code = status
    if status >= 400:
        response.mimetype = PROBLEM_JSON
    return response


@bp.get("/api/vouchers/funds")
@require_roles(*STAFF)
def list_funds():  # type: ignore[no-untyped-def]
    return jsonify(FundOut(many=True).dump([
        {"code": fund.code, "name": fund.name,
         "periods": [{"code": p.code, "start": p.start_date, "end": p.end_date} for p in fund.periods]}
        for fund in services.list_funds(db_session())]))


@bp.get("/api/vouchers/budgets")
@require_roles(*STAFF)
def list_budgets():  # type: ignore[no-untyped-def]
    fund, period_code = request.args.get("fund", ""), request.args.get("period", "")
    if not fund or not period_code:
        missing = [name for name, value in (("fund", fund), ("period", period_code)) if not value]
        raise InvalidInput("Indicare fondo e periodo.", errors={name: ["Obbligatorio."] for name in missing})
    identity = _identity()
    rows = services.budget_rows(db_session(), fund_code=fund, period_code=period_code,
                                comuni=current_app.extensions["ambito"]["comuni"])
    scope = pages.comune_scope(identity)
    if scope is not None:
        rows = [row for row in rows if row["comune"] == scope]
    return jsonify(BudgetOut(many=True).dump(rows))


@bp.post("/api/vouchers/reservations")
@require_roles(*STAFF)
def create_reservation():  # type: ignore[no-untyped-def]
    """Reserve money on a comune's budget; 409 naming the available amount when it is short."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    data = ReservationIn().load(request.get_json(silent=True) or {})
    identity = _identity()
    check_comune(identity, data["comune"])
    ttl = current_app.extensions["runtime"].settings.reservation_ttl

    def action() -> tuple[int, dict[str, Any]]:
        reservation = services.reserve(
            db_session(), fund_code=data["fund"], period_code=data["period"], comune=data["comune"],
            amount=data["amount"], reference=data["reference"], actor=_actor(identity),
            expires_at=utcnow() + ttl)
        return 201, reservation_json(reservation)

    return _idempotent_write(action)


def _close_reservation(reservation_id: int, close: Callable[[], Reservation]):  # type: ignore[no-untyped-def]
    identity = _identity()

    def action() -> tuple[int, dict[str, Any]]:
        check_comune(identity, services.get_reservation(db_session(), reservation_id).budget.comune)
        return 200, reservation_json(close())

    return _idempotent_write(action)


@bp.post("/api/vouchers/reservations/<int:reservation_id>/post")
@require_roles(*STAFF)
def post_reservation(reservation_id: int):  # type: ignore[no-untyped-def]
    """Spend all or part of a reservation; the rest is released."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    amount = PostIn().load(request.get_json(silent=True) or {})["amount"]
    return _close_reservation(reservation_id, lambda: services.post(
        db_session(), reservation_id=reservation_id, amount=amount, actor=_actor(_identity()),
        now=utcnow()))


@bp.post("/api/vouchers/reservations/<int:reservation_id>/void")
@require_roles(*STAFF)
def void_reservation(reservation_id: int):  # type: ignore[no-untyped-def]
    """Release a whole reservation."""
    return _close_reservation(reservation_id, lambda: services.void(
        db_session(), reservation_id=reservation_id, actor=_actor(_identity()), now=utcnow()))


@bp.post("/api/vouchers/allocations")
@require_roles(AMBITO_ADMIN)
def allocate():  # type: ignore[no-untyped-def]
    """Allocate a period's money to comuni, by hand or by population share (Ambito staff only)."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    data = AllocationIn().load(request.get_json(silent=True) or {})
    actor = _actor(_identity())
    comuni = [c["code"] for c in current_app.extensions["ambito"]["comuni"]]

    def action() -> tuple[int, dict[str, Any]]:
        session = db_session()
        period = services.get_period(session, data["fund"], data["period"])
        if "amounts" in data:
            unknown = sorted(set(data["amounts"]) - set(comuni))
            if unknown:
                raise InvalidInput("Comuni sconosciuti: " + ", ".join(unknown) + ".")
            journal = services.allocate(session, period_id=period.id, amounts=data["amounts"], actor=actor)
        else:
            journal = services.allocate_by_formula(session, period_id=period.id, total=data["total"],
                                                   base_per_comune=data["base_per_comune"], comuni=comuni,
                                                   actor=actor)
        return 201, {"journal": journal.id,
                     "amounts": {e.account.comune: e.amount for e in journal.entries if e.account.comune}}

    return _idempotent_write(action)


@bp.post("/api/vouchers/carry-overs")
@require_roles(AMBITO_ADMIN)
def carry_over():  # type: ignore[no-untyped-def]
    """Carry a comune's unspent money into a later period of the same fund (Ambito staff only)."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    data = CarryOverIn().load(request.get_json(silent=True) or {})
    actor = _actor(_identity())

    def action() -> tuple[int, dict[str, Any]]:
        session = db_session()
        source = services.get_period(session, data["fund"], data["from_period"])
        target = services.get_period(session, data["fund"], data["to_period"])
        journal = services.carry_over(session, from_period_id=source.id, to_period_id=target.id,
                                      comune=data["comune"], amount=data["amount"], actor=actor)
        return 201, {"journal": journal.id, "amount": journal.entries[-1].amount}

    return _idempotent_write(action)


@bp.post("/api/vouchers/ledger/<int:journal_id>/reversal")
@require_roles(AMBITO_ADMIN)
def reverse_movement(journal_id: int):  # type: ignore[no-untyped-def]
    """Correct a receipt, allocation or re-allocation with a reversing movement (Ambito staff only)."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    reason = ReversalIn().load(request.get_json(silent=True) or {})["reason"]
    actor = _actor(_identity())

    def action() -> tuple[int, dict[str, Any]]:
        journal = services.reverse(db_session(), journal_id=journal_id, actor=actor, reason=reason)
        return 201, {"journal": journal.id, "reversal_of": journal_id}

    return _idempotent_write(action)


@bp.get("/api/vouchers/populations")
@require_roles(*STAFF)
def list_populations():  # type: ignore[no-untyped-def]
    return jsonify(PopulationOut(many=True).dump(services.list_populations(db_session())))


@bp.put("/api/vouchers/populations/<comune>")
@require_roles(AMBITO_ADMIN)
def set_population(comune: str):  # type: ignore[no-untyped-def]
    """Edit a comune's population, the weight of the next allocations by formula (Ambito staff only)."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    data = PopulationIn().load(request.get_json(silent=True) or {})
    if comune not in {c["code"] for c in current_app.extensions["ambito"]["comuni"]}:
        raise NotFound(f"Comune sconosciuto: {comune}.")
    actor = _actor(_identity())

    def action() -> tuple[int, dict[str, Any]]:
        row = services.set_population(db_session(), comune=comune, population=data["population"],
                                      as_of=data["as_of"], actor=actor)
        return 200, PopulationOut().dump(row)

    return _idempotent_write(action)


@bp.get("/api/vouchers/ledger")
@require_roles(*STAFF)
def ledger():  # type: ignore[no-untyped-def]
    """Every movement of a fund's period, with who made it; a comune operator sees their comune's."""
    identity = _identity()
    session = db_session()
    period = services.get_period(session, request.args.get("fund", ""), request.args.get("period", ""))
    rows = services.movements(session, period_id=period.id, comune=pages.comune_scope(identity))
    return jsonify(MovementOut(many=True).dump(rows))


def voucher_json(voucher: Voucher) -> dict[str, Any]:
    return VoucherOut().dump({
        "id": voucher.id, "status": voucher.status, "comune": voucher.budget.comune,
        "beneficiary_ref": voucher.beneficiary_ref, "provider": voucher.provider, "profile": voucher.profile,
        "hours_per_week": voucher.hours_per_week, "weeks": voucher.weeks, "tariff": voucher.tariff,
        "copayment_hourly": voucher.copayment_hourly, "value": voucher.value,
        "reservation_id": voucher.reservation_id,
        "document": _voucher_document(voucher)})  # vouchers-documents: the sealed voucher document


@bp.post("/api/vouchers/vouchers")
@require_roles(*STAFF)
def create_voucher():  # type: ignore[no-untyped-def]
    """Issue a voucher: reserved on the comune's budget (``active``) or on the waiting list (``waiting``)."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    data = VoucherIn().load(request.get_json(silent=True) or {})
    identity = _identity()
    check_comune(identity, data["comune"])

    def action() -> tuple[int, dict[str, Any]]:
        now = utcnow()
        rules = load_rules(current_app.extensions["runtime"].settings.platform.data_dir)
        voucher = issuing.issue_voucher(db_session(), issuing.operator_request(data, rules, now.date()),
                                        actor=_actor(identity), now=now)
        return 201, voucher_json(voucher)

    return _idempotent_write(action)


def _own_voucher(identity: Identity, voucher_id: int) -> Voucher:
    voucher = issuing.get_voucher(db_session(), voucher_id)
    check_comune(identity, voucher.budget.comune)
    return voucher


@bp.post("/api/vouchers/vouchers/<int:voucher_id>/hours")
@require_roles(*STAFF)
def record_hours(voucher_id: int):  # type: ignore[no-untyped-def]
    """Post a month's delivered hours against the voucher's reservation."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    data = HoursIn().load(request.get_json(silent=True) or {})
    identity = _identity()

    def action() -> tuple[int, dict[str, Any]]:
        _own_voucher(identity, voucher_id)
        row = issuing.record_hours(db_session(), voucher_id=voucher_id, month=data["month"],
                                   hours=data["hours"], actor=_actor(identity), now=utcnow())
        return 201, HoursOut().dump(row)

    return _idempotent_write(action)


@bp.post("/api/vouchers/vouchers/<int:voucher_id>/close")
@require_roles(*STAFF)
def close_voucher(voucher_id: int):  # type: ignore[no-untyped-def]
    """Close a voucher: the unspent rest returns to the budget and the waiting list moves up."""
    identity = _identity()

    def action() -> tuple[int, dict[str, Any]]:
        _own_voucher(identity, voucher_id)
        voucher = issuing.close_voucher(db_session(), voucher_id=voucher_id, actor=_actor(identity),
                                        now=utcnow())
        return 200, voucher_json(voucher)

    return _idempotent_write(action)


@bp.post("/api/vouchers/hours/import")
@require_roles(*STAFF)
def import_hours():  # type: ignore[no-untyped-def]
    """Import monthly hours from CSV (``buono;mese;ore``): all rows, or none and a report per row."""
    identity = _identity()
    comune = pages.comune_scope(identity)
    text = request.get_data(as_text=True)

    def action() -> tuple[int, dict[str, Any]]:
        rows = issuing.import_hours_csv(db_session(), data=text, actor=_actor(identity), now=utcnow(),
                                        comune=comune)
        return 201, {"imported": len(rows), "rows": HoursOut(many=True).dump(rows)}

    return _idempotent_write(action)


def reimbursement_json(filed: ReimbursementRequest) -> dict[str, Any]:
    return ReimbursementOut().dump({
        "id": filed.id, "comune": filed.comune, "status": filed.status, "asked": filed.asked_total,
        "approved": filed.approved_total, "reason": filed.decision_reason, "payment_ref": filed.payment_ref,
        "lines": [{"id": line.id, "beneficiary_ref": line.beneficiary_ref, "service": line.service,
                   "service_period": line.service_period, "amount_paid": line.amount_paid,
                   "amount_asked": line.amount_asked, "amount_approved": line.amount_approved}
                  for line in filed.lines],
        "invoices": [invoice_json(invoice) for invoice in filed.invoices],
        "documents": [documents.status_json(d) for d in filed.documents]})


# --- invoices of reimbursement requests, sealed documents (helper vouchers-documents) ---------------

def _voucher_document(voucher: Voucher) -> dict[str, Any] | None:
    document = documents.voucher_document(db_session(), voucher.id)
    return documents.status_json(document) if document is not None else None


def invoice_json(invoice: ReimbursementInvoice) -> dict[str, Any]:
    return {"id": invoice.id, "name": invoice.name, "media_type": invoice.media_type,
            "sha256": invoice.sha256, "size": invoice.size}


def invoice_rules() -> reimbursements.InvoiceRules:
    return reimbursements.InvoiceRules.from_settings(current_app.extensions["runtime"].settings)


def read_invoices(files: list[FileStorage],
                  rules: reimbursements.InvoiceRules) -> list[reimbursements.Invoice]:
    """The uploaded files, each read up to the limit of a whole request (the service checks the rest)."""
    return [reimbursements.Invoice(f.filename or "fattura",
                                   uploads.read_limited(f.stream, rules.max_total_bytes))
            for f in files if f.filename]


def send_invoice(request_id: int, invoice_id: int) -> Response:
    """An invoice's file, for Ambito staff and the operators of the comune that filed it (403 otherwise)."""
    session = db_session()
    check_comune(_identity(), reimbursements.get_request(session, request_id).comune)
    invoice = reimbursements.get_invoice(session, request_id, invoice_id)
    return send_file(invoice_rules().directory / invoice.sha256, mimetype=invoice.media_type,
                     as_attachment=True, download_name=invoice.name)


@bp.get("/api/vouchers/reimbursements/<int:request_id>/invoices/<int:invoice_id>")
@require_roles(*STAFF)
def download_invoice(request_id: int, invoice_id: int):  # type: ignore[no-untyped-def]
    return send_invoice(request_id, invoice_id)


@bp.get("/api/vouchers/reimbursements/<int:request_id>")
@require_roles(*STAFF)
def get_reimbursement(request_id: int):  # type: ignore[no-untyped-def]
    """A request with its lines, invoices (name, type, SHA-256, size) and sealed documents."""
    filed = reimbursements.get_request(db_session(), request_id)
    check_comune(_identity(), filed.comune)
    return jsonify(reimbursement_json(filed))


@bp.post("/api/vouchers/reimbursements")
@require_roles(*STAFF)
def file_reimbursement():  # type: ignore[no-untyped-def]
    """A comune files a reimbursement request (rimborso a consuntivo) with its line items.

    JSON, or multipart with the JSON in field ``request`` and the invoices in ``invoices``.
    """
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    invoices: list[reimbursements.Invoice] = []
    body = None
    if request.mimetype == "multipart/form-data":
        try:
            raw = json.loads(request.form.get("request") or "{}")
        except ValueError as exc:
            raise InvalidInput("Il campo request deve contenere JSON.",
                               errors={"request": ["JSON non valido."]}) from exc
        data = ReimbursementIn().load(raw if isinstance(raw, dict) else {})
        invoices = read_invoices(request.files.getlist("invoices"), invoice_rules())
        body = {"request": raw, "invoices": [hashlib.sha256(i.data).hexdigest() for i in invoices]}
    else:
        data = ReimbursementIn().load(request.get_json(silent=True) or {})
    identity = _identity()
    check_comune(identity, data["comune"])

    def action() -> tuple[int, dict[str, Any]]:
        filed = reimbursements.file_request(db_session(), fund_code=data["fund"], period_code=data["period"],
                                            comune=data["comune"], lines=data["lines"],
                                            actor=_actor(identity), now=utcnow(), invoices=invoices,
                                            rules=invoice_rules())
        return 201, reimbursement_json(filed)

    return _idempotent_write(action, body)


@bp.post("/api/vouchers/reimbursements/<int:request_id>/decision")
@require_roles(AMBITO_ADMIN)
def decide_reimbursement(request_id: int):  # type: ignore[no-untyped-def]
    """Approve (wholly or per line) or reject with a reason (Ambito staff only)."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    data = DecisionIn().load(request.get_json(silent=True) or {})
    actor = _actor(_identity())

    def action() -> tuple[int, dict[str, Any]]:
        if data["outcome"] == "reject":
            decided = reimbursements.reject(db_session(), request_id=request_id, reason=data["reason"],
                                            actor=actor, now=utcnow())
        else:
            decided = reimbursements.approve(db_session(), request_id=request_id, approved=data["approved"],
                                             actor=actor, now=utcnow(), reason=data["reason"])
        return 200, reimbursement_json(decided)

    return _idempotent_write(action)


@bp.get("/api/vouchers/reimbursements/pro-rata")
@require_roles(AMBITO_ADMIN)
def pro_rata_plan():  # type: ignore[no-untyped-def]
    """What each open request would get if the fund's remaining money were shared pro rata."""
    return jsonify(reimbursements.pro_rata_plan(db_session(), fund_code=request.args.get("fund", ""),
                                                period_code=request.args.get("period", "")))


@bp.post("/api/vouchers/reimbursements/pro-rata")
@require_roles(AMBITO_ADMIN)
def apply_pro_rata():  # type: ignore[no-untyped-def]
    """Decide every open request of a fund and period with its pro-rata share."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    data = request.get_json(silent=True) or {}
    actor = _actor(_identity())

    def action() -> tuple[int, dict[str, Any]]:
        decided = reimbursements.apply_pro_rata(db_session(), fund_code=str(data.get("fund", "")),
                                                period_code=str(data.get("period", "")), actor=actor,
                                                now=utcnow())
        return 200, {"decided": [reimbursement_json(r) for r in decided]}

    return _idempotent_write(action)


@bp.post("/api/vouchers/reimbursements/<int:request_id>/payment")
@require_roles(AMBITO_ADMIN)
def pay_reimbursement(request_id: int):  # type: ignore[no-untyped-def]
    """Record the payment of an approved request."""
    idempotency.check_key(request.headers.get(idempotency.HEADER))
    data = PaymentIn().load(request.get_json(silent=True) or {})
    actor = _actor(_identity())

    def action() -> tuple[int, dict[str, Any]]:
        paid = reimbursements.record_payment(db_session(), request_id=request_id,
                                             payment_ref=data["payment_ref"], actor=actor, now=utcnow())
        return 200, reimbursement_json(paid)

    return _idempotent_write(action)


AUTH_PROBLEMS = {"401": _problem("Token assente o non valido"),
                 "403": _problem("Ruolo non ammesso, o comune diverso dal proprio")}
IDEMPOTENCY_KEY = {"name": "Idempotency-Key", "in": "header", "required": True,
                   "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                   "description": ("Obbligatoria su ogni scrittura. Stessa chiave e stessa richiesta: "
                                   "la prima risposta di nuovo, anche quando era un rifiuto per le "
                                   "regole (4xx, ad es. 409 budget insufficiente, 422), con lo stesso "
                                   "corpo problem+json; gli errori di sistema (5xx) non sono "
                                   "memorizzati. Stessa chiave e richiesta diversa: 409.")}
WRITE_PROBLEMS = {**AUTH_PROBLEMS,
                  "400": _problem("Intestazione Idempotency-Key mancante"),
                  "404": _problem("Fondo, periodo, budget o prenotazione inesistente"),
                  "422": _problem("Dati non validi: `errors` per campo")}


def build_spec() -> APISpec:
    spec = new_spec("vouchers", "Ambito - Buoni e budget")
    for name, schema in (("Fund", FundOut), ("Budget", BudgetOut), ("ReservationIn", ReservationIn),
                         ("PostIn", PostIn), ("Reservation", ReservationOut), ("Problem", ProblemOut),
                         ("VoucherIn", VoucherIn), ("Voucher", VoucherOut), ("HoursIn", HoursIn),
                         ("Hours", HoursOut), ("AllocationIn", AllocationIn), ("Movement", MovementOut),
                         ("ReimbursementIn", ReimbursementIn), ("Reimbursement", ReimbursementOut),
                         ("DecisionIn", DecisionIn), ("PaymentIn", PaymentIn), ("PopulationIn", PopulationIn),
                         ("Population", PopulationOut), ("CarryOverIn", CarryOverIn),
                         ("ReversalIn", ReversalIn)):
        spec.components.schema(name, schema=schema)
    security = [{"bearer": []}]
    reservation = {"application/json": {"schema": "Reservation"}}
    spec.path(path="/api/vouchers/funds", operations={"get": {
        "summary": "Fondi e loro periodi", "tags": ["budget"], "security": security,
        "responses": {"200": {"description": "Fondi", "content": {"application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Fund"}}}}},
            **AUTH_PROBLEMS}}})
    spec.path(path="/api/vouchers/budgets", operations={"get": {
        "summary": "Budget per comune di un fondo e periodo (centesimi)", "tags": ["budget"],
        "security": security,
        "description": "Un operatore comunale vede solo il proprio comune.",
        "parameters": [{"name": "fund", "in": "query", "required": True, "schema": {"type": "string"}},
                       {"name": "period", "in": "query", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "Budget", "content": {"application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Budget"}}}}},
            "404": _problem("Fondo o periodo inesistente"), "422": _problem("Fondo o periodo mancante"),
            **AUTH_PROBLEMS}}})
    spec.path(path="/api/vouchers/reservations", operations={"post": {
        "summary": "Prenota un importo sul budget di un comune", "tags": ["prenotazioni"],
        "security": security, "parameters": [IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {"application/json": {"schema": "ReservationIn"}}},
        "responses": {"201": {"description": "Prenotato", "content": reservation},
                      "409": _problem("Budget insufficiente (`available` in centesimi e `available_eur`), "
                                      "o chiave riusata per una richiesta diversa"),
                      **WRITE_PROBLEMS}}})
    reservation_id = {"name": "reservation_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    spec.path(path="/api/vouchers/reservations/{reservation_id}/post", parameters=[reservation_id],
              operations={"post": {
                  "summary": "Contabilizza (tutto o in parte) una prenotazione; il resto torna disponibile",
                  "tags": ["prenotazioni"], "security": security, "parameters": [IDEMPOTENCY_KEY],
                  "requestBody": {"required": True, "content": {"application/json": {"schema": "PostIn"}}},
                  "responses": {"200": {"description": "Contabilizzata", "content": reservation},
                                "409": _problem("Prenotazione già chiusa, importo oltre il prenotato, "
                                                "o chiave riusata"),
                                **WRITE_PROBLEMS}}})
    spec.path(path="/api/vouchers/reservations/{reservation_id}/void", parameters=[reservation_id],
              operations={"post": {
                  "summary": "Annulla una prenotazione", "tags": ["prenotazioni"], "security": security,
                  "parameters": [IDEMPOTENCY_KEY],
                  "responses": {"200": {"description": "Annullata", "content": reservation},
                                "409": _problem("Prenotazione già chiusa, o chiave riusata"),
                                **WRITE_PROBLEMS}}})
    spec.path(path="/api/vouchers/allocations", operations={"post": {
        "summary": "Assegna le somme di un periodo ai comuni (a mano o per popolazione)", "tags": ["budget"],
        "security": security, "parameters": [IDEMPOTENCY_KEY],
        "description": ("Solo personale dell'Ambito. Per formula: quota fissa per comune più il resto per "
                        "quota di popolazione, arrotondato col metodo dei resti maggiori (somma esatta)."),
        "requestBody": {"required": True, "content": {"application/json": {"schema": "AllocationIn"}}},
        "responses": {"201": {"description": "Movimento registrato"},
                      "409": _problem("Somme non assegnate insufficienti, o budget di un comune "
                                      "già impegnato"),
                      **WRITE_PROBLEMS}}})
    spec.path(path="/api/vouchers/ledger", operations={"get": {
        "summary": "Movimenti del registro di un fondo e periodo, con chi li ha fatti", "tags": ["budget"],
        "security": security,
        "parameters": [{"name": "fund", "in": "query", "required": True, "schema": {"type": "string"}},
                       {"name": "period", "in": "query", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "Movimenti, dal più recente", "content": {"application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Movement"}}}}},
            "404": _problem("Fondo o periodo inesistente"), **AUTH_PROBLEMS}}})
    spec.path(path="/api/vouchers/carry-overs", operations={"post": {
        "summary": "Riporta il non speso di un comune in un periodo successivo", "tags": ["budget"],
        "security": security, "parameters": [IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {"application/json": {"schema": "CarryOverIn"}}},
        "responses": {"201": {"description": "Riporto registrato"},
                      "409": _problem("Disponibile insufficiente (`available`)"), **WRITE_PROBLEMS}}})
    spec.path(path="/api/vouchers/ledger/{journal_id}/reversal", parameters=[{
        "name": "journal_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        operations={"post": {
            "summary": "Storna un movimento (entrata, assegnazione, riassegnazione)", "tags": ["budget"],
            "security": security, "parameters": [IDEMPOTENCY_KEY],
            "requestBody": {"required": True, "content": {"application/json": {"schema": "ReversalIn"}}},
            "responses": {"201": {"description": "Storno registrato"},
                          "409": _problem("Movimento non stornabile, già stornato, o somme già impegnate"),
                          **WRITE_PROBLEMS}}})
    spec.path(path="/api/vouchers/populations", operations={"get": {
        "summary": "Popolazione dei comuni (pesi del riparto)", "tags": ["budget"], "security": security,
        "responses": {"200": {"description": "Popolazioni", "content": {"application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Population"}}}}},
            **AUTH_PROBLEMS}}})
    spec.path(path="/api/vouchers/populations/{comune}", parameters=[{
        "name": "comune", "in": "path", "required": True, "schema": {"type": "string"}}],
        operations={"put": {
            "summary": "Modifica la popolazione di un comune", "tags": ["budget"], "security": security,
            "parameters": [IDEMPOTENCY_KEY],
            "requestBody": {"required": True, "content": {"application/json": {"schema": "PopulationIn"}}},
            "responses": {"200": {"description": "Aggiornata",
                                  "content": {"application/json": {"schema": "Population"}}},
                          **WRITE_PROBLEMS}}})
    reimbursement = {"application/json": {"schema": "Reimbursement"}}
    request_id = {"name": "request_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    fund_period = [{"name": "fund", "in": "query", "required": True, "schema": {"type": "string"}},
                   {"name": "period", "in": "query", "required": True, "schema": {"type": "string"}}]
    spec.path(path="/api/vouchers/reimbursements", operations={"post": {
        "summary": "Richiesta di rimborso a consuntivo di un comune", "tags": ["rimborsi"],
        "security": security, "parameters": [IDEMPOTENCY_KEY],
        "description": ("JSON, oppure multipart/form-data con il JSON nel campo `request` e le fatture "
                        "(PDF, JPEG o PNG, riconosciuti dal contenuto) nel campo `invoices`. La richiesta "
                        "diventa un documento sigillato per il protocollo dell'ente capofila."),
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": "ReimbursementIn"},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "request": {"type": "string", "description": "ReimbursementIn in JSON"},
                "invoices": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}},
        "responses": {"201": {"description": "Richiesta registrata", "content": reimbursement},
                      "413": _problem("Fattura o fatture oltre la dimensione massima: nulla è registrato"),
                      "415": _problem("Fattura che non è PDF, JPEG o PNG: nulla è registrato"),
                      **WRITE_PROBLEMS}}})
    # (vouchers-documents) a request with its invoices and sealed documents; an invoice's file
    spec.path(path="/api/vouchers/reimbursements/{request_id}", parameters=[request_id], operations={"get": {
        "summary": "Una richiesta di rimborso: righe, fatture (SHA-256, dimensione), documenti sigillati",
        "tags": ["rimborsi"], "security": security,
        "responses": {"200": {"description": "Richiesta", "content": reimbursement},
                      "404": _problem("Richiesta inesistente"), **AUTH_PROBLEMS}}})
    spec.path(path="/api/vouchers/reimbursements/{request_id}/invoices/{invoice_id}", parameters=[
        request_id, {"name": "invoice_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        operations={"get": {
            "summary": "Scarica una fattura (staff dell'Ambito e operatori del comune richiedente)",
            "tags": ["rimborsi"], "security": security,
            "responses": {"200": {"description": "Il file", "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("application/pdf", "image/jpeg", "image/png")}},
                "404": _problem("Fattura inesistente"), **AUTH_PROBLEMS}}})
    spec.path(path="/api/vouchers/reimbursements/{request_id}/decision", parameters=[request_id],
              operations={"post": {
                  "summary": "Approva (in tutto o in parte) o rigetta con motivo", "tags": ["rimborsi"],
                  "security": security, "parameters": [IDEMPOTENCY_KEY],
                  "requestBody": {"required": True,
                                  "content": {"application/json": {"schema": "DecisionIn"}}},
                  "responses": {"200": {"description": "Decisa", "content": reimbursement},
                                "409": _problem("Già decisa, o fondo insufficiente (`available`)"),
                                **WRITE_PROBLEMS}}})
    spec.path(path="/api/vouchers/reimbursements/pro-rata", operations={
        "get": {"summary": "Piano di riparto proporzionale delle richieste aperte", "tags": ["rimborsi"],
                "security": security, "parameters": fund_period,
                "responses": {"200": {"description": "Disponibile, chiesto, quota per richiesta"},
                              **AUTH_PROBLEMS}},
        "post": {"summary": "Applica il riparto proporzionale alle richieste aperte", "tags": ["rimborsi"],
                 "security": security, "parameters": [IDEMPOTENCY_KEY],
                 "responses": {"200": {"description": "Richieste decise"},
                               "409": _problem("Nessuna somma da ripartire"), **WRITE_PROBLEMS}}})
    spec.path(path="/api/vouchers/reimbursements/{request_id}/payment", parameters=[request_id],
              operations={"post": {
                  "summary": "Registra il pagamento di una richiesta approvata", "tags": ["rimborsi"],
                  "security": security, "parameters": [IDEMPOTENCY_KEY],
                  "requestBody": {"required": True, "content": {"application/json": {"schema": "PaymentIn"}}},
                  "responses": {"200": {"description": "Pagata", "content": reimbursement},
                                "409": _problem("Richiesta non approvata"), **WRITE_PROBLEMS}}})
    voucher = {"application/json": {"schema": "Voucher"}}
    spec.path(path="/api/vouchers/vouchers", operations={"post": {
        "summary": "Emette un buono: prenotato sul budget del comune o in lista d'attesa", "tags": ["buoni"],
        "security": security, "parameters": [IDEMPOTENCY_KEY],
        "description": ("Valore = ore settimanali x settimane x tariffa oraria del profilo, meno la "
                        "compartecipazione della fascia ISEE (regole del fondo in vigore). Se il budget "
                        "non basta il buono attende (`waiting`), ordinato per ISEE crescente e data."),
        "requestBody": {"required": True, "content": {"application/json": {"schema": "VoucherIn"}}},
        "responses": {"201": {"description": "Buono emesso", "content": voucher},
                      "409": _problem("Chiave riusata per una richiesta diversa"), **WRITE_PROBLEMS}}})
    voucher_id = {"name": "voucher_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    spec.path(path="/api/vouchers/vouchers/{voucher_id}/hours", parameters=[voucher_id], operations={"post": {
        "summary": "Registra le ore erogate in un mese", "tags": ["buoni"], "security": security,
        "parameters": [IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {"application/json": {"schema": "HoursIn"}}},
        "responses": {"201": {"description": "Ore contabilizzate",
                              "content": {"application/json": {"schema": "Hours"}}},
                      "409": _problem("Buono non attivo, mese già registrato o importo oltre il residuo"),
                      **WRITE_PROBLEMS}}})
    spec.path(path="/api/vouchers/vouchers/{voucher_id}/close", parameters=[voucher_id], operations={"post": {
        "summary": "Chiude un buono; il residuo torna al budget", "tags": ["buoni"], "security": security,
        "parameters": [IDEMPOTENCY_KEY],
        "responses": {"200": {"description": "Buono chiuso", "content": voucher},
                      "409": _problem("Buono già chiuso"), **WRITE_PROBLEMS}}})
    spec.path(path="/api/vouchers/hours/import", operations={"post": {
        "summary": "Importa le ore mensili da CSV: tutte le righe o nessuna", "tags": ["buoni"],
        "security": security, "parameters": [IDEMPOTENCY_KEY],
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {
            "type": "string", "example": "buono;mese;ore\n12;2026-10;14,5\n"}}}},
        "responses": {"201": {"description": "Righe importate"},
                      "422": _problem("Righe non valide, in `errors` per numero di riga: nessuna importata"),
                      **WRITE_PROBLEMS}}})
    return spec
