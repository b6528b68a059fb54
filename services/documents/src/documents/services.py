"""The rules of the documents service: building, delivering and registering packages.

Every step is keyed by business ids and safe to repeat, because messages are
delivered at least once: a package is built once per ``(source, source_ref)``,
a delivered package is not delivered again, and a repeated step only repeats
the status callback (the receiving side moves its status only forward).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formataddr
from pathlib import Path
from typing import IO, Any

import structlog
from ambito_common.db import session_scope, utcnow
from ambito_common.errors import Conflict, InvalidInput, NotFound, flatten_errors
from ambito_common.mail import send_mail
from ambito_common.outbox import enqueue
from ambito_common.settings import PlatformSettings
from ambito_common.web import ROME
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from .builders import FileRef, registration_number
from .delivery import Delivery, DeliveryBackend, DeliveryUncertain
from .models import (
    BUILT,
    DELIVERED,
    REGISTERED,
    REJECTED,
    SENT,
    STATUSES,
    OutboxMessage,
    Package,
    PackageEvent,
    PackageFile,
    PackageReply,
)
from .replies import ReplyError, parse_reply
from .schemas import RegistrationSchema
from .storage import PackageStore

log = structlog.get_logger(__name__)

DELIVER_TASK = "documents.deliver_package"
COPIES_TASK = "documents.send_copies"
#: The status a package's source is told about, for each status of ours it knows (a sent
#: PEC is not yet delivered, so the source still sees "packaged").
CALLBACK_STATUS = {BUILT: "packaged", DELIVERED: DELIVERED, REGISTERED: REGISTERED, REJECTED: REJECTED}
#: Statuses from which a protocol number can be recorded (by hand or by a Conferma.xml).
REGISTRABLE = (SENT, DELIVERED)


# --------------------------------------------------------------------------- reading


def find_package(session: Session, source: str, source_ref: str) -> Package | None:
    return session.scalar(select(Package).where(Package.source == source,
                                                Package.source_ref == source_ref))


def get_package(session: Session, package_id: str, *, for_update: bool = False) -> Package:
    query = select(Package).where(Package.id == package_id).options(
        selectinload(Package.files), selectinload(Package.events))
    package = session.scalar(query.with_for_update() if for_update else query)
    if package is None:
        raise NotFound("Pacchetto non trovato.")
    return package


def list_packages(session: Session, statuses: Sequence[str] | None = None, *, search: str = "",
                  failed: bool = False) -> list[Package]:
    """Packages newest first, optionally only those in ``statuses`` (``failed``: also built
    packages whose delivery failed) and matching ``search`` (subject, sender, tracking code)."""
    unknown = [status for status in statuses or () if status not in STATUSES]
    if unknown:
        raise InvalidInput("Filtro non valido.", errors={
            "status": ["Stato non valido: usare uno tra " + ", ".join(STATUSES) + "."]})
    query = select(Package).options(selectinload(Package.files)).order_by(
        Package.created_at.desc(), Package.id.desc())
    if statuses:
        wanted = Package.status.in_(statuses)
        if failed:
            wanted = wanted | ((Package.status == BUILT) & Package.delivery_error.is_not(None))
        query = query.where(wanted)
    elif failed:
        query = query.where(Package.status == BUILT, Package.delivery_error.is_not(None))
    words = search.split()
    for word in words[:5]:
        pattern = f"%{word}%"
        # The tracking code is in the primary document's name (domanda-<tracking>.pdf).
        in_files = select(PackageFile.id).where(PackageFile.package_id == Package.id,
                                                PackageFile.name.ilike(pattern)).exists()
        query = query.where(Package.subject.ilike(pattern) | Package.sender_name.ilike(pattern)
                            | Package.sender_pec.ilike(pattern) | Package.sender_email.ilike(pattern)
                            | Package.source_ref.ilike(pattern) | in_files)
    return list(session.scalars(query))


# --------------------------------------------------------------------------- building


def package_header(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The package's own columns, read from a build payload (see CONTEXT: cross-service flow).

    Checked before the expensive build so that a malformed message fails at once with a
    clear reason instead of halfway through rendering.
    """
    try:
        meta = payload["meta"]
        sender, recipient = meta["sender"], meta["recipient"]
        return {
            "kind": str(payload["kind"]),
            "subject": str(payload.get("subject") or meta["subject"])[:500],
            "sender_name": str(sender["name"]),
            "sender_pec": sender.get("pec") or None,
            "sender_email": sender.get("email") or None,
            "recipient_name": str(recipient["name"]),
            "recipient_pec": str(recipient["pec"]),
            "size_limit": int(recipient["pec_max_bytes"]) if recipient.get("pec_max_bytes") else None,
            "registration_key": registration_key(meta.get("registration") or {}),
        }
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed build payload: missing {exc}") from exc


def courtesy_copies(payload: Mapping[str, Any]) -> list[dict[str, str]]:
    """``meta["copies"]``: who gets the sealed document by e-mail once it is built (contract 4),
    one entry per address whatever its spelling, checked before the build like the header."""
    copies: dict[str, dict[str, str]] = {}
    for entry in payload.get("meta", {}).get("copies") or ():
        try:
            address = str(entry["email"]).strip()
            name = str(entry.get("name") or "").strip()
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed build payload: bad courtesy copy {entry!r}") from exc
        if "@" not in address or any(c in address for c in " ,;<>\r\n"):
            raise ValueError(f"malformed build payload: bad courtesy copy address {address!r}")
        copies.setdefault(address.lower(), {"name": name[:300], "email": address[:254]})
    return list(copies.values())


def registration_key(registration: Mapping[str, Any]) -> str | None:
    """``"<register>/<number>/<date>"``: how our registration is named in the Segnatura's
    Identificatore and, by the recipient, in a Conferma's MessaggioRicevuto."""
    code, number, date = (registration.get(k) for k in ("register_code", "number", "date"))
    if not (code and number and date):
        return None
    return f"{code}/{registration_number(number)}/{date}"


def build_package(
    session_factory: sessionmaker[Session],
    store: PackageStore,
    build: Callable[[dict[str, Any]], list[FileRef]],
    *,
    source: str,
    source_ref: str,
    callback: str,
    payload: dict[str, Any],
    seal_detail: str,
) -> str:
    """Build, store and record the package for ``(source, source_ref)`` once; returns its id.

    No session is held while rendering and sealing (seconds): on SQLite an open
    write transaction would block every other writer. Two builders racing on the
    same reference both build, the unique key lets one insert win, and the loser
    drops its files and answers with the winner's package.
    """
    with session_scope(session_factory) as session:
        existing = find_package(session, source, source_ref)
        if existing is not None:
            log.info("package_build_duplicate", source_ref=source_ref, package_id=existing.id,
                     status=existing.status)
            enqueue_status(session, existing)
            return existing.id

    header = package_header(payload)
    copies = courtesy_copies(payload)
    package_id = str(uuid.uuid4())
    log.info("package_build_start", source=source, source_ref=source_ref, package_id=package_id)
    started = time.perf_counter()
    files = build(payload)
    store.write(package_id, files)
    try:
        with session_scope(session_factory) as session:
            package = Package(id=package_id, source=source, source_ref=source_ref,
                              callback=callback, status=BUILT, created_at=utcnow(),
                              message_id=_message_id(files),
                              total_size=sum(file.size for file in files), **header)
            package.files = [PackageFile(position=position, name=file.name, role=file.role,
                                         media_type=file.media_type, sha256=file.sha256,
                                         size=file.size)
                             for position, file in enumerate(files)]
            package.events = [
                PackageEvent(event="built", detail=f"{len(files)} file, {human_size(package.total_size)}"),
                PackageEvent(event="sealed", detail=seal_detail),
            ]
            session.add(package)
            session.flush()
            enqueue_status(session, package)
            if copies:  # chained after the build, in the same commit: never lost, never early
                enqueue(session, OutboxMessage, COPIES_TASK, package_id=package_id, copies=copies)
    except IntegrityError:
        store.remove(package_id)
        with session_scope(session_factory) as session:
            existing = find_package(session, source, source_ref)
        if existing is None:
            raise
        log.info("package_build_lost_race", source_ref=source_ref, package_id=existing.id,
                 discarded=package_id)
        return existing.id
    log.info("package_build_done", source_ref=source_ref, package_id=package_id, files=len(files),
             size=package.total_size, ms=round((time.perf_counter() - started) * 1000))
    return package_id


def _message_id(files: Sequence[FileRef]) -> str | None:
    message = next((file for file in files if file.role == "message"), None)
    if message is None:
        return None
    value = BytesHeaderParser().parsebytes(message.data).get("Message-ID")
    return str(value).strip()[:255] if value else None


def enqueue_status(session: Session, package: Package) -> None:
    """Tell the package's source where it stands (and keep a built package moving on).

    Called for every transition and again whenever a step is repeated, so a
    callback lost with a crashed worker is sent again by the next delivery.
    """
    if package.status == BUILT:
        enqueue(session, OutboxMessage, DELIVER_TASK, package_id=package.id)
    if package.status not in CALLBACK_STATUS:
        return
    kwargs: dict[str, Any] = {"source_ref": package.source_ref, "package_id": package.id,
                              "status": CALLBACK_STATUS[package.status]}
    if package.status == REGISTERED:
        kwargs["protocol"] = protocol_of(package)
    elif package.status == REJECTED:
        # The source tells its submitter why (contract: rejection={"code", "reason"}).
        kwargs["rejection"] = {"code": package.rejection_code, "reason": package.rejection_reason}
    enqueue(session, OutboxMessage, package.callback, **kwargs)


def protocol_of(package: Package) -> dict[str, str] | None:
    if package.protocol_number is None or package.protocol_date is None:
        return None
    return {"number": package.protocol_number, "date": package.protocol_date.isoformat()}


# --------------------------------------------------------------------------- courtesy copies


COPY_SENT = "copy_sent"


def send_copies(session_factory: sessionmaker[Session], store: PackageStore, platform: PlatformSettings,
                *, package_id: str, copies: Sequence[Mapping[str, str]]) -> int:
    """E-mail the sealed primary document to each courtesy copy once; returns how many went now.

    Each address is its own step, committed with its ``copy_sent`` event right after the
    send, so a redelivered task skips the addresses already served. A crash between a
    send and its commit sends that one copy again: a courtesy copy is plain mail, where
    twice is better than never (the PEC to the protocol is guarded more strictly).
    """
    sent = 0
    pdf: bytes | None = None  # read once, for the first address not yet served
    for copy in copies:
        with session_scope(session_factory) as session:
            package = get_package(session, package_id, for_update=True)
            address = copy["email"]
            if any(event.event == COPY_SENT and event.detail.lower() == address.lower()
                   for event in package.events):
                continue
            if pdf is None:
                primary = package.primary_file
                if primary is None:
                    raise ValueError(f"package {package_id} has no primary document")
                pdf = store.path(package.id, primary.name).read_bytes()
            send_mail(platform.smtp_url, copy_message(package, copy, pdf, platform))
            package.events.append(PackageEvent(event=COPY_SENT, detail=address))
            log.info("package_copy_sent", package_id=package_id, to=address)
            sent += 1
    return sent


def copy_message(package: Package, copy: Mapping[str, str], pdf: bytes,
                 platform: PlatformSettings) -> EmailMessage:
    """The courtesy copy: plain platform mail (not PEC) with the sealed PDF attached."""
    message = EmailMessage()
    message["From"] = platform.mail_from
    message["To"] = formataddr((copy.get("name") or "", copy["email"]))
    message["Subject"] = f"Documento sigillato: {package.subject}"
    greeting = f"Gentile {copy['name']}," if copy.get("name") else "Gentile destinatario,"
    message.set_content("\n".join([
        greeting,
        "",
        "le inviamo per conoscenza, in allegato, il documento",
        f"«{package.subject}»,",
        f"sigillato elettronicamente e trasmesso a {package.recipient_name}.",
        "",
        "Il sigillo (PAdES con marca temporale) garantisce l'origine e l'integrità del documento: "
        "può verificarlo con un lettore PDF che mostri le firme, con il certificato pubblicato a",
        f"{platform.public_url}/protocollo/certificati",
        "",
        "Questa è una copia di cortesia: non sostituisce le comunicazioni ufficiali.",
        "Messaggio generato automaticamente: non rispondere a questo indirizzo.",
    ]))
    primary = package.primary_file
    message.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=primary.name if primary else "documento.pdf")
    return message


# --------------------------------------------------------------------------- delivering


class AwaitingReceipt(Exception):
    """An earlier PEC send of this package may have reached the provider: its accettazione
    receipt is awaited for ``remaining`` more before the same message is sent again."""

    def __init__(self, remaining: dt.timedelta) -> None:
        super().__init__(f"awaiting the PEC receipt for {remaining}")
        self.remaining = remaining


def deliver_package(session_factory: sessionmaker[Session], package_id: str, backend: DeliveryBackend,
                    *, resend_after: dt.timedelta) -> str:
    """Hand a built package to the protocol; returns its status (a package already on its
    way only re-sends its status callback).

    A PEC cannot be unsent, and a worker may die after the provider took the message and
    before our commit. So the attempt is committed first, on its own: a later run that finds
    it unresolved does not send blindly but raises :class:`AwaitingReceipt`, because the
    provider's accettazione (matched by Message-ID, see ``record_reply``) settles it. Only
    when none came within ``resend_after`` is the stored message sent again, byte for byte
    and with the same Message-ID, so the recipient can recognise a duplicate; the timeline
    says so.
    """
    with session_scope(session_factory) as session:
        package = get_package(session, package_id, for_update=True)
        if package.status != BUILT:
            enqueue_status(session, package)
            return package.status
        if backend.external:
            _begin_attempt(package, resend_after)
        package.delivery_attempts += 1
    delivery: Delivery | None = None
    try:
        with session_scope(session_factory) as session:
            package = get_package(session, package_id, for_update=True)
            if package.status != BUILT:  # settled meanwhile (a receipt, the officer)
                return package.status
            delivery = backend.deliver(session, package)
            package.status = delivery.status
            if delivery.status == DELIVERED:
                package.delivered_at = utcnow()
            else:
                package.sent_at = utcnow()
            package.delivery_error = None
            package.sending_since = None
            package.events.append(PackageEvent(event=delivery.event, detail=delivery.detail))
            log.info("package_delivered", package_id=package.id, source_ref=package.source_ref,
                     backend=backend.name, status=package.status)
            enqueue_status(session, package)
            return package.status
    except Exception as exc:
        if delivery is None or not backend.external:
            raise
        # Sent, but not recorded (the database failed the commit): the open attempt must
        # stay, or a retry would send the message twice.
        raise DeliveryUncertain(f"inviato, ma l'esito non è stato registrato: {exc}") from exc


def _begin_attempt(package: Package, resend_after: dt.timedelta) -> None:
    now = utcnow()
    if package.sending_since is not None:
        waited = now - package.sending_since
        if waited < resend_after:
            log.info("package_delivery_awaiting_receipt", package_id=package.id,
                     message_id=package.message_id, since=package.sending_since.isoformat())
            raise AwaitingReceipt(resend_after - waited)
        previous = package.sending_since.astimezone(ROME)
        package.events.append(PackageEvent(event="resending", detail=(
            f"Nessuna ricevuta di accettazione per l'invio del {previous:%d/%m/%Y %H:%M} entro"
            f" {_minutes(resend_after)}: il messaggio viene inviato di nuovo, identico e con lo stesso "
            f"Message-ID {package.message_id}, così il destinatario può riconoscere un eventuale doppione.")))
        log.warning("package_delivery_resend", package_id=package.id, message_id=package.message_id)
    package.sending_since = now


def _minutes(delta: dt.timedelta) -> str:
    minutes = max(1, round(delta.total_seconds() / 60))
    return "1 minuto" if minutes == 1 else f"{minutes} minuti"


def record_delivery_failure(session: Session, package_id: str, error: str, *, retrying: bool,
                            uncertain: bool = False) -> None:
    """Keep a failed delivery visible: the error on the package and a line on its timeline.

    ``uncertain``: the message may have reached the provider, so the attempt stays open and
    the next run waits for its receipt; otherwise it is closed (nothing left our hands).
    """
    package = get_package(session, package_id, for_update=True)
    if package.status != BUILT:
        return
    if not uncertain:
        package.sending_since = None
    package.delivery_error = error[:1000]
    if uncertain:
        suffix = " Si attende la ricevuta di accettazione prima di un nuovo invio."
    else:
        suffix = " Nuovo tentativo automatico a breve." if retrying else ""
    package.events.append(PackageEvent(event="delivery_failed", detail=(error + suffix)[:1000]))
    log.warning("package_delivery_failed", package_id=package.id, error=error, retrying=retrying,
                uncertain=uncertain)


def retry_delivery(session: Session, package_id: str, backend: DeliveryBackend, *, actor: str) -> Package:
    """The protocol officer's "retry now": deliver a package whose delivery failed, at once.

    Not for a package the backend can never deliver (over the recipient's size limit): the
    retry would fail the same way.
    """
    package = get_package(session, package_id, for_update=True)
    if package.status != BUILT:
        raise Conflict("Il pacchetto è già stato consegnato: non c'è nulla da ritentare.")
    refusal = backend.permanent_refusal(package)
    if refusal:
        raise Conflict(f"Un nuovo tentativo non può riuscire. {refusal}")
    package.events.append(PackageEvent(event="retry_requested", actor=actor,
                                       detail="Nuovo tentativo di consegna richiesto"))
    enqueue(session, OutboxMessage, DELIVER_TASK, package_id=package.id)
    return package


# --------------------------------------------------------------------------- registering


def register_protocol(session: Session, package_id: str, data: Mapping[str, Any], *,
                      actor: str) -> Package:
    """Record the protocol number and date the recipient's protocol system assigned.

    The number is never minted here: the protocol officer copies it from the
    protocol system. The same registration entered twice is accepted (a double
    click, a retried request); a different one for a registered package is a
    conflict, because a package is registered once.
    """
    package = get_package(session, package_id, for_update=True)
    number, date = _registration_values(package, data)
    if package.status == REGISTERED:
        if (package.protocol_number, package.protocol_date) == (number, date):
            return package
        recorded = protocol_of(package) or {}
        raise Conflict(
            f"Il pacchetto è già protocollato con il numero {package.protocol_number} "
            f"del {package.protocol_date:%d/%m/%Y}.", protocol=recorded)
    if package.status not in REGISTRABLE:
        raise Conflict("Il pacchetto non è ancora stato consegnato alla casella del protocollo."
                       if package.status == BUILT else "Il pacchetto è stato respinto.")
    mark_registered(package, number, date, actor=actor)
    enqueue_status(session, package)
    return package


def mark_registered(package: Package, number: str, date: dt.date, *, actor: str | None,
                    detail: str = "") -> None:
    """Record the recipient's protocol registration (by hand or from a Conferma.xml)."""
    package.status = REGISTERED
    package.protocol_number = number
    package.protocol_date = date
    package.registered_by = actor
    package.registered_at = utcnow()
    package.events.append(PackageEvent(
        event="registered", actor=actor,
        detail=f"Protocollo n. {number} del {date:%d/%m/%Y}{detail}"))
    log.info("package_registered", package_id=package.id, source_ref=package.source_ref,
             protocol_number=number)


def reject_package(session: Session, package_id: str, reason: str, *, actor: str | None) -> Package:
    """The protocol officer rejects the package by hand, with a reason; the source is told."""
    package = get_package(session, package_id, for_update=True)
    mark_rejected(package, reason, actor=actor)
    enqueue_status(session, package)
    return package


def mark_rejected(package: Package, reason: str, *, actor: str | None, code: str | None = None) -> None:
    """The recipient's protocol refused the package (by hand, or an Eccezione.xml).

    The same rejection recorded twice changes nothing (the caller still repeats the
    status callback, as every repeated step does).
    """
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidInput("Indicare il motivo.", errors={"reason": ["Campo obbligatorio."]})
    if package.status == REJECTED and (package.rejection_code, package.rejection_reason) == (code, reason):
        return
    if package.status not in (BUILT, *REGISTRABLE):
        raise Conflict("Il pacchetto è già protocollato o respinto.")
    package.status = REJECTED
    package.rejection_code = code
    package.rejection_reason = reason[:1000]
    prefix = f"Codice {code}: " if code else ""
    package.events.append(PackageEvent(event="rejected", actor=actor, detail=(prefix + reason)[:1000]))
    log.info("package_rejected", package_id=package.id, code=code)


def _registration_values(package: Package, data: Mapping[str, Any]) -> tuple[str, dt.date]:
    """Validate the registration as a whole, so every wrong field is reported at once."""
    try:
        values = RegistrationSchema().load(data)
        errors: dict[str, list[str]] = {}
    except ValidationError as exc:
        values = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        errors = flatten_errors(exc.messages)
    date = values.get("date")
    if date is not None:
        today = utcnow().astimezone(ROME).date()
        created = package.created_at.astimezone(ROME).date()
        if date > today:
            errors.setdefault("date", []).append("La data non può essere nel futuro.")
        elif date < created:
            errors.setdefault("date", []).append(
                f"La data non può precedere la ricezione del pacchetto ({created:%d/%m/%Y}).")
    if errors:
        raise InvalidInput("Alcuni dati non sono validi.", errors=errors)
    return values["number"], date


# --------------------------------------------------------------------------- files


def verify_files(store: PackageStore, package: Package) -> list[str]:
    """Names of the package's files whose stored bytes no longer match the recorded SHA-256/size."""
    damaged = []
    for file in package.files:
        path = store.path(package.id, file.name)
        if not path.is_file() or path.stat().st_size != file.size or _sha256(path) != file.sha256:
            damaged.append(file.name)
    return damaged


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_zip(store: PackageStore, package: Package, target: IO[bytes]) -> None:
    """The whole package as one .zip, files in their package order."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in package.files:
            archive.write(store.path(package.id, file.name), arcname=file.name)


def zip_name(package: Package) -> str:
    primary = package.primary_file
    stem = Path(primary.name).stem if primary else f"pacchetto-{package.id}"
    return f"{stem}.zip"


def human_size(size: int) -> str:
    """Sizes the way people read them: 980 byte, 12,3 kB, 4,1 MB (decimal units, Italian comma)."""
    if size < 1000:
        return f"{size} byte"
    value, unit = size / 1000, "kB"
    for bigger in ("MB", "GB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.1f} {unit}".replace(".", ",")


# --------------------------------------------------------------------------- replies


def record_reply(session: Session, data: bytes, *, channel: str, actor: str | None = None) -> Package:
    """Apply a reply (Conferma.xml, Eccezione.xml, a PEC receipt) to the package it names.

    Raises :class:`InvalidInput` when it does not parse or names no package we sent, with
    nothing changed. The reply is kept as evidence; the same reply received twice (an IMAP
    poll repeated, an upload retried) is recorded and applied once.
    """
    try:
        reply = parse_reply(data)
    except ReplyError as exc:
        raise InvalidInput("La risposta non è leggibile.", errors={"body": [str(exc)]}) from exc
    query = select(Package).options(selectinload(Package.files), selectinload(Package.events),
                                    selectinload(Package.replies))
    if reply.message_id is not None:
        package = session.scalar(query.where(Package.message_id == reply.message_id).with_for_update())
    else:
        package = session.scalar(query.where(Package.registration_key == reply.registration_key)
                                 .order_by(Package.created_at.desc()).with_for_update())
    if package is None:
        reference = reply.message_id or reply.registration_key
        raise InvalidInput("La risposta non corrisponde ad alcun pacchetto inviato.",
                           errors={"body": [f"nessun pacchetto per {reference}"]})
    digest = hashlib.sha256(data).hexdigest()
    if any(existing.sha256 == digest for existing in package.replies):
        return package
    if reply.kind == "conferma":
        if package.status == REGISTERED:
            recorded = (package.protocol_number, package.protocol_date)
            if recorded != (reply.protocol_number, reply.protocol_date):
                raise Conflict(f"Il pacchetto è già protocollato con il numero {package.protocol_number}.")
        elif package.status in REGISTRABLE:
            # parse_reply guarantees both for a Conferma.
            mark_registered(package, str(reply.protocol_number), reply.protocol_date,  # type: ignore[arg-type]
                            actor=actor, detail=reply.detail)
        else:
            raise Conflict("Il pacchetto non è in attesa di protocollazione.")
    elif reply.kind == "eccezione":
        mark_rejected(package, reply.reason or "", actor=actor, code=reply.code)
    else:
        _apply_receipt(package, reply.kind, reply.detail)
    package.replies.append(PackageReply(kind=reply.kind, channel=channel, media_type=reply.media_type,
                                        sha256=digest, content=data))
    if package.status != BUILT:  # a failed delivery waits for "retry now", not an automatic resend
        enqueue_status(session, package)
    log.info("package_reply", package_id=package.id, kind=reply.kind, channel=channel, status=package.status)
    return package


#: PEC receipt -> timeline event.
RECEIPT_EVENTS = {"accettazione": "accepted", "non-accettazione": "not_accepted",
                  "avvenuta-consegna": "delivered", "errore-consegna": "delivery_error",
                  "preavviso-errore-consegna": "delivery_error"}


def _apply_receipt(package: Package, kind: str, detail: str) -> None:
    event = RECEIPT_EVENTS[kind]
    if package.status == BUILT and package.sending_since is not None and event in ("accepted", "delivered"):
        # The provider got the message of an attempt whose outcome we never learnt (the
        # worker stopped before its commit): it was sent, and must not be sent again.
        package.status = SENT
        package.sent_at = utcnow()
        package.sending_since = None
        package.delivery_error = None
        package.events.append(PackageEvent(event="sent", detail=(
            f"inviato via PEC a {package.recipient_pec} (Message-ID {package.message_id}): "
            f"esito confermato dalla {detail}")[:1000]))
    package.events.append(PackageEvent(event=event, detail=detail[:1000]))
    if event == "delivered" and package.status == SENT:
        package.status = DELIVERED
        package.delivered_at = utcnow()
    elif event in ("not_accepted", "delivery_error") and package.status in (SENT, BUILT):
        # Not in the recipient's mailbox: back to "to deliver", visible with "retry now".
        package.status = BUILT
        package.sending_since = None
        package.delivery_error = detail[:1000]
