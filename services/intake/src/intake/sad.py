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
import functools
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
from ambito_common.copayment import CopaymentRules, hourly_copayment, load_rules
from ambito_common.errors import Conflict, Forbidden, InvalidInput, NotFound
from ambito_common.forms import accepted_declarations, document_sections, load
from ambito_common.identity import AMBITO_ADMIN, SOCIAL_WORKER, Identity
from ambito_common.mail import send_mail
from ambito_common.outbox import enqueue
from ambito_common.settings import PlatformSettings
from ambito_common.web import ROME, format_date, format_datetime
from marshmallow import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import services
from .codes import group_tracking_code, new_tracking_code, normalise_tracking_code
from .models import OutboxMessage, SadAttachment, SadEvent, SadNote, SadRequest, SadSupplement
from .sad_schemas import ATTACHMENT_KINDS, CarePlanSchema, SadRequestSchema, isee_expired

log = structlog.get_logger(__name__)

DRAFT = "draft"
# Case statuses: what the comune's social service has done with the request.
NEW, ASSESSMENT, DOCUMENTS_REQUESTED = "new", "assessment", "documents_requested"
AWAITING_BUDGET, REJECTED = "awaiting_budget", "rejected"
# What the vouchers service reports once the case is approved (contract: intake.voucher_status).
VOUCHER_GRANTED, WAITING_LIST, VOUCHER_CLOSED = "voucher_granted", "waiting_list", "voucher_closed"
VOUCHER_STATUSES = {"granted": VOUCHER_GRANTED, "waiting_list": WAITING_LIST, "closed": VOUCHER_CLOSED}
VOUCHER_SERVICE = "servizio voucher"
VOUCHER_LABELS = {"waiting": "in lista d'attesa", "active": "attivo", "closed": "chiuso",
                  "cancelled": "annullato"}
CASE_LABELS = {
    NEW: "da valutare",
    ASSESSMENT: "in valutazione",
    DOCUMENTS_REQUESTED: "documenti richiesti al cittadino",
    AWAITING_BUDGET: "approvata, in attesa di budget",
    REJECTED: "respinta",
    VOUCHER_GRANTED: "voucher assegnato",
    WAITING_LIST: "in lista d'attesa",
    VOUCHER_CLOSED: "chiuso",
}
OPEN_CASES = (NEW, ASSESSMENT, DOCUMENTS_REQUESTED)
CITIZEN, SYSTEM = "cittadino", "sistema"
SOURCE_PREFIX = "sad_request:"
SUPPLEMENT_MARK = ":integrazione:"  # sad_request:<id>:integrazione:<n>, one package per supplement
SUPPLEMENT_EVENT = "supplement_"  # the history's status for a supplement's package step
PROTOCOL_REJECTED = "protocol_rejected"  # the history's status when the protocol refused the request


@dataclass(frozen=True)
class SadConfig:
    """The data the SAD runs on: the Ambito, its accredited providers and co-payment rules, its AOOs."""

    ambito: Mapping[str, Any]
    providers: list[tuple[str, str]]
    copayment: CopaymentRules
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
                   copayment=load_rules(data_dir), aoo=aoo, storage_dir=storage_dir,
                   max_file_bytes=max_file_bytes, max_request_bytes=max_request_bytes, draft_ttl=draft_ttl)

    @property
    def comuni(self) -> list[tuple[str, str]]:
        return [(c["code"], c["name"]) for c in self.ambito["comuni"]]

    def comune_name(self, code: str) -> str:
        return dict(self.comuni).get(code, code)

    def schema(self) -> SadRequestSchema:
        """The one schema of the request, shared by every request of the process (nothing mutates it)."""
        return self._schema

    @functools.cached_property
    def _schema(self) -> SadRequestSchema:
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
    found = find_by_code(session, tracking_code)
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


def registration_label(request: SadRequest | SadSupplement) -> str | None:
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


DRAFT_EMAIL_MISSING = "Per salvare la bozza indicare l'e-mail a cui inviare il link per riprenderla."


def _draft_email(config: SadConfig, data: Mapping[str, Any]) -> str:
    """The one value a half-filled draft needs: where to send the link that resumes it."""
    applicant = data.get("applicant")
    value = applicant.get("email") if isinstance(applicant, Mapping) else None
    value = value.strip() if isinstance(value, str) else ""
    if not value:
        raise InvalidInput(DRAFT_EMAIL_MISSING, errors={"applicant.email": [DRAFT_EMAIL_MISSING]})
    field = config.schema().fields["applicant"].schema.fields["email"]  # type: ignore[attr-defined]
    try:
        return str(field.deserialize(value))
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, list) else ["Indirizzo e-mail non valido."]
        raise InvalidInput("Indirizzo e-mail non valido.", errors={"applicant.email": messages}) from exc


def _keep(request: SadRequest, data: Any, *, complete: bool, now: dt.datetime, config: SadConfig) -> None:
    """Put ``data`` on a draft: the whole form validated, or (``complete=False``) as the citizen typed it.

    A half-filled draft keeps every value, right or wrong, so nothing typed is lost; only the
    e-mail address must be usable. The whole form is checked again when the request is presented.
    """
    if complete:
        clean = _jsonable(load(config.schema(), data))
    else:
        email = _draft_email(config, data if isinstance(data, Mapping) else {})
        clean = _jsonable({**data, "applicant": {**data["applicant"], "email": email}})
    comune = (clean.get("beneficiary") or {}).get("comune")
    request.data = clean
    request.comune = comune if comune in dict(config.comuni) else ""
    request.applicant_email = clean["applicant"]["email"]
    request.isee_expired = isee_expired(clean, now.astimezone(ROME).date())


def is_complete(request: SadRequest, config: SadConfig) -> bool:
    """Whether a draft's data pass the whole form (a half-filled one does not, yet)."""
    try:
        load(config.schema(), request.data)
    except InvalidInput:
        return False
    return True


def create_request(session: Session, *, data: Any, now: dt.datetime, config: SadConfig,
                   complete: bool = True) -> SadRequest:
    """Keep the form as a draft (no number yet); the citizen gets a link to resume it.

    The API and "continue" validate the whole form (``complete``); "Salva bozza" on the page
    keeps a half-filled form as typed.
    """
    request = SadRequest(id=str(uuid.uuid4()), tracking_code=new_tracking_code(), status=DRAFT,
                         created_at=now, expires_at=now + config.draft_ttl)
    _keep(request, data, complete=complete, now=now, config=config)
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
                 config: SadConfig, complete: bool = True) -> SadRequest:
    """Change a draft's data (the citizen resumed it from the e-mailed link); expiry is unchanged."""
    request = get_live(session, tracking_code, now)
    if request.status != DRAFT:
        raise Conflict("La richiesta è già stata presentata e non può essere modificata.")
    _keep(request, data, complete=complete, now=now, config=config)
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
    _keep(request, request.data, complete=True, now=now, config=config)  # a saved draft may be half-filled
    request.register_code, request.register_year, request.register_number = services.take_registration(
        session, config.ambito, now)
    request.status, request.case_status = services.RECEIVED, NEW
    request.submitted_at = request.package_requested_at = now
    request.expires_at = None
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
    sections = document_sections(schema, data)
    if request.isee_expired:
        sections.append({"title": "Avvertenze", "fields": [
            {"label": "ISEE", "value": "Scaduto alla data di presentazione"}]})
    assert request.submitted_at is not None
    return _package(request, request, config, kind="sad_request", source_ref=f"{SOURCE_PREFIX}{request.id}",
                    subject=f"Richiesta voucher SAD - {config.comune_name(request.comune)}",
                    file_stem=f"richiesta-sad-{request.tracking_code}",
                    title="Richiesta di voucher per il Servizio di Assistenza Domiciliare (SAD)",
                    sections=sections, declarations=accepted_declarations(schema, data), data=request.data,
                    # Not the files the citizen adds later on request: those go in supplements.
                    attachments=[a for a in request.attachments
                                 if a.supplement_id is None and a.uploaded_at <= request.submitted_at])


def supplement_ref(supplement: SadSupplement) -> str:
    return f"{SOURCE_PREFIX}{supplement.request_id}{SUPPLEMENT_MARK}{supplement.number}"


def supplement_request(supplement: SadSupplement, config: SadConfig) -> dict[str, Any]:
    """The kwargs of ``documents.build_package`` for an "Integrazione documentale".

    Its PDF says who sends it, which request it completes (registration, tracking code and, once
    known, the comune's protocol number) and lists the files, which travel as attachments.
    """
    request = supplement.request
    applicant, beneficiary = request.data["applicant"], request.data["beneficiary"]
    kinds = dict(ATTACHMENT_KINDS)
    about = [{"label": "Richiedente", "value": f"{applicant['first_name']} {applicant['last_name']} "
                                               f"(codice fiscale {applicant['tax_code']})"},
             {"label": "Beneficiario", "value": f"{beneficiary['first_name']} {beneficiary['last_name']} "
                                                f"(codice fiscale {beneficiary['tax_code']})"},
             {"label": "Richiesta integrata",
              "value": f"Richiesta di voucher SAD, {registration_label(request)}"},
             {"label": "Codice della richiesta", "value": group_tracking_code(request.tracking_code)}]
    if request.protocol_number and request.protocol_date:
        about.append({"label": "Protocollo della richiesta",
                      "value": f"n. {request.protocol_number} del {format_date(request.protocol_date)}"})
    asked = [e for e in request.events if e.status == DOCUMENTS_REQUESTED and e.at <= supplement.created_at]
    if asked:
        about.append({"label": "Richiesta del servizio sociale", "value": asked[-1].detail})
    files = [{"label": kinds.get(a.kind, a.kind), "value": f"{a.name} ({uploads.megabytes(a.size)})"}
             for a in supplement.attachments]
    comune = config.comune_name(request.comune)
    return _package(
        request, supplement, config, kind="sad_supplement", source_ref=supplement_ref(supplement),
        subject=f"Integrazione documentale n. {supplement.number} - richiesta voucher SAD - {comune}",
        file_stem=f"integrazione-sad-{request.tracking_code}-{supplement.number}",
        title="Integrazione documentale", sections=[{"title": "Richiesta integrata", "fields": about},
                                                    {"title": "Documenti trasmessi", "fields": files}],
        declarations=[],
        data={"request_tracking_code": request.tracking_code, "supplement": supplement.number,
              "files": [{"name": a.name, "kind": a.kind, "sha256": a.sha256}
                        for a in supplement.attachments]},
        attachments=supplement.attachments)


def _package(request: SadRequest, registered: SadRequest | SadSupplement, config: SadConfig, *, kind: str,
             source_ref: str, subject: str, file_stem: str, title: str, sections: list[dict[str, Any]],
             declarations: list[str], data: Mapping[str, Any],
             attachments: list[SadAttachment]) -> dict[str, Any]:
    """A package for the protocol of the beneficiary's comune, numbered by ``registered`` in our register."""
    ambito, register = config.ambito, config.ambito["register"]
    applicant = request.data["applicant"]
    assert registered.submitted_at is not None and registered.register_number is not None
    return {
        "source": "intake",
        "source_ref": source_ref,
        "callback": "intake.package_status",
        "payload": {
            "kind": kind,
            # Where documents' territorial routing looks for the comune of residence.
            "residence": {"comune": request.comune},
            "subject": subject,
            "file_stem": file_stem,
            "document": {
                "header": {"lead_body": ambito["lead_body"]["name"], "ambito": ambito["name"]},
                "title": title,
                "subtitle": f"Comune di residenza: {config.comune_name(request.comune)}",
                "sections": sections,
                "declarations": declarations,
                "submitted_at": format_datetime(registered.submitted_at),
                "tracking_code": request.tracking_code,
                "registration": registration_label(registered),
            },
            "data": data,
            "meta": {
                "registration": {
                    "ipa_code": register["ipa_code"], "aoo_code": register["aoo_code"],
                    "register_code": registered.register_code,
                    "number": services.format_register_number(registered.register_number),
                    "date": registered.submitted_at.astimezone(ROME).date().isoformat(),
                },
                "sender": {"name": f"{applicant['first_name']} {applicant['last_name']}",
                           "tax_code": applicant["tax_code"], "email": applicant["email"]},
                "recipient": recipient(config, request.comune),
                "subject": subject,
            },
            "attachments": [
                {"name": a.name, "media_type": a.media_type, "sha256": a.sha256, "size": a.size,
                 "content_b64": base64.b64encode(attachment_path(config, a).read_bytes()).decode("ascii")}
                for a in attachments],
        },
    }


def requeue_stale_packages(session: Session, *, now: dt.datetime, older_than: dt.timedelta,
                           config: SadConfig) -> int:
    """Ask documents again for SAD packages (requests, supplements) not confirmed after ``older_than``.

    Documents is idempotent on the source_ref, so asking twice is harmless.
    """
    requeued = 0
    for model, build_request in ((SadRequest, package_request), (SadSupplement, supplement_request)):
        stale = session.scalars(
            select(model).where(model.status == services.RECEIVED,
                                model.package_requested_at <= now - older_than)
            .with_for_update(skip_locked=True)
        ).all()
        for item in stale:
            enqueue(session, OutboxMessage, "documents.build_package", **build_request(item, config))
            item.package_requested_at = now
        requeued += len(stale)
    return requeued


def _package_detail(target: SadRequest | SadSupplement, status: str, what: str) -> str:
    """What the history says of a package's step; ``what`` names the package ("Richiesta", ...)."""
    if status == services.REGISTERED:
        return f"{what} protocollata: n. {target.protocol_number} del {format_date(target.protocol_date)}."
    if status == services.REJECTED:
        return f"{what} – {services.rejection_detail(target).rstrip('.')}."
    return {services.PACKAGED: f"{what}: documenti pronti e sigillati.",
            services.DELIVERED: f"{what} consegnata all'ufficio protocollo del comune."}[status]


def record_package_status(session: Session, *, source_ref: str, package_id: str | None, status: str,
                          protocol: Mapping[str, str] | None, now: dt.datetime,
                          rejection: Mapping[str, Any] | None = None) -> SadRequest | SadSupplement | None:
    """Documents reports on a package of a request or of a supplement: forward only, never back.

    A supplement has its own road: its reports never touch the request's status. A rejection
    is recorded and e-mailed (the citizen has to act); a registered package never moves back.
    """
    request_id, _, number = source_ref.removeprefix(SOURCE_PREFIX).partition(SUPPLEMENT_MARK)
    request = session.get(SadRequest, request_id, with_for_update=True)
    if request is None or request.status == DRAFT:
        log.warning("package_status_unknown_sad_request", source_ref=source_ref)
        return None
    target: SadRequest | SadSupplement | None = request
    if number:
        target = next((s for s in request.supplements if str(s.number) == number), None)
        if target is None:
            log.warning("package_status_unknown_sad_supplement", source_ref=source_ref)
            return None
    if not services.advance_package(target, status=status, package_id=package_id, protocol=protocol,
                                    rejection=rejection):
        return target
    if isinstance(target, SadSupplement):
        detail = _package_detail(target, status, f"Integrazione documentale n. {target.number}")
        status = f"{SUPPLEMENT_EVENT}{status}"
    else:
        detail = _package_detail(target, status, "Richiesta")
        # Not the social worker's rejection of the case ("rejected"): the protocol's of the package.
        status = PROTOCOL_REJECTED if status == services.REJECTED else status
    _event(request, status=status, at=now, actor=SYSTEM, detail=detail, session=session)
    return target


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


def save_care_plan(session: Session, request: SadRequest, identity: Identity, data: Mapping[str, Any],
                   now: dt.datetime, config: SadConfig) -> dict[str, Any]:
    """The PAI, with the hourly co-payment from the (valid) ISEE by the comune's rule in force when it starts.

    The voucher issued from the plan keeps this figure: it is what the family agrees to.
    """
    _require_open(request)
    plan = load(CarePlanSchema(providers=config.providers), data)
    isee = request.data.get("isee") or {}
    isee_cents = None if request.isee_expired else isee.get("value_cents")
    hourly = hourly_copayment(config.copayment, request.comune, isee_cents, plan["start_date"])
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
            # The applicant's e-mail: the family receives a copy of the sealed voucher there.
            beneficiary={"first_name": beneficiary["first_name"], "last_name": beneficiary["last_name"],
                         "tax_code": beneficiary["tax_code"], "email": request.data["applicant"]["email"]},
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


def decide(session: Session, request: SadRequest, identity: Identity, action: str,
           body: Mapping[str, Any], now: dt.datetime, config: SadConfig) -> None:
    """One decision of a social worker, by its API name; the case page posts the same ones."""
    if action == "notes":
        add_note(session, request, identity, body.get("text"), now)
    elif action == "care-plan":
        save_care_plan(session, request, identity, body, now, config)
    elif action == "approve":
        approve(session, request, identity, now, config)
    elif action == "reject":
        reject(session, request, identity, body.get("reason"), now)
    elif action == "request-documents":
        request_documents(session, request, identity, body.get("message"), now)
    else:
        raise NotFound("Azione sconosciuta.")


def documents_sent(session: Session, *, tracking_code: str, now: dt.datetime,
                   config: SadConfig) -> SadRequest:
    """The citizen has uploaded what was asked: the case goes back to the social worker.

    The new files are a supplement, registered and packaged for the comune's protocol like
    the request itself, so the file of the case there is complete.
    """
    request = get_by_code(session, tracking_code)
    if request.case_status != DOCUMENTS_REQUESTED:
        raise Conflict("Non ci sono documenti richiesti per questa domanda.")
    asked = max((e.at for e in request.events if e.status == DOCUMENTS_REQUESTED), default=request.created_at)
    new_files = [a for a in request.attachments if a.supplement_id is None and a.uploaded_at >= asked]
    if not new_files:
        raise InvalidInput("Caricare almeno un documento prima di inviare.",
                           errors={"file": ["Caricare almeno un documento prima di inviare."]})
    register_code, year, number = services.take_registration(session, config.ambito, now)
    supplement = SadSupplement(
        number=len(request.supplements) + 1, created_at=now, status=services.RECEIVED,
        register_code=register_code, register_year=year, register_number=number, package_requested_at=now)
    request.supplements.append(supplement)
    supplement.attachments.extend(new_files)
    session.flush()
    request.case_status = ASSESSMENT
    _event(request, status=ASSESSMENT, at=now, actor=CITIZEN, session=session,
           detail=f"Documenti integrativi inviati dal cittadino ({len(new_files)} file): integrazione "
                  f"documentale n. {supplement.number}, {registration_label(supplement)}; trasmessa al "
                  f"Comune di {config.comune_name(request.comune)}.")
    enqueue(session, OutboxMessage, "documents.build_package", **supplement_request(supplement, config))
    log.info("sad_supplement_sent", request_id=request.id, supplement=supplement.number, files=len(new_files))
    return request


# The voucher (reported by the vouchers service)


def case_label(request: SadRequest) -> str:
    """The case's state in words, with the rank while it waits for budget."""
    label = CASE_LABELS.get(request.case_status or "", "")
    if request.case_status == WAITING_LIST and request.waiting_position:
        return f"{label}, posizione {request.waiting_position}"
    return label


def _euros(cents: int) -> str:
    """``1.234,50 €``, as an Italian office writes money."""
    return f"{cents / 100:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") + " €"


def record_voucher_status(session: Session, *, source_ref: str, status: str,
                          vouchers: list[Mapping[str, Any]], waiting_position: int | None,
                          now: dt.datetime) -> SadRequest | None:
    """The vouchers service reports on the plan's vouchers: assigned, waiting for budget, closed.

    Idempotent: the same state again records nothing and mails nothing (a changed rank on the
    waiting list is kept quietly). A closed case stays closed.
    """
    case_status = VOUCHER_STATUSES.get(status)
    if case_status is None:
        raise ValueError(f"unknown voucher status {status!r}")
    request = session.get(SadRequest, source_ref.removeprefix(SOURCE_PREFIX), with_for_update=True) \
        if source_ref.startswith(SOURCE_PREFIX) else None
    if request is None or request.case_status not in (AWAITING_BUDGET, VOUCHER_GRANTED, WAITING_LIST):
        log.warning("voucher_status_ignored", source_ref=source_ref, status=status,
                    case_status=request.case_status if request else None)
        return request
    request.vouchers = [dict(v) for v in vouchers]
    request.waiting_position = waiting_position if case_status == WAITING_LIST else None
    if request.case_status == case_status:
        return request
    request.case_status = case_status
    listed = "; ".join(f"{v.get('profile')} {_euros(int(v.get('value_cents') or 0))}" for v in vouchers)
    detail = {
        VOUCHER_GRANTED: f"Voucher assegnato sul budget del comune ({listed}).",
        WAITING_LIST: "Budget del comune al momento esaurito: la richiesta è in lista d'attesa"
                      + (f", posizione {waiting_position}." if waiting_position else "."),
        VOUCHER_CLOSED: "Voucher chiuso.",
    }[case_status]
    _event(request, status=case_status, at=now, actor=VOUCHER_SERVICE, actor_role="vouchers", detail=detail,
           session=session)
    log.info("sad_voucher_status", request_id=request.id, status=case_status)
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
    # A half-filled draft may not carry the name yet.
    name = " ".join(str(applicant.get(k) or "") for k in ("first_name", "last_name")).strip()
    lines = [f"Gentile {name or 'richiedente'},", "", intro]
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
