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
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import IO, Any

import structlog
from ambito_common.db import session_scope, utcnow
from ambito_common.errors import Conflict, InvalidInput, NotFound, flatten_errors
from ambito_common.outbox import enqueue
from ambito_common.web import ROME
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from .builders import FileRef
from .delivery import DeliveryBackend
from .models import (
    BUILT,
    DELIVERED,
    REGISTERED,
    STATUSES,
    OutboxMessage,
    Package,
    PackageEvent,
    PackageFile,
)
from .schemas import RegistrationSchema
from .storage import PackageStore

log = structlog.get_logger(__name__)

DELIVER_TASK = "documents.deliver_package"
#: The status a package's source is told about, for each status of ours.
CALLBACK_STATUS = {BUILT: "packaged", DELIVERED: DELIVERED, REGISTERED: REGISTERED}


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


def list_packages(session: Session, statuses: Sequence[str] | None = None) -> list[Package]:
    """Packages newest first, optionally only those in ``statuses``."""
    unknown = [status for status in statuses or () if status not in STATUSES]
    if unknown:
        raise InvalidInput("Filtro non valido.", errors={
            "status": ["Stato non valido: usare uno tra " + ", ".join(STATUSES) + "."]})
    query = select(Package).options(selectinload(Package.files)).order_by(
        Package.created_at.desc(), Package.id.desc())
    if statuses:
        query = query.where(Package.status.in_(statuses))
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
        }
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed build payload: missing {exc}") from exc


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
    kwargs: dict[str, Any] = {"source_ref": package.source_ref, "package_id": package.id,
                              "status": CALLBACK_STATUS[package.status]}
    if package.status == REGISTERED:
        kwargs["protocol"] = protocol_of(package)
    enqueue(session, OutboxMessage, package.callback, **kwargs)


def protocol_of(package: Package) -> dict[str, str] | None:
    if package.protocol_number is None or package.protocol_date is None:
        return None
    return {"number": package.protocol_number, "date": package.protocol_date.isoformat()}


# --------------------------------------------------------------------------- delivering


def deliver_package(session: Session, package_id: str, backend: DeliveryBackend) -> Package:
    """Hand a built package to the protocol; a package already delivered only re-sends its status."""
    package = get_package(session, package_id, for_update=True)
    if package.status == BUILT:
        detail = backend.deliver(session, package)
        package.status = DELIVERED
        package.delivered_at = utcnow()
        package.events.append(PackageEvent(event="delivered", detail=detail))
        log.info("package_delivered", package_id=package.id, source_ref=package.source_ref,
                 backend=backend.name)
    enqueue_status(session, package)
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
    if package.status != DELIVERED:
        raise Conflict("Il pacchetto non è ancora stato consegnato alla casella del protocollo.")
    package.status = REGISTERED
    package.protocol_number = number
    package.protocol_date = date
    package.registered_by = actor
    package.registered_at = utcnow()
    package.events.append(PackageEvent(
        event="registered", actor=actor,
        detail=f"Protocollo n. {number} del {date:%d/%m/%Y}"))
    enqueue_status(session, package)
    log.info("package_registered", package_id=package.id, source_ref=package.source_ref,
             protocol_number=number)
    return package


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
