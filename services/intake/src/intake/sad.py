"""The rules of the SAD home-care voucher request: draft, uploads, submission, the comune's case.

Like :mod:`intake.services`, every function takes a session and plain values
(and an explicit ``now``), raises domain errors and leaves the commit to the
caller. Every transition of a request is a :class:`SadEvent` naming who and
when, written in the same transaction as an outbox message that e-mails the
citizen about it, so no state change goes unrecorded or unannounced.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, BinaryIO

import structlog
from ambito_common import uploads
from ambito_common.errors import Conflict, Forbidden, InvalidInput, NotFound
from ambito_common.forms import accepted_declarations, document_sections, load
from ambito_common.identity import AMBITO_ADMIN, SOCIAL_WORKER, Identity
from ambito_common.mail import send_mail
from ambito_common.outbox import enqueue
from ambito_common.settings import PlatformSettings
from ambito_common.web import ROME, format_date, format_datetime
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import services
from .codes import group_tracking_code, new_tracking_code, normalise_tracking_code
from .models import OutboxMessage, SadAttachment, SadEvent, SadNote, SadRequest
from .sad_schemas import ATTACHMENT_KINDS, CarePlanSchema, SadRequestSchema, isee_expired

log = structlog.get_logger(__name__)

DRAFT = "draft"
# Case statuses: what the comune's social service has done with the request.
NEW, ASSESSMENT, DOCUMENTS_REQUESTED = "new", "assessment", "documents_requested"
AWAITING_BUDGET, REJECTED = "awaiting_budget", "rejected"
CASE_LABELS = {
    NEW: "da valutare",
    ASSESSMENT: "in valutazione",
    DOCUMENTS_REQUESTED: "documenti richiesti al cittadino",
    AWAITING_BUDGET: "approvata, in attesa di budget",
    REJECTED: "respinta",
}
OPEN_CASES = (NEW, ASSESSMENT, DOCUMENTS_REQUESTED)
CITIZEN, SYSTEM = "cittadino", "sistema"
SOURCE_PREFIX = "sad_request:"


@dataclass(frozen=True)
class SadConfig:
    """The data the SAD runs on: the Ambito, its accredited providers and co-payment rules, its AOOs."""

    ambito: Mapping[str, Any]
    providers: list[tuple[str, str]]
    copayment: Mapping[str, Any]
    aoo: Mapping[str, Mapping[str, Any]]  # comune code → AOO record
    storage_dir: Path
    max_file_bytes: int
    max_request_bytes: int
    draft_ttl: dt.timedelta

    @classmethod
    def load(cls, data_dir: Path, ambito: Mapping[str, Any], *, storage_dir: Path, max_file_bytes: int,
             max_request_bytes: int, draft_ttl: dt.timedelta) -> SadConfig:
        sad = json.loads((data_dir / "sad.json").read_text(encoding="utf-8"))
        aoo_file = data_dir / "aoo.json"
        aoo = _aoo_by_comune(json.loads(aoo_file.read_text(encoding="utf-8"))) if aoo_file.exists() else {}
        return cls(ambito=ambito, providers=[(p["code"], p["name"]) for p in sad["providers"]],
                   copayment=sad["copayment"], aoo=aoo, storage_dir=storage_dir,
                   max_file_bytes=max_file_bytes, max_request_bytes=max_request_bytes, draft_ttl=draft_ttl)

    @property
    def comuni(self) -> list[tuple[str, str]]:
        return [(c["code"], c["name"]) for c in self.ambito["comuni"]]

    def comune_name(self, code: str) -> str:
        return dict(self.comuni).get(code, code)

    def schema(self) -> SadRequestSchema:
        return SadRequestSchema(comuni=self.comuni, providers=self.providers)


def _aoo_by_comune(raw: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """aoo.json's ``{"aoo": {comune code: record}}``, the directory documents routes by as well."""
    return {str(code): record for code, record in raw["aoo"].items()}


def recipient(config: SadConfig, comune: str) -> dict[str, str]:
    """The protocol office (AOO) of the beneficiary's comune, which receives the package."""
    record = config.aoo.get(comune)
    if record is not None:
        return {"name": record["name"], "ipa_code": record["ipa_code"], "aoo_code": record["aoo_code"],
                "aoo_name": record.get("aoo_name", f"{record['name']} - Protocollo"), "pec": record["pec"]}
    # Until the comune's codes are configured: placeholders that say so.
    name = config.comune_name(comune)
    slug = comune.replace("-", "")
    return {"name": f"Comune di {name}", "ipa_code": f"c_demo_{slug}"[:20],
            "aoo_code": f"AOO_DEMO_{slug.upper()}", "aoo_name": f"Comune di {name} - Protocollo generale",
            "pec": f"protocollo@pec.comune.{slug}.bg.it"}


# Reading


def get_by_code(session: Session, tracking_code: str) -> SadRequest:
    code = normalise_tracking_code(tracking_code)
    found = None
    if code is not None:
        found = session.scalar(select(SadRequest).where(SadRequest.tracking_code == code))
    if found is None:
        raise NotFound("Nessuna richiesta corrisponde a questo codice. "
                       "Controlli il link ricevuto per e-mail.")
    return found


def find_by_code(session: Session, tracking_code: str) -> SadRequest | None:
    code = normalise_tracking_code(tracking_code)
    if code is None:
        return None
    return session.scalar(select(SadRequest).where(SadRequest.tracking_code == code))


def authorize(identity: Identity | None, request: SadRequest, *, decide: bool = False) -> None:
    """A case is the business of its comune's social workers; the Ambito's staff may read it."""
    if identity is None:
        raise Forbidden("Accesso riservato al servizio sociale del comune di residenza.")
    if SOCIAL_WORKER in identity.roles and identity.comune == request.comune:
        return
    if not decide and AMBITO_ADMIN in identity.roles:
        return
    raise Forbidden("La richiesta riguarda un comune diverso dal suo: non può consultarla.")


def get_case(session: Session, request_id: str, identity: Identity | None, *,
             decide: bool = False) -> SadRequest:
    request = session.get(SadRequest, request_id)
    if request is None or request.status == DRAFT:
        raise NotFound("Richiesta non trovata.")
    authorize(identity, request, decide=decide)
    return request


def case_queue(session: Session, comune: str) -> list[SadRequest]:
    """The submitted requests of one comune, open cases first, the oldest first."""
    rows = session.scalars(select(SadRequest).where(SadRequest.comune == comune, SadRequest.status != DRAFT)
                           .order_by(SadRequest.submitted_at)).all()
    return sorted(rows, key=lambda r: r.case_status not in OPEN_CASES)


def registration_label(request: SadRequest) -> str | None:
    if request.register_number is None:
        return None
    return services.registration_label(request)  # type: ignore[arg-type]  # same register columns


# The citizen's side


def _jsonable(data: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data, default=lambda v: v.isoformat()))


def _event(request: SadRequest, *, status: str, at: dt.datetime, actor: str, detail: str,
           actor_role: str = "", session: Session) -> SadEvent:
    """Record a transition (who, when) and, in the same transaction, the e-mail that announces it."""
    event = SadEvent(status=status, at=at, actor=actor, actor_role=actor_role, detail=detail)
    request.events.append(event)
    session.flush()
    enqueue(session, OutboxMessage, "intake.send_sad_update", event_id=event.id)
    return event


def create_request(session: Session, *, data: Any, now: dt.datetime, config: SadConfig) -> SadRequest:
    """Validate the form and keep it as a draft (no number yet); the citizen gets a link to resume it."""
    clean = load(config.schema(), data)
    request = SadRequest(
        id=str(uuid.uuid4()), tracking_code=new_tracking_code(), comune=clean["beneficiary"]["comune"],
        applicant_email=clean["applicant"]["email"], data=_jsonable(clean),
        isee_expired=isee_expired(clean, now.astimezone(ROME).date()), status=DRAFT,
        created_at=now, expires_at=now + config.draft_ttl)
    session.add(request)
    _event(request, status=DRAFT, at=now, actor=CITIZEN, session=session,
           detail=f"Bozza salvata; resta disponibile fino al {format_date(request.expires_at)}.")
    log.info("sad_draft_created", request_id=request.id, comune=request.comune)
    return request


def get_live(session: Session, tracking_code: str, now: dt.datetime) -> SadRequest:
    """A request by its code; a draft past its expiry is gone even before the purge removes it."""
    request = get_by_code(session, tracking_code)
    if request.status == DRAFT and request.expires_at is not None and request.expires_at <= now:
        raise NotFound("La bozza è scaduta ed è stata eliminata: occorre compilare una nuova richiesta.")
    return request


def update_draft(session: Session, *, tracking_code: str, data: Any, now: dt.datetime,
                 config: SadConfig) -> SadRequest:
    """Change a draft's data (the citizen resumed it from the e-mailed link); expiry is unchanged."""
    request = get_live(session, tracking_code, now)
    if request.status != DRAFT:
        raise Conflict("La richiesta è già stata presentata e non può essere modificata.")
    clean = load(config.schema(), data)
    request.data = _jsonable(clean)
    request.comune, request.applicant_email = clean["beneficiary"]["comune"], clean["applicant"]["email"]
    request.isee_expired = isee_expired(clean, now.astimezone(ROME).date())
    return request


def _accepts_uploads(request: SadRequest) -> None:
    if request.status == DRAFT:
        return
    if request.case_status != DOCUMENTS_REQUESTED:
        raise Conflict("La richiesta è già stata presentata: si possono aggiungere documenti solo "
                       "quando il servizio sociale li richiede.")


def add_attachment(session: Session, *, tracking_code: str, kind: str | None, filename: str,
                   stream: BinaryIO | None, now: dt.datetime, config: SadConfig) -> SadAttachment:
    """Check a file (kind, real type, sizes) and only then store it; a refused file leaves nothing."""
    request = get_live(session, tracking_code, now)
    _accepts_uploads(request)
    if kind not in dict(ATTACHMENT_KINDS):
        raise InvalidInput("Indicare il tipo di documento.", errors={"kind": [
            "Tipo di documento non previsto: " + ", ".join(label for _, label in ATTACHMENT_KINDS) + "."]})
    if stream is None:
        raise InvalidInput("Nessun file ricevuto.", errors={"file": ["Scegliere un file da caricare."]})
    content = uploads.read_limited(stream, config.max_file_bytes)
    media_type, extension = uploads.check_content(content)
    used = session.scalar(select(func.coalesce(func.sum(SadAttachment.size), 0))
                          .where(SadAttachment.request_id == request.id)) or 0
    if used + len(content) > config.max_request_bytes:
        raise uploads.TooLarge(
            "Gli allegati di una richiesta non possono superare "
            f"{uploads.megabytes(config.max_request_bytes)} "
            f"in tutto (già caricati: {uploads.megabytes(used)}).")
    if any(a.sha256 == hashlib.sha256(content).hexdigest() for a in request.attachments):
        raise Conflict("Questo file è già stato caricato.")
    _path, digest = uploads.store(config.storage_dir / request.id, content)
    attachment = SadAttachment(kind=kind, name=uploads.safe_name(filename, extension), media_type=media_type,
                               sha256=digest, size=len(content), uploaded_at=now)
    request.attachments.append(attachment)
    session.flush()
    log.info("sad_attachment_added", request_id=request.id, kind=kind, size=len(content))
    return attachment


def submit(session: Session, *, tracking_code: str, now: dt.datetime, config: SadConfig) -> SadRequest:
    """Present a draft: our register number, the comune's package and the receipt, in one transaction."""
    request = get_live(session, tracking_code, now)
    if request.status != DRAFT:
        assert request.submitted_at is not None
        raise Conflict(f"La richiesta è già stata presentata il {services.when(request.submitted_at)}.")
    register = config.ambito["register"]
    year = now.astimezone(ROME).year
    request.register_number = services.next_register_number(session, register["register_code"], year)
    request.register_code, request.register_year = register["register_code"], year
    request.status, request.case_status = services.RECEIVED, NEW
    request.submitted_at = request.package_requested_at = now
    request.expires_at = None
    request.isee_expired = isee_expired(request.data, now.astimezone(ROME).date())
    _event(request, status=services.RECEIVED, at=now, actor=CITIZEN, session=session,
           detail=f"Richiesta presentata e registrata: {registration_label(request)}; trasmessa al "
                  f"Comune di {config.comune_name(request.comune)}.")
    enqueue(session, OutboxMessage, "documents.build_package", **package_request(request, config))
    log.info("sad_request_submitted", request_id=request.id, comune=request.comune,
             register_number=request.register_number)
    return request


def attachment_path(config: SadConfig, attachment: SadAttachment) -> Path:
    return config.storage_dir / attachment.request_id / attachment.sha256


def package_request(request: SadRequest, config: SadConfig) -> dict[str, Any]:
    """The kwargs of ``documents.build_package``: the same contract as an application's, plus files."""
    schema = config.schema()
    data = schema.load(request.data)  # typed again (dates), for the PDF
    ambito, register = config.ambito, config.ambito["register"]
    applicant = data["applicant"]
    subject = f"Richiesta voucher SAD - {config.comune_name(request.comune)}"
    assert request.submitted_at is not None and request.register_number is not None
    sections = document_sections(schema, data)
    if request.isee_expired:
        sections.append({"title": "Avvertenze", "fields": [
            {"label": "ISEE", "value": "Scaduto alla data di presentazione"}]})
    return {
        "source": "intake",
        "source_ref": f"{SOURCE_PREFIX}{request.id}",
        "callback": "intake.package_status",
        "payload": {
            "kind": "sad_request",
            # Where documents' territorial routing looks for the comune of residence.
            "residence": {"comune": request.comune},
            "subject": subject,
            "file_stem": f"richiesta-sad-{request.tracking_code}",
            "document": {
                "header": {"lead_body": ambito["lead_body"]["name"], "ambito": ambito["name"]},
                "title": "Richiesta di voucher per il Servizio di Assistenza Domiciliare (SAD)",
                "subtitle": f"Comune di residenza: {config.comune_name(request.comune)}",
                "sections": sections,
                "declarations": accepted_declarations(schema, data),
                "submitted_at": format_datetime(request.submitted_at),
                "tracking_code": request.tracking_code,
                "registration": registration_label(request),
            },
            "data": request.data,
            "meta": {
                "registration": {
                    "ipa_code": register["ipa_code"], "aoo_code": register["aoo_code"],
                    "register_code": request.register_code,
                    "number": services.format_register_number(request.register_number),
                    "date": request.submitted_at.astimezone(ROME).date().isoformat(),
                },
                "sender": {"name": f"{applicant['first_name']} {applicant['last_name']}",
                           "tax_code": applicant["tax_code"], "email": applicant["email"]},
                "recipient": recipient(config, request.comune),
                "subject": subject,
            },
            "attachments": [
                {"name": a.name, "media_type": a.media_type, "sha256": a.sha256, "size": a.size,
                 "content_b64": base64.b64encode(attachment_path(config, a).read_bytes()).decode("ascii")}
                for a in request.attachments],
        },
    }


def requeue_stale_packages(session: Session, *, now: dt.datetime, older_than: dt.timedelta,
                           config: SadConfig) -> int:
    """Ask documents again for SAD packages not confirmed after ``older_than`` (it is idempotent)."""
    stale = session.scalars(
        select(SadRequest).where(SadRequest.status == services.RECEIVED,
                                 SadRequest.package_requested_at <= now - older_than)
        .with_for_update(skip_locked=True)
    ).all()
    for request in stale:
        enqueue(session, OutboxMessage, "documents.build_package", **package_request(request, config))
        request.package_requested_at = now
    return len(stale)


PACKAGE_DETAILS = {
    services.PACKAGED: "Documenti della richiesta pronti e sigillati.",
    services.DELIVERED: "Richiesta consegnata all'ufficio protocollo del comune.",
}


def record_package_status(session: Session, *, request_id: str, package_id: str | None, status: str,
                          protocol: Mapping[str, str] | None, now: dt.datetime) -> SadRequest | None:
    """Documents reports on the package: move forward only (messages repeat and cross)."""
    if status not in services.STATUSES:
        raise ValueError(f"unknown package status {status!r}")
    request = session.get(SadRequest, request_id, with_for_update=True)
    if request is None or request.status == DRAFT:
        log.warning("package_status_unknown_sad_request", request_id=request_id)
        return None
    if package_id and not request.package_id:
        request.package_id = package_id
    if services.STATUSES.index(status) <= services.STATUSES.index(request.status):
        return request
    detail = PACKAGE_DETAILS.get(status, "")
    if status == services.REGISTERED:
        if not protocol or not protocol.get("number") or not protocol.get("date"):
            raise ValueError("a registered package needs protocol number and date")
        request.protocol_number = protocol["number"]
        request.protocol_date = dt.date.fromisoformat(protocol["date"])
        detail = (f"Richiesta protocollata: n. {request.protocol_number} "
                  f"del {format_date(request.protocol_date)}.")
    request.status = status
    _event(request, status=status, at=now, actor=SYSTEM, detail=detail, session=session)
    return request


# The comune's side


def _actor(identity: Identity) -> tuple[str, str]:
    role = SOCIAL_WORKER if SOCIAL_WORKER in identity.roles else (identity.roles or ("",))[0]
    return identity.display_name or identity.username, role


def _require_open(request: SadRequest) -> None:
    if request.case_status not in OPEN_CASES:
        raise Conflict(f"La richiesta è già stata decisa ({CASE_LABELS.get(request.case_status or '', '')}).")


def _move(session: Session, request: SadRequest, identity: Identity, status: str, detail: str,
          now: dt.datetime) -> None:
    actor, role = _actor(identity)
    request.case_status = status
    _event(request, status=status, at=now, actor=actor, actor_role=role, detail=detail, session=session)


def _text(value: Any, field: str, message: str, max_length: int = 4000) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidInput(message, errors={field: [message]})
    if len(text) > max_length:
        raise InvalidInput("Testo troppo lungo.", errors={field: [f"Al massimo {max_length} caratteri."]})
    return text


def add_note(session: Session, request: SadRequest, identity: Identity, text: Any,
             now: dt.datetime) -> SadNote:
    """An assessment note; the first one starts the assessment (the citizen is told)."""
    _require_open(request)
    note = SadNote(author=_actor(identity)[0], text=_text(text, "text", "Scrivere la nota."), at=now)
    request.notes.append(note)
    if request.case_status == NEW:
        _move(session, request, identity, ASSESSMENT, "Il servizio sociale ha avviato la valutazione.", now)
    return note


def hourly_copayment(rule: Mapping[str, Any], isee_cents: int | None) -> int:
    """The citizen's share per operator-hour, in cents, by a comune's rule (``bands`` or ``linear``).

    No ISEE (or an expired one) pays the maximum, as the regulations do.
    """
    maximum = int(rule["max_hourly_cents"])
    if isee_cents is None:
        return maximum
    if rule["rule"] == "bands":
        for band in rule["bands"]:
            if isee_cents <= band["up_to_cents"]:
                return int(band["hourly_cents"])
        return maximum
    if rule["rule"] == "linear":
        low, high = int(rule["from_cents"]), int(rule["to_cents"])
        if isee_cents <= low:
            return 0
        if isee_cents >= high:
            return maximum
        return round(maximum * (isee_cents - low) / (high - low))
    raise ValueError(f"unknown co-payment rule {rule['rule']!r}")


def copayment_rule(config: SadConfig, comune: str) -> Mapping[str, Any]:
    return config.copayment.get("by_comune", {}).get(comune) or config.copayment["default"]


def save_care_plan(session: Session, request: SadRequest, identity: Identity, data: Mapping[str, Any],
                   now: dt.datetime, config: SadConfig) -> dict[str, Any]:
    """The PAI, with the co-payment computed from the (valid) ISEE by the comune's rule."""
    _require_open(request)
    plan = load(CarePlanSchema(providers=config.providers), data)
    isee = request.data.get("isee") or {}
    isee_cents = None if request.isee_expired else isee.get("value_cents")
    hourly = hourly_copayment(copayment_rule(config, request.comune), isee_cents)
    hours = plan["asa_hours_week"] + plan["oss_hours_week"]
    plan.update(start_date=plan["start_date"].isoformat(), copayment_hourly_cents=hourly,
                copayment_total_cents=round(hourly * hours * plan["weeks"]),
                provider_name=dict(config.providers)[plan["provider"]])
    request.care_plan = plan
    status = ASSESSMENT if request.case_status == NEW else request.case_status
    _move(session, request, identity, status or ASSESSMENT,
          f"Piano assistenziale predisposto: {hours:g} ore settimanali per {plan['weeks']} settimane "
          f"con {plan['provider_name']}.", now)
    return plan


def approve(session: Session, request: SadRequest, identity: Identity, now: dt.datetime,
            config: SadConfig) -> None:
    """Propose the voucher: vouchers reserves the comune's budget or puts the case on the waiting list."""
    _require_open(request)
    if not request.care_plan:
        raise Conflict("Prima dell'approvazione occorre predisporre il piano assistenziale.")
    beneficiary = request.data["beneficiary"]
    enqueue(session, OutboxMessage, "vouchers.request_voucher",
            source="intake", source_ref=f"{SOURCE_PREFIX}{request.id}", comune=request.comune,
            beneficiary={"first_name": beneficiary["first_name"], "last_name": beneficiary["last_name"],
                         "tax_code": beneficiary["tax_code"]},
            isee_cents=None if request.isee_expired else (request.data.get("isee") or {}).get("value_cents"),
            submitted_at=request.submitted_at.isoformat() if request.submitted_at else None,
            care_plan=request.care_plan)
    _move(session, request, identity, AWAITING_BUDGET,
          "Richiesta approvata dal servizio sociale: in attesa dell'assegnazione del budget.", now)


def reject(session: Session, request: SadRequest, identity: Identity, reason: Any, now: dt.datetime) -> None:
    _require_open(request)
    text = _text(reason, "reason", "Indicare il motivo del rigetto.")
    request.decision_reason = text
    _move(session, request, identity, REJECTED, f"Richiesta respinta. Motivo: {text}", now)


def request_documents(session: Session, request: SadRequest, identity: Identity, message: Any,
                      now: dt.datetime) -> None:
    _require_open(request)
    text = _text(message, "message", "Indicare quali documenti servono.")
    _move(session, request, identity, DOCUMENTS_REQUESTED, f"Documenti richiesti: {text}", now)


def documents_sent(session: Session, *, tracking_code: str, now: dt.datetime) -> SadRequest:
    """The citizen has uploaded what was asked: the case goes back to the social worker."""
    request = get_by_code(session, tracking_code)
    if request.case_status != DOCUMENTS_REQUESTED:
        raise Conflict("Non ci sono documenti richiesti per questa domanda.")
    asked = max((e.at for e in request.events if e.status == DOCUMENTS_REQUESTED), default=request.created_at)
    if not any(a.uploaded_at >= asked for a in request.attachments):
        raise InvalidInput("Caricare almeno un documento prima di inviare.",
                           errors={"file": ["Caricare almeno un documento prima di inviare."]})
    request.case_status = ASSESSMENT
    _event(request, status=ASSESSMENT, at=now, actor=CITIZEN, session=session,
           detail="Documenti integrativi inviati dal cittadino.")
    return request


# Drafts


def purge_expired_drafts(session: Session, *, now: dt.datetime, config: SadConfig) -> int:
    """Delete drafts past their expiry, with their files; returns how many."""
    expired = session.scalars(select(SadRequest).where(SadRequest.status == DRAFT,
                                                       SadRequest.expires_at <= now)).all()
    for request in expired:
        for attachment in request.attachments:
            attachment_path(config, attachment).unlink(missing_ok=True)
        directory = config.storage_dir / request.id
        if directory.exists() and not any(directory.iterdir()):
            directory.rmdir()
        session.delete(request)
    if expired:
        log.info("sad_drafts_purged", count=len(expired))
    return len(expired)


# E-mail


def tracking_url(platform: PlatformSettings, request: SadRequest) -> str:
    return f"{platform.public_url}/intake/sad/{request.tracking_code}"


def update_message(event: SadEvent, platform: PlatformSettings, config: SadConfig) -> EmailMessage:
    request = event.request
    applicant = request.data["applicant"]
    code = group_tracking_code(request.tracking_code)
    if event.status == DRAFT:
        subject = f"Richiesta voucher SAD: bozza salvata - codice {code}"
        intro = ("la richiesta di voucher per l'assistenza domiciliare è stata salvata come bozza. "
                 "Può riprenderla, aggiungere gli allegati e presentarla entro il "
                 f"{format_date(request.expires_at)} "
                 "da questo indirizzo:")
    else:
        subject = f"Richiesta voucher SAD - aggiornamento - codice {code}"
        intro = ("la richiesta di voucher per l'assistenza domiciliare ha un aggiornamento "
                 f"({format_datetime(event.at)}):")
    lines = [f"Gentile {applicant['first_name']} {applicant['last_name']},", "", intro]
    if event.status != DRAFT:
        lines += ["", event.detail, "", "Lo stato della richiesta è consultabile a questo indirizzo:"]
    lines += [tracking_url(platform, request), "", f"Codice della richiesta: {code}",
              "Conservi questo messaggio: il link dà accesso alla richiesta.", "",
              config.ambito["name"], "", "Messaggio generato automaticamente."]
    message = EmailMessage()
    message["From"] = platform.mail_from
    message["To"] = request.applicant_email
    message["Reply-To"] = config.ambito["lead_body"]["email"]
    message["Subject"] = subject
    message.set_content("\n".join(lines))
    return message


def send_update(session: Session, *, event_id: int, platform: PlatformSettings, config: SadConfig,
                now: dt.datetime) -> bool:
    """E-mail the citizen about one transition, once (SMTP errors propagate so the task retries)."""
    event = session.get(SadEvent, event_id)
    if event is None or event.notified_at is not None:
        return False
    send_mail(platform.smtp_url, update_message(event, platform, config))
    event.notified_at = now
    return True
