"""The pages of the Sportello di Tutela Giuridica: booking, the manage link, the operators' agenda.

Without JavaScript: the sede is chosen with a GET form, its free slots come
back as radio buttons of the booking form; the manage page (the e-mailed
link) cancels or moves the booking with plain forms.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ambito_common.db import db_session, utcnow
from ambito_common.errors import Conflict, DomainError, InvalidInput, NotFound
from ambito_common.forms import build_form, parse_form
from ambito_common.identity import AMBITO_ADMIN, current_identity, require_roles
from ambito_common.web import ROME
from flask import Blueprint, current_app, redirect, render_template, request, url_for
from sqlalchemy import select

from . import desk
from .desk_api import uid_domain
from .desk_schemas import MODES, TOPICS, BookingSchema
from .models import DeskBooking

bp = Blueprint("intake_desk_pages", __name__)
SHOWN_DAYS = 28


def _config() -> desk.DeskConfig:
    return current_app.extensions["runtime"].desk


def _slot_choices(location: str, now: dt.datetime,
                  exclude: dt.datetime | None = None) -> list[tuple[str, str]]:
    today = now.astimezone(ROME).date()
    slots = desk.availability(db_session(), _config(), location=location, first=today,
                              last=today + dt.timedelta(days=SHOWN_DAYS), now=now)
    weekdays = ("lun", "mar", "mer", "gio", "ven", "sab", "dom")
    return [(s["start"].isoformat(),
             f"{weekdays[s['start'].weekday()]} {s['start']:%d/%m/%Y} ore {s['start']:%H:%M} "
             f"({s['remaining']} {'posto libero' if s['remaining'] == 1 else 'posti liberi'})")
            for s in slots if s["start"] != exclude]


def _booking_schema(location: str | None, now: dt.datetime) -> BookingSchema:
    schema = _config().schema()
    if location in _config().locations:
        schema.fields["start"].metadata["choices"] = _slot_choices(location, now)
    return schema


def _render_booking(location: str | None, form: Any, status: int = 200, error: str | None = None):  # type: ignore[no-untyped-def]
    return render_template("intake/desk_booking.html", locations=list(_config().locations.values()),
                           location=location, form=form, error=error), status


@bp.get("/intake/sportello")
def booking_page():  # type: ignore[no-untyped-def]
    location = request.args.get("sede")
    schema = _booking_schema(location, utcnow())
    return _render_booking(location, build_form(schema, {"location": location} if location else None))


@bp.post("/intake/sportello")
def book():  # type: ignore[no-untyped-def]
    now = utcnow()
    location = request.form.get("location")
    schema = _booking_schema(location, now)
    data = parse_form(schema, request.form)
    session = db_session()
    try:
        booking, token = desk.book(session, data=data, now=now, config=_config(), uid_domain=uid_domain())
    except InvalidInput as exc:
        session.rollback()
        return _render_booking(location, build_form(schema, data, exc.errors), 422)
    except DomainError as exc:
        session.rollback()
        schema = _booking_schema(location, now)  # the slots, as they are now
        return _render_booking(location, build_form(schema, data), exc.status, exc.detail)
    session.commit()
    return redirect(url_for(".manage", booking_id=booking.id, token=token, nuova=1), 303)


def _render_manage(booking: DeskBooking, token: str, status: int = 200, error: str | None = None):  # type: ignore[no-untyped-def]
    return render_template("intake/desk_manage.html", booking=booking, token=token, error=error,
                           location=_config().location(booking.location), topics=dict(TOPICS),
                           modes=dict(MODES), created=request.args.get("nuova") == "1",
                           slots=_slot_choices(booking.location, utcnow(), exclude=booking.start)), status


@bp.get("/intake/sportello/prenotazioni/<booking_id>")
def manage(booking_id: str):  # type: ignore[no-untyped-def]
    token = request.args.get("token", "")
    return _render_manage(desk.managed(db_session(), booking_id, token, utcnow(), _config()), token)


@bp.post("/intake/sportello/prenotazioni/<booking_id>/annulla")
def cancel(booking_id: str):  # type: ignore[no-untyped-def]
    session = db_session()
    booking = desk.cancel(session, booking_id=booking_id, token=request.form.get("token"), now=utcnow(),
                          config=_config())
    session.commit()
    return render_template("intake/desk_cancelled.html", booking=booking)


@bp.post("/intake/sportello/prenotazioni/<booking_id>/sposta")
def reschedule(booking_id: str):  # type: ignore[no-untyped-def]
    session = db_session()
    token = request.form.get("token", "")
    try:
        booking, new_token = desk.reschedule(session, booking_id=booking_id, token=token,
                                             start=request.form.get("start"), now=utcnow(), config=_config())
    except (InvalidInput, Conflict) as exc:
        session.rollback()
        found = desk.managed(session, booking_id, token, utcnow(), _config())
        return _render_manage(found, token, exc.status, exc.detail)
    session.commit()
    return redirect(url_for(".manage", booking_id=booking.id, token=new_token), 303)


# The Ambito's staff


@bp.get("/intake/sportello/agenda")
@require_roles(AMBITO_ADMIN)
def agenda():  # type: ignore[no-untyped-def]
    """The day's or week's bookings of a location, printable, with no-show marking."""
    config = _config()
    location = request.args.get("sede") or next(iter(config.locations))
    try:
        day = dt.date.fromisoformat(request.args.get("giorno", ""))
    except ValueError:
        day = utcnow().astimezone(ROME).date()
    days = 7 if request.args.get("vista") == "settimana" else 1
    bookings = desk.day_bookings(db_session(), config.location(location).code, day, days)
    return render_template("intake/desk_agenda.html", locations=list(config.locations.values()),
                           location=config.location(location), day=day, days=days, bookings=bookings,
                           topics=dict(TOPICS), modes=dict(MODES), affected=None)


@bp.post("/intake/sportello/agenda/<booking_id>/assente")
@require_roles(AMBITO_ADMIN)
def no_show(booking_id: str):  # type: ignore[no-untyped-def]
    session = db_session()
    booking = session.scalar(select(DeskBooking).where(DeskBooking.id == booking_id))
    if booking is None:
        raise NotFound("Prenotazione non trovata.")
    booking.no_show = request.form.get("assente") == "1"
    session.commit()
    start = booking.start.astimezone(ROME)
    return redirect(url_for(".agenda", sede=booking.location, giorno=start.date().isoformat()), 303)


@bp.post("/intake/sportello/agenda/chiusure")
@require_roles(AMBITO_ADMIN)
def add_closure():  # type: ignore[no-untyped-def]
    session = db_session()
    identity = current_identity()
    assert identity is not None
    config = _config()
    closure, affected = desk.add_closure(session, location=request.form.get("sede"),
                                         day=request.form.get("giorno"), reason=request.form.get("motivo"),
                                         author=identity.username, now=utcnow(), config=config)
    session.commit()
    return render_template("intake/desk_agenda.html", locations=list(config.locations.values()),
                           location=config.location(closure.location), day=closure.date, days=1,
                           bookings=affected, topics=dict(TOPICS), modes=dict(MODES), affected=closure)
