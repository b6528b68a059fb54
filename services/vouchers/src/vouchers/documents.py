"""Sealed documents of vouchers and reimbursements, built and registered by the documents service.

Every act that a protocol must keep becomes a package: a comune's reimbursement request
(to the lead comune, which manages the Ambito's funds), each decision on it and its payment
(to that comune), and a voucher once money is reserved for it (to the voucher's comune, with
courtesy copies to the people concerned). The act takes the next number of the vouchers
register in its own transaction and asks, through the outbox, for ``vouchers.seal_document``;
that task (in the worker, where the Ambito's data directory is at hand) writes the payload of
``documents.build_package``, which reports back with ``vouchers.package_status``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from ambito_common.db import utcnow
from ambito_common.outbox import enqueue
from ambito_common.web import ROME, format_date, format_datetime, load_ambito
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from . import services
from .models import (
    DOC_REGISTERED,
    DOC_REJECTED,
    DOC_REQUESTED,
    DOCUMENT_STATUSES,
    PAID,
    DocumentCounter,
    OutboxMessage,
    ReimbursementRequest,
    SealedDocument,
    Voucher,
)
from .settings import Settings

log = structlog.get_logger(__name__)

SOURCE, CALLBACK = "vouchers", "vouchers.package_status"
REQUEST, DECISION, VOUCHER = "reimbursement_request", "reimbursement_decision", "voucher"
REGISTER_DIGITS = 7
OUTCOMES = {"approved": "Approvata per intero", "partially_approved": "Approvata in parte",
            "rejected": "Respinta", "paid": "Pagamento registrato"}


@dataclass(frozen=True)
class DocumentsConfig:
    """What a payload needs from the Ambito's data: names, the register, the providers' e-mails."""

    ambito: Mapping[str, Any]
    aoo: Mapping[str, Mapping[str, Any]]
    providers: Mapping[str, Mapping[str, Any]]
    register_code: str
    invoices_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> DocumentsConfig:
        data_dir = settings.platform.data_dir
        sad = _read_json(data_dir / "sad.json")
        return cls(ambito=load_ambito(settings.platform),
                   aoo=_read_json(data_dir / "aoo.json").get("aoo", {}),
                   providers={p["code"]: p for p in sad.get("providers", [])},
                   register_code=settings.register_code, invoices_dir=settings.invoices_dir)

    def comune_name(self, code: str) -> str:
        return next((c["name"] for c in self.ambito["comuni"] if c["code"] == code), code)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


# --- recording an act ------------------------------------------------------------------------

def request_filed(session: Session, request: ReimbursementRequest, now: dt.datetime) -> SealedDocument:
    return _record(session, kind=REQUEST, source_ref=f"reimbursement:{request.id}",
                   title="Richiesta di rimborso", now=now, reimbursement_id=request.id, details={})


def decision_taken(session: Session, request: ReimbursementRequest, now: dt.datetime,
                   pro_rata: Mapping[str, Any] | None = None) -> SealedDocument:
    """A decision (or the payment) on ``request``, as it stands now: the n-th decision document."""
    count = session.scalar(select(func.count()).select_from(SealedDocument).where(
        SealedDocument.reimbursement_id == request.id, SealedDocument.kind == DECISION)) or 0
    paid = request.status == PAID
    details = {
        "outcome": request.status, "approved_total": request.approved_total,
        "approved": {str(line.id): line.amount_approved for line in request.lines},
        "reason": request.decision_reason, "by": request.paid_by if paid else request.decided_by,
        "at": (request.paid_at if paid else request.decided_at or now).isoformat(),
        "payment_ref": request.payment_ref, "pro_rata": dict(pro_rata) if pro_rata else None,
    }
    title = "Pagamento del rimborso" if paid else "Decisione sulla richiesta di rimborso"
    return _record(session, kind=DECISION, source_ref=f"reimbursement:{request.id}:decision:{count + 1}",
                   title=title, now=now, reimbursement_id=request.id, details=details)


def voucher_reserved(session: Session, voucher: Voucher) -> SealedDocument:
    """The voucher document, once its value is reserved on the budget (not while it waits)."""
    return _record(session, kind=VOUCHER, source_ref=f"voucher:{voucher.id}", title="Buono",
                   now=utcnow(), voucher_id=voucher.id, details={})


def _record(session: Session, *, kind: str, source_ref: str, title: str, now: dt.datetime,
            details: Mapping[str, Any], reimbursement_id: int | None = None,
            voucher_id: int | None = None) -> SealedDocument:
    existing = session.scalar(select(SealedDocument).where(SealedDocument.source_ref == source_ref))
    if existing is not None:
        return existing
    year = now.astimezone(ROME).year
    document = SealedDocument(
        source_ref=source_ref, kind=kind, title=title, reimbursement_id=reimbursement_id,
        voucher_id=voucher_id, register_year=year, register_number=_next_number(session, year),
        created_at=now, details=dict(details))
    session.add(document)
    session.flush()
    enqueue(session, OutboxMessage, "vouchers.seal_document", document_id=document.id)
    return document


def _next_number(session: Session, year: int) -> int:
    """The next number of the register in ``year``, under a row lock: no gaps, no repeats."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(DocumentCounter).values(year=year, last_number=0)
                    .on_conflict_do_nothing(index_elements=["year"]))
    counter = session.scalars(select(DocumentCounter).where(DocumentCounter.year == year)
                              .with_for_update().execution_options(populate_existing=True)).one()
    counter.last_number += 1
    return counter.last_number


# --- the package -----------------------------------------------------------------------------

def seal(session: Session, document_id: int, config: DocumentsConfig, now: dt.datetime) -> bool:
    """Ask documents to build the package of ``document_id`` (again: documents is idempotent)."""
    document = session.get(SealedDocument, document_id)
    if document is None:
        log.warning("seal_unknown_document", document_id=document_id)
        return False
    enqueue(session, OutboxMessage, "documents.build_package", **package_request(session, document, config))
    document.package_requested_at = now
    session.flush()
    return True


def requeue_stale(session: Session, *, now: dt.datetime, older_than: dt.timedelta) -> int:
    """Ask again for the packages documents has not acknowledged in time.

    Publishing is at-least-once but the embedded (filesystem) broker has no late acks, so a
    message can die with a worker; documents builds each source_ref once, so asking twice is safe.
    """
    stale = session.scalars(select(SealedDocument.id).where(
        SealedDocument.status == DOC_REQUESTED, SealedDocument.package_requested_at < now - older_than)).all()
    for document_id in stale:
        enqueue(session, OutboxMessage, "vouchers.seal_document", document_id=document_id)
    if stale:
        log.info("sealed_documents_requeued", count=len(stale))
    return len(stale)


def package_request(session: Session, document: SealedDocument, config: DocumentsConfig) -> dict[str, Any]:
    """The kwargs of ``documents.build_package`` for one recorded act."""
    if document.kind == VOUCHER:
        voucher = session.get(Voucher, document.voucher_id)
        assert voucher is not None
        payload = voucher_package(voucher, document, config)
    else:
        request = session.get(ReimbursementRequest, document.reimbursement_id)
        assert request is not None
        payload = reimbursement_package(request, document, config)
    return {"source": SOURCE, "source_ref": document.source_ref, "callback": CALLBACK, "payload": payload}


def registration_label(document: SealedDocument, config: DocumentsConfig) -> str:
    register = config.register_code.replace("_", " ").lower()
    return (f"n. {document.register_number:0{REGISTER_DIGITS}d} del {format_date(document.created_at)} "
            f"(registro {register})")


def _meta(document: SealedDocument, config: DocumentsConfig, sender: Mapping[str, Any],
          subject: str) -> dict[str, Any]:
    register = config.ambito["register"]
    return {
        "registration": {"ipa_code": register["ipa_code"], "aoo_code": register["aoo_code"],
                         "aoo_name": register.get("aoo_name", ""), "register_code": config.register_code,
                         "number": f"{document.register_number:0{REGISTER_DIGITS}d}",
                         "date": document.created_at.astimezone(ROME).date().isoformat()},
        "sender": dict(sender), "subject": subject,
    }


def _ambito_sender(config: DocumentsConfig) -> dict[str, str]:
    lead = config.ambito["lead_body"]
    return {"name": f"{config.ambito['name']} ({lead['name']}, ente capofila)", "pec": lead.get("pec", ""),
            "email": lead.get("email", "")}


def _document(document: SealedDocument, config: DocumentsConfig, title: str, subtitle: str,
              sections: list[dict[str, Any]]) -> dict[str, Any]:
    return {"header": {"lead_body": config.ambito["lead_body"]["name"], "ambito": config.ambito["name"]},
            "title": title, "subtitle": subtitle, "sections": sections, "declarations": [],
            "submitted_at": format_datetime(document.created_at), "tracking_code": "",
            "registration": registration_label(document, config)}


def eur(cents: int | None) -> str:
    return services.format_eur(cents or 0)


def reimbursement_package(request: ReimbursementRequest, document: SealedDocument,
                          config: DocumentsConfig) -> dict[str, Any]:
    """A request (kind ``reimbursement_request``) or a decision on it (``reimbursement_decision``)."""
    comune = config.comune_name(request.comune)
    period = request.period
    decision = document.details if document.kind == DECISION else None
    approved = (decision or {}).get("approved") or {}
    lines = [{"title": f"Riga {n}", "fields": [
        {"label": "Beneficiario (riferimento)", "value": line.beneficiary_ref},
        {"label": "Struttura o servizio", "value": line.service},
        {"label": "Periodo del servizio", "value": line.service_period},
        {"label": "Importo pagato", "value": eur(line.amount_paid)},
        {"label": "Importo chiesto", "value": eur(line.amount_asked)},
        *([{"label": "Importo riconosciuto", "value": eur(approved.get(str(line.id)))}] if decision else []),
    ]} for n, line in enumerate(request.lines, start=1)]
    totals = [{"label": "Totale pagato", "value": eur(sum(line.amount_paid for line in request.lines))},
              {"label": "Totale chiesto", "value": eur(request.asked_total)}]
    sections = [{"title": "Richiesta", "fields": [
        {"label": "Numero della richiesta", "value": str(request.id)},
        {"label": "Comune", "value": comune},
        {"label": "Fondo", "value": period.fund.name}, {"label": "Periodo", "value": period.code},
        {"label": "Presentata il", "value": format_datetime(request.filed_at)},
        {"label": "Presentata da", "value": request.filed_by}]}, *lines]
    if decision is not None:
        totals.append({"label": "Totale riconosciuto", "value": eur(decision["approved_total"])})
        sections += [{"title": "Totali", "fields": totals}, *_decision_sections(decision)]
    else:
        sections += [{"title": "Totali", "fields": totals}, {"title": "Fatture allegate", "fields": [
            {"label": invoice.name, "value": f"{invoice.size} byte, SHA-256 {invoice.sha256}"}
            for invoice in request.invoices] or [{"label": "Fatture", "value": "Nessuna"}]}]
    if decision is None:
        subject = (f"Richiesta di rimborso a consuntivo n. {request.id} - Comune di {comune} - "
                   f"{period.fund.name}")
        sender = {"name": f"Comune di {comune}", "pec": (config.aoo.get(request.comune) or {}).get("pec", ""),
                  "email": ""}
        stem = f"rimborso-{request.id}-richiesta"
        title = "Richiesta di rimborso a consuntivo"
    else:
        subject = (f"{document.title} n. {request.id} - Comune di {comune} - "
                   f"{OUTCOMES.get(decision['outcome'], decision['outcome'])}")
        sender, stem, title = _ambito_sender(config), f"rimborso-{request.id}-decisione-" + \
            document.source_ref.rsplit(":", 1)[1], document.title
    return {
        "kind": document.kind,
        "residence": {"comune": request.comune},
        "subject": subject, "file_stem": stem,
        "document": _document(document, config, title,
                              f"Comune di {comune} · {period.fund.name} · periodo {period.code}", sections),
        "data": {"request": request.id, "comune": request.comune, "fund": period.fund.code,
                 "period": period.code, "lines": [
                     {"id": line.id, "beneficiary_ref": line.beneficiary_ref, "service": line.service,
                      "service_period": line.service_period, "amount_paid": line.amount_paid,
                      "amount_asked": line.amount_asked} for line in request.lines],
                 "decision": decision},
        "meta": _meta(document, config, sender, subject),
        "attachments": [] if decision is not None else [
            {"name": invoice.name, "media_type": invoice.media_type, "sha256": invoice.sha256,
             "size": invoice.size, "description": "Fattura",
             "content_b64": base64.b64encode((config.invoices_dir / invoice.sha256).read_bytes())
             .decode("ascii")}
            for invoice in request.invoices],
    }


def _decision_sections(decision: Mapping[str, Any]) -> list[dict[str, Any]]:
    at = dt.datetime.fromisoformat(decision["at"])
    fields = [{"label": "Esito", "value": OUTCOMES.get(decision["outcome"], decision["outcome"])},
              {"label": "Data", "value": format_datetime(at)},
              {"label": "Registrato da" if decision["outcome"] == PAID else "Decisa da",
               "value": decision["by"] or ""}]
    if decision["outcome"] == PAID:
        fields += [{"label": "Importo pagato", "value": eur(decision["approved_total"])},
                   {"label": "Estremi del pagamento", "value": decision["payment_ref"]}]
    elif decision["reason"]:
        fields.append({"label": "Motivazione", "value": decision["reason"]})
    sections = [{"title": "Decisione", "fields": fields}]
    plan = decision.get("pro_rata")
    if plan:
        sections.append({"title": "Riparto proporzionale", "fields": [
            {"label": "Somme disponibili nel periodo", "value": eur(plan["available"])},
            {"label": "Totale chiesto dalle richieste aperte", "value": eur(plan["asked"])},
            {"label": "Quota riconosciuta a ciascuna", "value": f"{plan['percent']:.2f}%".replace(".", ",")},
            {"label": "Chiesto da questo comune", "value": eur(plan["request_asked"])},
            {"label": "Riconosciuto a questo comune", "value": eur(plan["request_granted"])},
            {"label": "Metodo", "value": "Stessa percentuale per ogni richiesta, arrotondata al "
                                         "centesimo col metodo dei resti maggiori: la somma dei "
                                         "riconoscimenti è esatta."},
        ]})
    return sections


def voucher_package(voucher: Voucher, document: SealedDocument, config: DocumentsConfig) -> dict[str, Any]:
    """The voucher document for its comune's protocol, with courtesy copies (contract 4)."""
    comune = config.comune_name(voucher.budget.comune)
    period = voucher.budget.period
    provider = config.providers.get(voucher.provider) or {}
    provider_name = provider.get("name") or voucher.provider
    subject = f"Buono n. {voucher.id} - {voucher.beneficiary_name} - Comune di {comune}"
    hours = f"{voucher.hours_per_week / 100:.2f}".replace(".", ",")
    sections = [
        {"title": "Beneficiario", "fields": [{"label": "Nome e cognome", "value": voucher.beneficiary_name},
                                             {"label": "Riferimento", "value": voucher.beneficiary_ref}]},
        {"title": "Servizio", "fields": [
            {"label": "Ente erogatore", "value": provider_name},
            {"label": "Profilo", "value": voucher.profile},
            {"label": "Ore settimanali", "value": hours}, {"label": "Settimane", "value": str(voucher.weeks)},
            {"label": "Tariffa oraria", "value": eur(voucher.tariff)},
            {"label": "Compartecipazione oraria (a carico della famiglia)",
             "value": eur(voucher.copayment_hourly)},
            {"label": "Valore a carico del fondo", "value": eur(voucher.value)}]},
        {"title": "Budget", "fields": [
            {"label": "Comune", "value": comune}, {"label": "Fondo", "value": period.fund.name},
            {"label": "Periodo", "value": period.code},
            {"label": "Prenotazione", "value": f"n. {voucher.reservation_id}"}]},
    ]
    copies = [{"name": name, "email": email} for name, email in (
        (voucher.beneficiary_name, voucher.contact_email), (provider_name, provider.get("email"))) if email]
    meta = {**_meta(document, config, _ambito_sender(config), subject), "copies": copies}
    return {
        "kind": VOUCHER, "residence": {"comune": voucher.budget.comune}, "subject": subject,
        "file_stem": f"buono-{voucher.id}",
        "document": _document(document, config, "Buono per l'assistenza domiciliare",
                              f"Comune di {comune} · {period.fund.name} · periodo {period.code}", sections),
        "data": {"voucher": voucher.id, "comune": voucher.budget.comune, "fund": period.fund.code,
                 "period": period.code, "beneficiary_ref": voucher.beneficiary_ref,
                 "provider": voucher.provider,
                 "profile": voucher.profile, "hours_per_week": voucher.hours_per_week, "weeks": voucher.weeks,
                 "tariff": voucher.tariff, "copayment_hourly": voucher.copayment_hourly,
                 "value": voucher.value},
        "meta": meta,
        "attachments": [],
    }


# --- what documents reports ---------------------------------------------------------------------

def record_package_status(session: Session, *, source_ref: str, package_id: str | None, status: str,
                          protocol: Mapping[str, str] | None,
                          rejection: Mapping[str, Any] | None) -> SealedDocument | None:
    """Move a document forward (packaged → delivered → registered), or to rejected; never back.

    Reports repeat and cross (at-least-once delivery), so an old status is ignored.
    """
    if status not in DOCUMENT_STATUSES[1:]:
        raise ValueError(f"unknown package status {status!r}")
    document = session.scalar(select(SealedDocument).where(SealedDocument.source_ref == source_ref)
                              .with_for_update())
    if document is None:
        log.warning("package_status_unknown_document", source_ref=source_ref)
        return None
    if package_id and not document.package_id:
        document.package_id = package_id
    if document.status == DOC_REJECTED or (
            status != DOC_REJECTED
            and DOCUMENT_STATUSES.index(status) <= DOCUMENT_STATUSES.index(document.status)):
        return document
    if status == DOC_REGISTERED:
        if not protocol or not protocol.get("number") or not protocol.get("date"):
            raise ValueError("a registered package needs protocol number and date")
        document.protocol_number, document.protocol_date = str(protocol["number"]), str(protocol["date"])
    if status == DOC_REJECTED:
        rejection = rejection or {}
        document.rejection_code = rejection.get("code")
        document.rejection_reason = str(rejection.get("reason") or "")[:2000]
    document.status = status
    session.flush()
    return document


def voucher_document(session: Session, voucher_id: int) -> SealedDocument | None:
    return session.scalar(select(SealedDocument).where(SealedDocument.voucher_id == voucher_id))


def status_json(document: SealedDocument) -> dict[str, Any]:
    """Where a document stands, for the API: register number, package state, protocol, rejection."""
    return {"source_ref": document.source_ref, "kind": document.kind, "title": document.title,
            "register_number": document.register_number, "register_year": document.register_year,
            "status": document.status, "package_id": document.package_id,
            "protocol_number": document.protocol_number, "protocol_date": document.protocol_date,
            "rejection_reason": document.rejection_reason or None}
