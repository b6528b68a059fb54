"""Comuni's reimbursement requests (rimborso a consuntivo) and the Ambito's decisions.

A comune files what it paid, line by line, and what it asks back. The Ambito
approves wholly or partly, or rejects with a reason; when a fund's open requests
ask more than the period has left, it applies a pro-rata: everyone gets the same
share of what they asked, to the cent (largest remainder), and the plan says so
per comune before it is applied. Approved money moves from the period's
unallocated pool to the comune in one recorded journal; the payment is recorded
afterwards. Invoices travel with the request; the request, every decision and the
payment each become a sealed document for the protocol (``documents``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ambito_common import uploads
from ambito_common.errors import Conflict, DomainError, InvalidInput, NotFound
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import documents, services
from .models import (
    APPROVED,
    FILED,
    PAID,
    PARTIALLY_APPROVED,
    REJECTED,
    ReimbursementInvoice,
    ReimbursementLine,
    ReimbursementRequest,
)
from .settings import Settings

LINE_FIELDS = ("beneficiary_ref", "service", "service_period", "amount_paid", "amount_asked")
MAX_INVOICES = 20
INVOICES_FIELD = "invoices"


@dataclass(frozen=True)
class Invoice:
    """An uploaded invoice as received (the caller read it within the per-file limit)."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class InvoiceRules:
    """Where invoices are kept and how big they may be (the package must fit a PEC)."""

    directory: Path
    max_file_bytes: int
    max_total_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> InvoiceRules:
        return cls(settings.invoices_dir, settings.invoice_max_bytes, settings.invoices_max_bytes)


def file_request(session: Session, *, fund_code: str, period_code: str, comune: str,
                 lines: Sequence[Mapping[str, Any]], actor: str, now: dt.datetime,
                 invoices: Sequence[Invoice] = (), rules: InvoiceRules | None = None) -> ReimbursementRequest:
    """A comune's request: at least one line, each asking no more than was paid; invoices attached.

    Everything is checked before anything is written: a refused request (413, 415, 422)
    leaves no file and no row behind.
    """
    period = services.get_period(session, fund_code, period_code)
    if not lines:
        raise InvalidInput("La richiesta non ha righe.", errors={"lines": ["Almeno una riga."]})
    errors = {}
    for number, line in enumerate(lines):
        if not 0 < line["amount_asked"] <= line["amount_paid"]:
            errors[f"lines.{number}.amount_asked"] = ["Deve essere positivo e non superare l'importo pagato."]
    if errors:
        raise InvalidInput("Alcune righe non sono valide.", errors=errors)
    checked = check_invoices(invoices, rules)
    request = ReimbursementRequest(period_id=period.id, comune=comune, status=FILED, filed_by=actor,
                                   filed_at=now,
                                   lines=[ReimbursementLine(**{k: line[k] for k in LINE_FIELDS})
                                          for line in lines])
    session.add(request)
    for invoice, media_type, extension in checked:
        assert rules is not None
        _path, digest = uploads.store(rules.directory, invoice.data)
        request.invoices.append(ReimbursementInvoice(
            name=uploads.safe_name(invoice.filename, extension), media_type=media_type, sha256=digest,
            size=len(invoice.data), uploaded_by=actor, uploaded_at=now))
    session.flush()
    documents.request_filed(session, request, now)
    return request


def check_invoices(invoices: Sequence[Invoice],
                   rules: InvoiceRules | None) -> list[tuple[Invoice, str, str]]:
    """Each invoice with its media type and extension read from its content, or why it is refused."""
    if not invoices:
        return []
    if rules is None:
        raise InvalidInput("Questo canale non accetta fatture.")
    if len(invoices) > MAX_INVOICES:
        raise InvalidInput(f"Al massimo {MAX_INVOICES} fatture per richiesta.",
                           errors={INVOICES_FIELD: [f"Al massimo {MAX_INVOICES} file."]})
    checked = []
    for invoice in invoices:
        if len(invoice.data) > rules.max_file_bytes:
            message = f"«{invoice.filename}» supera {uploads.megabytes(rules.max_file_bytes)}."
            raise uploads.TooLarge(message, errors={INVOICES_FIELD: [message]})
        try:
            media_type, extension = uploads.check_content(invoice.data)
        except DomainError as exc:
            message = f"«{invoice.filename}»: {exc.detail}"
            raise type(exc)(message, errors={INVOICES_FIELD: [message]}) from exc
        checked.append((invoice, media_type, extension))
    if sum(len(invoice.data) for invoice in invoices) > rules.max_total_bytes:
        message = f"Le fatture superano in tutto {uploads.megabytes(rules.max_total_bytes)}."
        raise uploads.TooLarge(message, errors={INVOICES_FIELD: [message]})
    return checked


def get_invoice(session: Session, request_id: int, invoice_id: int) -> ReimbursementInvoice:
    invoice = session.get(ReimbursementInvoice, invoice_id)
    if invoice is None or invoice.request_id != request_id:
        raise NotFound("Fattura inesistente.")
    return invoice


def get_request(session: Session, request_id: int) -> ReimbursementRequest:
    request = session.get(ReimbursementRequest, request_id)
    if request is None:
        raise NotFound("Richiesta di rimborso inesistente.")
    return request


def approve(session: Session, *, request_id: int, approved: Mapping[int, int] | None, actor: str,
            now: dt.datetime, reason: str = "") -> ReimbursementRequest:
    """Approve every line as asked (``approved`` None) or the given amount per line id."""
    request = _open_request(session, request_id)
    amounts = {line.id: line.amount_asked for line in request.lines}
    if approved is not None:
        unknown = set(approved) - set(amounts)
        if unknown or any(not 0 <= approved[i] <= amounts[i] for i in approved):
            raise InvalidInput("Importi approvati non validi: tra zero e quanto chiesto, "
                               "per righe della richiesta.")
        amounts = {line_id: approved.get(line_id, 0) for line_id in amounts}
    if not any(amounts.values()):
        raise InvalidInput("Per non concedere nulla si rigetta la richiesta, con il motivo.")
    return _decide(session, request, amounts, actor, now, reason)


def reject(session: Session, *, request_id: int, reason: str, actor: str,
           now: dt.datetime) -> ReimbursementRequest:
    if not reason.strip():
        raise InvalidInput("Indicare il motivo del rigetto.", errors={"reason": ["Obbligatorio."]})
    request = _open_request(session, request_id)
    request.status, request.decision_reason = REJECTED, reason.strip()
    request.decided_by, request.decided_at = actor, now
    for line in request.lines:
        line.amount_approved = 0
    session.flush()
    documents.decision_taken(session, request, now)
    return request


def pro_rata_plan(session: Session, *, fund_code: str, period_code: str) -> dict[str, Any]:
    """What each open request would get if the period's remaining money were shared pro rata.

    Returns the money left, the total asked, the share (percent, for people), and per
    request the comune, asked and granted amounts; granted amounts sum exactly to
    what is left (or to what was asked, when that is less).
    """
    period = services.get_period(session, fund_code, period_code)
    requests = _open_requests(session, period.id)
    asked = {r.id: r.asked_total for r in requests}
    granted = services.pro_rata(period.unallocated, asked) if asked else {}
    total = sum(asked.values())
    return {
        "available": period.unallocated, "asked": total,
        "percent": round(100 * min(1, period.unallocated / total), 2) if total else 100.0,
        "requests": [{"id": r.id, "comune": r.comune, "asked": asked[r.id], "granted": granted[r.id]}
                     for r in requests],
    }


def apply_pro_rata(session: Session, *, fund_code: str, period_code: str, actor: str,
                   now: dt.datetime) -> list[ReimbursementRequest]:
    """Decide every open request of the period with its pro-rata share, split over its lines to the cent."""
    plan = pro_rata_plan(session, fund_code=fund_code, period_code=period_code)
    if plan["available"] == 0:
        raise Conflict("Il fondo non ha più somme da ripartire.", available=0)
    reason = (f"Riparto proporzionale: richieste per {services.format_eur(plan['asked'])}, disponibili "
              f"{services.format_eur(plan['available'])} ({plan['percent']:.2f}% di quanto chiesto).")
    decided = []
    for item in plan["requests"]:
        request = _open_request(session, item["id"])
        asked = {line.id: line.amount_asked for line in request.lines}
        amounts = services.largest_remainder(item["granted"], asked)
        explained = {"available": plan["available"], "asked": plan["asked"], "percent": plan["percent"],
                     "request_asked": item["asked"], "request_granted": item["granted"]}
        decided.append(_decide(session, request, amounts, actor, now, reason, pro_rata=explained))
    return decided


def record_payment(session: Session, *, request_id: int, payment_ref: str, actor: str,
                   now: dt.datetime) -> ReimbursementRequest:
    request = get_request(session, request_id)
    if request.status not in (APPROVED, PARTIALLY_APPROVED) or request.approved_total == 0:
        raise Conflict("Si registra il pagamento solo di una richiesta approvata.")
    if not payment_ref.strip():
        raise InvalidInput("Indicare gli estremi del pagamento.", errors={"payment_ref": ["Obbligatorio."]})
    request.status, request.payment_ref = PAID, payment_ref.strip()
    request.paid_by, request.paid_at = actor, now
    session.flush()
    documents.decision_taken(session, request, now)
    return request


def list_requests(session: Session, *, period_id: int,
                  comune: str | None = None) -> Sequence[ReimbursementRequest]:
    """A period's requests, oldest first; with ``comune``, only that comune's."""
    query = select(ReimbursementRequest).where(ReimbursementRequest.period_id == period_id)
    if comune is not None:
        query = query.where(ReimbursementRequest.comune == comune)
    return session.scalars(query.order_by(ReimbursementRequest.filed_at, ReimbursementRequest.id)).all()


def _open_requests(session: Session, period_id: int) -> Sequence[ReimbursementRequest]:
    return session.scalars(select(ReimbursementRequest).where(
        ReimbursementRequest.period_id == period_id, ReimbursementRequest.status == FILED)
        .order_by(ReimbursementRequest.filed_at, ReimbursementRequest.id)).all()


def _open_request(session: Session, request_id: int) -> ReimbursementRequest:
    request = get_request(session, request_id)
    if request.status != FILED:
        raise Conflict(f"La richiesta è già stata decisa (stato: {request.status}).")
    return request


def _decide(session: Session, request: ReimbursementRequest, amounts: Mapping[int, int], actor: str,
            now: dt.datetime, reason: str, pro_rata: Mapping[str, Any] | None = None) -> ReimbursementRequest:
    total = sum(amounts.values())
    if total:
        request.journal_id = services.grant_from_pool(
            session, period_id=request.period_id, comune=request.comune, amount=total, actor=actor,
            memo=f"Rimborso n. {request.id} a {request.comune}").id
    for line in request.lines:
        line.amount_approved = amounts[line.id]
    request.approved_total = total
    request.status = APPROVED if total == request.asked_total else PARTIALLY_APPROVED
    request.decided_by, request.decided_at, request.decision_reason = actor, now, reason
    session.flush()
    documents.decision_taken(session, request, now, pro_rata=pro_rata)
    return request
