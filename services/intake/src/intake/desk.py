"""The Sportello di Tutela Giuridica: its agenda (as data), availability, bookings and their e-mails.

The agenda is ``desk.json`` in the Ambito's data directory: locations with
weekly hours and capacity, slot length, minimum notice and horizon, and the
patron-saint day of each comune that hosts a desk; national holidays come
from the ``holidays`` package (Italy); ad-hoc closures are rows entered by the
Ambito's staff. Capacity is the database's to enforce (see
:class:`intake.models.DeskBooking`): a booking takes the first free seat of
its slot inside a savepoint, and a unique-constraint violation means "taken".
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import holidays
import icalendar
import structlog
from ambito_common.errors import Conflict, Forbidden, InvalidInput, NotFound
from ambito_common.forms import load
from ambito_common.mail import send_mail
from ambito_common.outbox import enqueue
from ambito_common.settings import PlatformSettings
from ambito_common.web import ROME, format_date
from marshmallow import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .desk_schemas import TOPICS, BookingSchema, LocalDateTime
from .models import DeskBooking, DeskClosure, OutboxMessage

log = structlog.get_logger(__name__)

BOOKED, CANCELLED = "booked", "cancelled"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Location:
    code: str
    name: str
    address: str
    comune: str
    capacity: int
    hours: Mapping[str, list[tuple[dt.time, dt.time]]]


@dataclass(frozen=True)
class DeskConfig:
    locations: dict[str, Location]
    slot: dt.timedelta
    min_notice: dt.timedelta
    horizon: dt.timedelta
    patron_days: Mapping[str, tuple[int, int]]  # comune → (month, day)
    link_key: bytes  # signs the manage links (INTAKE_LINK_KEY_FILE)
    comuni: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def load(cls, data_dir: Path, ambito: Mapping[str, Any], link_key: bytes) -> DeskConfig:
        raw = json.loads((data_dir / "desk.json").read_text(encoding="utf-8"))
        locations = {
            loc["code"]: Location(
                code=loc["code"], name=loc["name"], address=loc["address"], comune=loc["comune"],
                capacity=int(loc["capacity"]),
                hours={day: [(dt.time.fromisoformat(a), dt.time.fromisoformat(b)) for a, b in spans]
                       for day, spans in loc["hours"].items()})
            for loc in raw["locations"]}
        patron = {comune: (int(md[:2]), int(md[3:])) for comune, md in raw.get("patron_days", {}).items()}
        return cls(locations=locations, slot=dt.timedelta(minutes=raw["slot_minutes"]),
                   min_notice=dt.timedelta(hours=raw.get("min_notice_hours", 24)),
                   horizon=dt.timedelta(days=raw.get("horizon_days", 60)), patron_days=patron,
                   link_key=link_key, comuni=[(c["code"], c["name"]) for c in ambito["comuni"]])

    def location(self, code: str | None) -> Location:
        if code not in self.locations:
            raise NotFound("Sede dello sportello non trovata.")
        return self.locations[code]

    def schema(self) -> BookingSchema:
        return BookingSchema(locations=[(c, loc.name) for c, loc in self.locations.items()],
                             comuni=self.comuni)


# The agenda


def closed_days(session: Session, config: DeskConfig, location: Location, first: dt.date,
                last: dt.date) -> dict[dt.date, str]:
    """Why the desk is closed on each closed day from ``first`` to ``last`` (inclusive).

    A national holiday's name wins over the patron saint, and both over a staff
    closure's reason. One calendar and one query for the whole range: a booking
    page shows two months.
    """
    national = holidays.country_holidays("IT", years=range(first.year, last.year + 1))
    closures = select(DeskClosure.date, DeskClosure.reason).where(
        DeskClosure.location == location.code, DeskClosure.date >= first, DeskClosure.date <= last)
    reasons: dict[dt.date, str] = {day: reason for day, reason in session.execute(closures)}
    patron = config.patron_days.get(location.comune)
    day = first
    while day <= last:
        if day in national:
            reasons[day] = str(national[day])
        elif patron == (day.month, day.day):
            reasons[day] = "Festa del santo patrono"
        day += dt.timedelta(days=1)
    return reasons


def _slots_of_day(config: DeskConfig, location: Location,
                  day: dt.date) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    for opens, closes in location.hours.get(WEEKDAYS[day.weekday()], []):
        start = dt.datetime.combine(day, opens, tzinfo=ROME)
        end_of_span = dt.datetime.combine(day, closes, tzinfo=ROME)
        while start + config.slot <= end_of_span:
            yield start.astimezone(dt.UTC), (start + config.slot).astimezone(dt.UTC)
            start += config.slot


def _taken(session: Session, location: str, start: dt.datetime, end: dt.datetime) -> dict[dt.datetime, int]:
    rows = session.execute(select(DeskBooking.start, func.count()).where(
        DeskBooking.location == location, DeskBooking.status == BOOKED,
        DeskBooking.start >= start, DeskBooking.start < end).group_by(DeskBooking.start)).all()
    return {when.astimezone(dt.UTC): count for when, count in rows}


def availability(session: Session, config: DeskConfig, *, location: str, first: dt.date, last: dt.date,
                 now: dt.datetime) -> list[dict[str, Any]]:
    """The bookable slots of a location between two dates (inclusive), with the seats left."""
    loc = config.location(location)
    if last < first:
        raise InvalidInput("Intervallo di date non valido.",
                           errors={"to": ["Deve seguire la data iniziale."]})
    earliest, latest = now + config.min_notice, now + config.horizon
    last = min(last, latest.astimezone(ROME).date())
    taken = _taken(session, loc.code, dt.datetime.combine(first, dt.time(), tzinfo=ROME),
                   dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), tzinfo=ROME))
    closed = closed_days(session, config, loc, first, last)
    slots = []
    day = first
    while day <= last:
        if day not in closed:
            for start, end in _slots_of_day(config, loc, day):
                remaining = loc.capacity - taken.get(start, 0)
                if earliest <= start <= latest and remaining > 0:
                    slots.append({"start": start.astimezone(ROME), "end": end.astimezone(ROME),
                                  "location": loc.code, "remaining": remaining})
        day += dt.timedelta(days=1)
    return slots


def _check_slot(session: Session, config: DeskConfig, loc: Location, start: dt.datetime,
                now: dt.datetime) -> dt.datetime:
    """The slot's end if ``start`` is a bookable slot of ``loc``; Conflict (409) otherwise."""
    start = start.astimezone(dt.UTC)
    if start < now + config.min_notice:
        hours = int(config.min_notice.total_seconds() // 3600)
        raise Conflict("L'orario scelto è passato o troppo vicino: "
                       f"si prenota con almeno {hours} ore di anticipo.")
    if start > now + config.horizon:
        raise Conflict(f"Si può prenotare al massimo {config.horizon.days} giorni prima.")
    day = start.astimezone(ROME).date()
    reason = closed_days(session, config, loc, day, day).get(day)
    if reason is not None:
        raise Conflict(f"Lo sportello è chiuso il {format_date(day)}: {reason}.")
    for slot_start, slot_end in _slots_of_day(config, loc, day):
        if slot_start == start:
            return slot_end
    raise Conflict("L'orario scelto non è un orario di apertura dello sportello.")


def _take_seat(session: Session, booking: DeskBooking, capacity: int) -> None:
    """Give ``booking`` (new or moved) the first free seat of its slot, or Conflict: the database decides."""
    for seat in range(1, capacity + 1):
        booking.seat = seat
        try:
            with session.begin_nested():
                session.add(booking)
                session.flush()
            return
        except IntegrityError:  # the seat is taken: the savepoint is gone, try the next one
            continue
    raise Conflict("L'orario scelto non ha più posti disponibili: ne scelga un altro.")


def manage_token(config: DeskConfig, booking: DeskBooking) -> str:
    """The signed token of a booking's manage link; any change raises SEQUENCE and so changes it."""
    digest = hmac.new(config.link_key, f"{booking.id}:{booking.sequence}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def book(session: Session, *, data: Any, now: dt.datetime, config: DeskConfig,
         uid_domain: str) -> tuple[DeskBooking, str]:
    """Book a slot; returns the booking and its manage token (given once, only its hash is kept)."""
    clean = load(config.schema(), data)
    loc = config.location(clean["location"])
    end = _check_slot(session, config, loc, clean["start"], now)
    booking_id = str(uuid.uuid4())
    booking = DeskBooking(
        id=booking_id, uid=f"{booking_id}@{uid_domain}", sequence=0, location=loc.code,
        start=clean["start"].astimezone(dt.UTC), end=end, status=BOOKED, topic=clean["topic"],
        comune=clean["comune"], mode=clean["mode"], email=clean["contact"]["email"],
        data=json.loads(json.dumps({k: clean[k] for k in ("person", "concerning", "contact")}, default=str)),
        created_at=now)
    _take_seat(session, booking, loc.capacity)
    enqueue(session, OutboxMessage, "intake.send_booking_mail", booking_id=booking.id, kind="confirmation",
            sequence=booking.sequence)
    log.info("desk_booked", booking_id=booking.id, location=loc.code, seat=booking.seat)
    return booking, manage_token(config, booking)


def managed(session: Session, booking_id: str, token: str | None, now: dt.datetime,
            config: DeskConfig) -> DeskBooking:
    """The booking a manage link is for: 404 if gone, 403 for a wrong or superseded token."""
    booking = session.get(DeskBooking, booking_id)
    if booking is None or booking.status != BOOKED:
        raise NotFound("Prenotazione inesistente o già annullata.")
    if not token or not hmac.compare_digest(token, manage_token(config, booking)):
        raise Forbidden("Il link non è valido: usi quello dell'ultima e-mail ricevuta.")
    if booking.start <= now:
        raise Forbidden("L'appuntamento è già iniziato: il link non è più utilizzabile.")
    return booking


def cancel(session: Session, *, booking_id: str, token: str | None, now: dt.datetime,
           config: DeskConfig) -> DeskBooking:
    booking = managed(session, booking_id, token, now, config)
    booking.status, booking.seat, booking.cancelled_at = CANCELLED, None, now
    booking.sequence += 1
    enqueue(session, OutboxMessage, "intake.send_booking_mail", booking_id=booking.id, kind="cancellation",
            sequence=booking.sequence)
    return booking


def reschedule(session: Session, *, booking_id: str, token: str | None, start: Any, now: dt.datetime,
               config: DeskConfig) -> tuple[DeskBooking, str]:
    """Move a booking to another slot of its location: same UID, SEQUENCE raised, a new token."""
    booking = managed(session, booking_id, token, now, config)
    try:
        new_start = LocalDateTime().deserialize(start)
    except ValidationError as exc:
        raise InvalidInput("Orario non valido.", errors={"start": ["Orario non valido."]}) from exc
    loc = config.location(booking.location)
    end = _check_slot(session, config, loc, new_start, now)
    old = (booking.start, booking.end, booking.seat)
    booking.start, booking.end = new_start.astimezone(dt.UTC), end
    try:
        _take_seat(session, booking, loc.capacity)
    except Conflict:
        booking.start, booking.end, booking.seat = old
        raise
    booking.sequence += 1
    booking.reminder_sent_at = None
    enqueue(session, OutboxMessage, "intake.send_booking_mail", booking_id=booking.id, kind="confirmation",
            sequence=booking.sequence)
    return booking, manage_token(config, booking)


# The Ambito's staff


def add_closure(session: Session, *, location: str, day: Any, reason: Any, author: str,
                now: dt.datetime, config: DeskConfig) -> tuple[DeskClosure, list[DeskBooking]]:
    """Close a location for a day; returns the live bookings of that day, which must be moved."""
    loc = config.location(location)
    try:
        date = dt.date.fromisoformat(str(day))
    except ValueError as exc:
        raise InvalidInput("Data non valida.", errors={"date": ["Indicare una data AAAA-MM-GG."]}) from exc
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise InvalidInput("Indicare il motivo.", errors={"reason": ["Indicare il motivo della chiusura."]})
    if session.scalar(select(DeskClosure).where(DeskClosure.location == loc.code, DeskClosure.date == date)):
        raise Conflict(f"La sede è già chiusa il {format_date(date)}.")
    closure = DeskClosure(location=loc.code, date=date, reason=text[:300], created_by=author, created_at=now)
    session.add(closure)
    session.flush()
    return closure, day_bookings(session, loc.code, date)


def day_bookings(session: Session, location: str, date: dt.date, days: int = 1) -> list[DeskBooking]:
    """Live bookings of a location from ``date`` for ``days`` days (the operator's agenda)."""
    first = dt.datetime.combine(date, dt.time(), tzinfo=ROME)
    return list(session.scalars(select(DeskBooking).where(
        DeskBooking.location == location, DeskBooking.status == BOOKED, DeskBooking.start >= first,
        DeskBooking.start < first + dt.timedelta(days=days))
        .order_by(DeskBooking.start, DeskBooking.seat)).all())


# Calendar and e-mail


def ics(booking: DeskBooking, config: DeskConfig, *, method: str) -> bytes:
    """The booking as iCalendar: Europe/Rome times, stable UID, SEQUENCE, a reminder alarm."""
    loc = config.location(booking.location)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Ambito Valle Seriana Superiore//Sportello di Tutela Giuridica//IT")
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = icalendar.Event()
    event.add("uid", booking.uid)
    event.add("sequence", booking.sequence)
    event.add("dtstamp", dt.datetime.now(dt.UTC))
    event.add("dtstart", booking.start.astimezone(ROME))
    event.add("dtend", booking.end.astimezone(ROME))
    event.add("summary", f"Sportello di Tutela Giuridica - {dict(TOPICS)[booking.topic]}")
    place = f"{loc.name}, {loc.address}" if booking.mode == "in_person" else "Colloquio telefonico"
    event.add("location", place)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    if method != "CANCEL":
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", "Promemoria: appuntamento allo Sportello di Tutela Giuridica")
        alarm.add("trigger", dt.timedelta(hours=-2))
        event.add_component(alarm)
    calendar.add_component(event)
    return calendar.to_ical()


def manage_url(platform: PlatformSettings, booking: DeskBooking, token: str) -> str:
    return f"{platform.public_url}/intake/sportello/prenotazioni/{booking.id}?token={token}"


def booking_message(booking: DeskBooking, config: DeskConfig, platform: PlatformSettings, *,
                    kind: str) -> EmailMessage:
    loc = config.location(booking.location)
    start = booking.start.astimezone(ROME)
    when = f"{format_date(start)} alle {start:%H:%M}"
    person = booking.data["person"]
    subjects = {"confirmation": f"Appuntamento confermato: {when}",
                "cancellation": f"Appuntamento annullato: {when}",
                "reminder": f"Promemoria: appuntamento di domani alle {start:%H:%M}"}
    lines = [f"Gentile {person['first_name']} {person['last_name']},", ""]
    if kind == "cancellation":
        lines.append(f"l'appuntamento del {when} allo Sportello di Tutela Giuridica è stato annullato.")
    else:
        verb = "le ricordiamo" if kind == "reminder" else "confermiamo"
        lines += [f"{verb} l'appuntamento allo Sportello "
                  f"di Tutela Giuridica il {when}.",
                  f"Sede: {loc.name}, {loc.address}" if booking.mode == "in_person"
                  else "Colloquio telefonico: sarà chiamato al numero indicato.",
                  f"Argomento: {dict(TOPICS)[booking.topic]}"]
        lines += ["", "Per annullare o spostare l'appuntamento (fino all'inizio):",
                  manage_url(platform, booking, manage_token(config, booking))]
    lines += ["", "Messaggio generato automaticamente."]
    message = EmailMessage()
    message["From"] = platform.mail_from
    message["To"] = booking.email
    message["Subject"] = subjects[kind]
    message.set_content("\n".join(lines))
    if kind != "reminder":
        method = "CANCEL" if kind == "cancellation" else "REQUEST"
        message.add_attachment(ics(booking, config, method=method), maintype="text", subtype="calendar",
                               filename="appuntamento.ics", params={"method": method})
    return message


def reminders_due(session: Session, now: dt.datetime) -> list[DeskBooking]:
    """Live bookings of tomorrow (Europe/Rome) not yet reminded."""
    tomorrow = now.astimezone(ROME).date() + dt.timedelta(days=1)
    first = dt.datetime.combine(tomorrow, dt.time(), tzinfo=ROME)
    return list(session.scalars(select(DeskBooking).where(
        DeskBooking.status == BOOKED, DeskBooking.reminder_sent_at.is_(None),
        DeskBooking.start >= first, DeskBooking.start < first + dt.timedelta(days=1))).all())


def send_reminders(session: Session, *, now: dt.datetime, config: DeskConfig,
                   platform: PlatformSettings) -> int:
    sent = 0
    for booking in reminders_due(session, now):
        send_mail(platform.smtp_url, booking_message(booking, config, platform, kind="reminder"))
        booking.reminder_sent_at = now
        session.flush()
        sent += 1
    return sent


def send_booking_mail(session: Session, *, booking_id: str, kind: str, sequence: int, config: DeskConfig,
                      platform: PlatformSettings) -> bool:
    """Send the confirmation or cancellation of one version of a booking; a stale one is skipped.

    A confirmation queued before a later change would carry an outdated link
    and calendar entry, so only the message for the booking's current
    SEQUENCE goes out.
    """
    booking = session.get(DeskBooking, booking_id)
    if booking is None or booking.sequence != sequence:
        return False
    if (kind == "cancellation") != (booking.status == CANCELLED):
        return False
    send_mail(platform.smtp_url, booking_message(booking, config, platform, kind=kind))
    return True
