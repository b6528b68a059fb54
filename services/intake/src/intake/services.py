"""The rules of intake: open and closed calls, accepting an application, its life afterwards.

Every function takes a session and plain values (and an explicit ``now``, so a
test can stand one second either side of a deadline) and raises domain errors;
the caller commits. Accepting an application is one transaction: the row, its
first event, the next number of our register and the outbox messages that ask
documents for the package and send the receipt. If any of it fails, nothing
is written and no number is used, so the register stays gapless.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from ambito_common.errors import Conflict, NotFound
from ambito_common.forms import accepted_declarations, document_sections, load
from ambito_common.mail import send_mail
from ambito_common.outbox import enqueue
from ambito_common.settings import PlatformSettings
from ambito_common.web import ROME, format_date, format_datetime
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from .codes import group_tracking_code, new_tracking_code, normalise_tracking_code
from .models import Application, ApplicationEvent, Call, OutboxMessage, RegisterCounter
from .schemas import ApplicationSchema

log = structlog.get_logger(__name__)

RECEIVED, PACKAGED, DELIVERED, REGISTERED = "received", "packaged", "delivered", "registered"
STATUSES = (RECEIVED, PACKAGED, DELIVERED, REGISTERED)
# Off the road: the protocol refused the package (contract: documents reports it with a reason).
REJECTED = "rejected"
STATUS_LABELS = {
    RECEIVED: "ricevuta",
    PACKAGED: "documenti pronti",
    DELIVERED: "consegnata al protocollo",
    REGISTERED: "protocollata",
    REJECTED: "Respinta dal protocollo",
}
OPEN, CLOSED = "open", "closed"

REGISTER_DIGITS = 7


# Calls


def deadline_instant(date: dt.date, time: dt.time, timezone: str = "Europe/Rome") -> dt.datetime:
    """The instant a call closes: its published local date and time, in UTC."""
    return dt.datetime.combine(date, time, tzinfo=ZoneInfo(timezone)).astimezone(dt.UTC)


def call_status(call: Call, now: dt.datetime) -> str:
    """Open up to and including the deadline instant, closed from the next moment."""
    return OPEN if now <= call.deadline else CLOSED


def list_calls(session: Session, now: dt.datetime) -> list[Call]:
    """Open calls first (the nearest deadline first), then closed ones, the latest first."""
    calls = session.scalars(select(Call).options(selectinload(Call.areas))).all()
    open_calls = sorted((c for c in calls if call_status(c, now) == OPEN), key=lambda c: c.deadline)
    closed_calls = sorted((c for c in calls if call_status(c, now) == CLOSED),
                          key=lambda c: c.deadline, reverse=True)
    return open_calls + closed_calls


def get_call(session: Session, slug: str) -> Call:
    call = session.scalar(select(Call).where(Call.slug == slug))
    if call is None:
        raise NotFound("Avviso non trovato.")
    return call


def application_schema(call: Call) -> ApplicationSchema:
    """The application form of ``call``: its areas, its own words for the declarations."""
    return ApplicationSchema(areas=[(a.code, a.title) for a in call.areas],
                             declarations=call.content.get("declarations", {}))


def when(instant: dt.datetime) -> str:
    """``02/10/2024 alle 23:59``, in Europe/Rome."""
    return f"{format_date(instant)} alle {instant.astimezone(ROME):%H:%M}"


def closed_detail(call: Call) -> str:
    return f"L'avviso è chiuso: il termine per presentare la domanda è scaduto il {when(call.deadline)}."


# Register numbers


def format_register_number(number: int) -> str:
    return f"{number:0{REGISTER_DIGITS}d}"


def registration_label(application: Application) -> str:
    """``n. 0000001 del 21/11/2026 (registro istanze online)``, as an office writes it.

    Plain text: the receipt page, its e-mail, the application's history and the PDF all show it.
    The register is named after its code (``ISTANZE_ONLINE``), which is an identifier, not words.
    """
    register = application.register_code.replace("_", " ").lower()
    return (f"n. {format_register_number(application.register_number)} "
            f"del {format_date(application.submitted_at)} (registro {register})")


def next_register_number(session: Session, register_code: str, year: int) -> int:
    """Take the next number of ``register_code`` for ``year`` inside the caller's transaction.

    The counter row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite
    serialises writers with BEGIN IMMEDIATE), so concurrent acceptances queue
    here and a rolled-back one gives its number back: no gaps, no repeats.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(RegisterCounter)
                    .values(register_code=register_code, year=year, last_number=0)
                    .on_conflict_do_nothing(index_elements=["register_code", "year"]))
    counter = session.scalars(
        select(RegisterCounter)
        .where(RegisterCounter.register_code == register_code, RegisterCounter.year == year)
        .with_for_update().execution_options(populate_existing=True)
    ).one()
    counter.last_number += 1
    return counter.last_number


def take_registration(session: Session, ambito: Mapping[str, Any], now: dt.datetime) -> tuple[str, int, int]:
    """Register code, year and the next number for what is received ``now``.

    Applications, SAD requests and their supplements share the Ambito's
    register, so they are numbered in one place (see next_register_number).
    """
    register_code = ambito["register"]["register_code"]
    year = now.astimezone(ROME).year
    return register_code, year, next_register_number(session, register_code, year)


def package_steps(status: str, labels: Sequence[tuple[str, str]],
                  events: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The steps of a package's road to the protocol for a tracking page, ``labels`` in its words.

    A package the protocol rejected was received and went no further. The
    receipt of an application also shows when each step happened (``events``
    by status) and which one it is at.
    """
    reached = STATUSES.index(status) if status in STATUSES else 0
    return [{"label": label, "done": STATUSES.index(step) <= reached,
             "current": events is not None and step == status,
             "event": events.get(step) if events is not None else None}
            for step, label in labels]


# Accepting an application


def submit_application(session: Session, *, call_slug: str, data: Any, now: dt.datetime,
                       ambito: Mapping[str, Any]) -> Application:
    """Accept an organisation's application to a call, or raise why not.

    - unknown call: NotFound (404);
    - after the deadline: Conflict (409) naming the closing date;
    - invalid data: InvalidInput (422) with messages per dotted field path;
    - a second application by the same organisation (same normalised codice
      fiscale / partita IVA) to the same call: Conflict (409) whose detail and
      ``tracking_code`` name the application already received. A call takes one
      expression of interest per organisation; to change it, the organisation
      writes to the Ambito, which keeps the register and the protocol
      consistent with what was actually sent.
    """
    call = get_call(session, call_slug)
    if call_status(call, now) == CLOSED:
        raise Conflict(closed_detail(call), deadline=call.deadline.astimezone(ROME).isoformat())
    schema = application_schema(call)
    clean = load(schema, data)
    # Taking the number first also serialises acceptances, so the duplicate check cannot race.
    register_code, year, number = take_registration(session, ambito, now)
    tax_code = clean["organisation"]["tax_code"]
    existing = session.scalar(select(Application).where(
        Application.call_id == call.id, Application.organisation_tax_code == tax_code))
    if existing is not None:
        raise Conflict(
            f"L'ente con codice fiscale {tax_code} ha già presentato una domanda per questo avviso "
            f"il {when(existing.submitted_at)}, con codice di "
            f"tracciamento {group_tracking_code(existing.tracking_code)}. Per modificarla scriva "
            f"all'Ambito: {ambito['lead_body']['email']}.",
            tracking_code=existing.tracking_code,
            submitted_at=existing.submitted_at.astimezone(ROME).isoformat())
    application = Application(
        id=str(uuid.uuid4()), call=call, tracking_code=new_tracking_code(),
        organisation_tax_code=tax_code, data=clean, status=RECEIVED,
        register_code=register_code, register_year=year, register_number=number,
        submitted_at=now, package_requested_at=now)
    application.events.append(ApplicationEvent(
        at=now, status=RECEIVED, detail=f"Domanda ricevuta e registrata: {registration_label(application)}."))
    session.add(application)
    enqueue(session, OutboxMessage, "documents.build_package", **package_request(application, ambito))
    enqueue(session, OutboxMessage, "intake.send_receipt", application_id=application.id)
    session.flush()
    log.info("application_accepted", application_id=application.id, call=call.slug,
             register_number=number, register_year=year)
    return application


def package_request(application: Application, ambito: Mapping[str, Any]) -> dict[str, Any]:
    """The kwargs of ``documents.build_package`` for an application (same every time it is asked)."""
    call = application.call
    schema = application_schema(call)
    data = application.data
    organisation = data["organisation"]
    register = ambito["register"]
    lead = ambito["lead_body"]
    subject = f"Manifestazione d'interesse - {call.title} - {organisation['name']}"
    return {
        "source": "intake",
        "source_ref": f"application:{application.id}",
        "callback": "intake.package_status",
        "payload": {
            "kind": "coprogramming_application",
            "subject": subject,
            "file_stem": f"domanda-{application.tracking_code}",
            "document": {
                "header": {"lead_body": lead["name"], "ambito": ambito["name"]},
                "title": "Domanda di partecipazione alla co-programmazione",
                "subtitle": call.title,
                "sections": document_sections(schema, data),
                "declarations": accepted_declarations(schema, data),
                "submitted_at": format_datetime(application.submitted_at),
                "tracking_code": application.tracking_code,
                "registration": registration_label(application),
            },
            "data": data,
            "meta": {
                "registration": {
                    "ipa_code": register["ipa_code"], "aoo_code": register["aoo_code"],
                    "register_code": application.register_code,
                    "number": format_register_number(application.register_number),
                    "date": application.submitted_at.astimezone(ROME).date().isoformat(),
                },
                "sender": {"name": organisation["name"], "tax_code": organisation["tax_code"],
                           "pec": organisation["pec"], "email": organisation["email"]},
                "recipient": {"name": lead["name"], "ipa_code": lead["ipa_code"],
                              "aoo_code": lead["aoo_code"], "aoo_name": register["aoo_name"],
                              "pec": lead["pec"]},
                "subject": subject,
            },
        },
    }


# After acceptance


def get_application(session: Session, tracking_code: str) -> Application:
    code = normalise_tracking_code(tracking_code)
    application = None
    if code is not None:
        application = session.scalar(select(Application).where(Application.tracking_code == code))
    if application is None:
        raise NotFound("Nessuna domanda corrisponde a questo codice di tracciamento. "
                       "Controlli il codice ricevuto alla presentazione.")
    return application


def advance_package(target: Any, *, status: str, package_id: str | None, protocol: Mapping[str, str] | None,
                    rejection: Mapping[str, Any] | None) -> bool:
    """Apply documents' report to ``target`` (an application, a SAD request or supplement): True if it moved.

    Forward only (received → packaged → delivered → registered): messages arrive at least once
    and not always in order, so a repeated or late one changes nothing. A rejection by the
    protocol takes the package off that road, except a registered one, which nothing moves back;
    after a rejection only a registration (the office registered it after all) moves it again.
    """
    if status not in (*STATUSES, REJECTED):
        raise ValueError(f"unknown package status {status!r}")
    if package_id and not target.package_id:
        target.package_id = package_id
    current = target.status
    if current in (REGISTERED, status):
        return False
    if status == REJECTED:
        target.rejection_code = str((rejection or {}).get("code") or "")[:64] or None
        target.rejection_reason = str((rejection or {}).get("reason") or "").strip() or \
            "Motivo non indicato dall'ufficio protocollo."
    elif not _forward(current, status):
        return False
    if status == REGISTERED:
        if not protocol or not protocol.get("number") or not protocol.get("date"):
            raise ValueError("a registered package needs protocol number and date")
        target.protocol_number = protocol["number"]
        target.protocol_date = dt.date.fromisoformat(protocol["date"])
    target.status = status
    return True


def _forward(current: str, status: str) -> bool:
    if current == REJECTED:
        return status == REGISTERED
    return STATUSES.index(status) > STATUSES.index(current)


def rejection_detail(target: Any) -> str:
    """``Respinta dal protocollo: <reason> (codice <code>)``, as the citizen reads it."""
    code = f" (codice {target.rejection_code})" if target.rejection_code else ""
    return f"{STATUS_LABELS[REJECTED]}: {target.rejection_reason}{code}"


def record_package_status(session: Session, *, source_ref: str, package_id: str | None, status: str,
                          protocol: Mapping[str, str] | None, now: dt.datetime,
                          rejection: Mapping[str, Any] | None = None) -> Application | None:
    """Move an application forward (received → packaged → delivered → registered), never back.

    A rejection by the protocol is recorded and e-mailed to the organisation, which has to act.
    """
    kind, _, application_id = source_ref.partition(":")
    application = session.get(Application, application_id, with_for_update=True) \
        if kind == "application" else None
    if application is None:
        if status not in (*STATUSES, REJECTED):
            raise ValueError(f"unknown package status {status!r}")
        log.warning("package_status_unknown_application", source_ref=source_ref)
        return None
    if not advance_package(application, status=status, package_id=package_id, protocol=protocol,
                           rejection=rejection):
        return application
    detail = {PACKAGED: "Documenti della domanda pronti e sigillati.",
              DELIVERED: "Domanda consegnata all'ufficio protocollo dell'ente capofila."}.get(status, "")
    if status == REGISTERED:
        detail = (f"Domanda protocollata: n. {application.protocol_number} "
                  f"del {format_date(application.protocol_date)}.")
    elif status == REJECTED:
        detail = rejection_detail(application)[:500]
    event = ApplicationEvent(at=now, status=status, detail=detail)
    application.events.append(event)
    if status == REJECTED:
        session.flush()
        enqueue(session, OutboxMessage, "intake.send_application_update", event_id=event.id)
    log.info("application_status", application_id=application.id, status=status)
    return application


def requeue_stale_packages(session: Session, *, now: dt.datetime, older_than: dt.timedelta,
                           ambito: Mapping[str, Any]) -> int:
    """Ask documents again for packages not confirmed after ``older_than``; returns how many.

    The embedded filesystem broker can lose a message when a process dies at
    the wrong moment; documents is idempotent on (source, source_ref), so
    asking twice is harmless and asking again is what makes the flow complete.
    """
    stale = session.scalars(
        select(Application).where(Application.status == RECEIVED,
                                  Application.package_requested_at <= now - older_than)
        .with_for_update(skip_locked=True)
    ).all()
    for application in stale:
        enqueue(session, OutboxMessage, "documents.build_package", **package_request(application, ambito))
        application.package_requested_at = now
        log.info("package_requeued", application_id=application.id)
    return len(stale)


def tracking_url(platform: PlatformSettings, application: Application) -> str:
    return f"{platform.public_url}/intake/domande/{application.tracking_code}"


def _organisation_message(application: Application, platform: PlatformSettings,
                          ambito: Mapping[str, Any], subject: str) -> EmailMessage:
    """A mail to the organisation, copied to its contact person; replies go to the lead comune."""
    organisation, contact = application.data["organisation"], application.data["contact_person"]
    message = EmailMessage()
    message["From"] = platform.mail_from
    message["To"] = organisation["email"]
    if contact["email"].lower() != organisation["email"].lower():
        message["Cc"] = contact["email"]
    message["Reply-To"] = ambito["lead_body"]["email"]
    message["Subject"] = subject
    return message


def receipt_message(application: Application, platform: PlatformSettings,
                    ambito: Mapping[str, Any]) -> EmailMessage:
    """The Italian receipt for the organisation, copied to its contact person."""
    data = application.data
    organisation = data["organisation"]
    code = group_tracking_code(application.tracking_code)
    areas = {a.code: a.title for a in application.call.areas}
    message = _organisation_message(application, platform, ambito, f"Domanda ricevuta - codice {code}")
    message.set_content("\n".join([
        f"Spettabile {organisation['name']},",
        "",
        "la domanda di partecipazione all'avviso",
        f"«{application.call.title}»",
        f"è stata ricevuta il {when(application.submitted_at)}.",
        "",
        f"Codice di tracciamento: {code}",
        f"Registrazione: {registration_label(application)}",
        "Aree tematiche: " + ", ".join(areas.get(c, c) for c in data["areas"]),
        "",
        "La domanda viene ora trasmessa all'ufficio protocollo dell'ente capofila. "
        "Può seguirne lo stato, e leggere il numero di protocollo quando sarà assegnato, a questo indirizzo:",
        tracking_url(platform, application),
        "",
        f"Per informazioni scriva a {ambito['lead_body']['email']}.",
        "",
        ambito["name"],
        "",
        "Messaggio generato automaticamente.",
    ]))
    return message


def send_receipt(session: Session, *, application_id: str, platform: PlatformSettings,
                 ambito: Mapping[str, Any], now: dt.datetime) -> bool:
    """Send the receipt once; returns False if there was nothing (more) to send.

    SMTP errors propagate so the task retries; the mail may go twice if the
    commit after sending fails, never zero times.
    """
    application = session.get(Application, application_id)
    if application is None:
        log.warning("receipt_unknown_application", application_id=application_id)
        return False
    if application.receipt_sent_at is not None:
        return False
    send_mail(platform.smtp_url, receipt_message(application, platform, ambito))
    application.receipt_sent_at = now
    log.info("receipt_sent", application_id=application_id)
    return True


def update_message(event: ApplicationEvent, platform: PlatformSettings,
                   ambito: Mapping[str, Any]) -> EmailMessage:
    """News the organisation must act on (the protocol refused the application), copied to its contact."""
    application = event.application
    organisation = application.data["organisation"]
    code = group_tracking_code(application.tracking_code)
    message = _organisation_message(
        application, platform, ambito,
        f"Domanda {STATUS_LABELS.get(event.status, event.status).lower()} - codice {code}")
    message.set_content("\n".join([
        f"Spettabile {organisation['name']},", "",
        f"la domanda di partecipazione all'avviso «{application.call.title}» ha un aggiornamento "
        f"({format_datetime(event.at)}):", "", event.detail, "",
        "Lo stato della domanda è consultabile a questo indirizzo:", tracking_url(platform, application), "",
        f"Per informazioni scriva a {ambito['lead_body']['email']}.", "", ambito["name"], "",
        "Messaggio generato automaticamente."]))
    return message


def send_update(session: Session, *, event_id: int, platform: PlatformSettings, ambito: Mapping[str, Any],
                now: dt.datetime) -> bool:
    """E-mail the organisation about one event, once (SMTP errors propagate so the task retries)."""
    event = session.get(ApplicationEvent, event_id)
    if event is None or event.notified_at is not None:
        return False
    send_mail(platform.smtp_url, update_message(event, platform, ambito))
    event.notified_at = now
    return True
