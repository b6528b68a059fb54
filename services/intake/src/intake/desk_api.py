"""The JSON API of the Sportello di Tutela Giuridica (``/api/intake/desk/...``).

Booking needs no account; a booking is then managed with the signed token
returned once (and e-mailed), which stops working at any change.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ambito_common.db import db_session, utcnow
from ambito_common.errors import InvalidInput
from ambito_common.identity import AMBITO_ADMIN, current_identity, require_roles
from apispec import APISpec
from flask import Blueprint, Response, current_app, jsonify, request

from . import desk
from .desk_schemas import BookingOut, BookingSchema, LocationOut, SlotOut

bp = Blueprint("intake_desk_api", __name__)


def config() -> desk.DeskConfig:
    return current_app.extensions["runtime"].desk


def uid_domain() -> str:
    return current_app.extensions["platform"].public_url.split("://", 1)[-1].split("/")[0].split(":")[0]


def _date_arg(name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(request.args.get(name, ""))
    except ValueError as exc:
        raise InvalidInput("Data non valida.", errors={name: ["Indicare una data AAAA-MM-GG."]}) from exc


def booking_json(booking: Any, token: str) -> dict[str, Any]:
    return BookingOut().dump({"id": booking.id, "manage_token": token,
                              "start": booking.start.astimezone(desk.ROME),
                              "end": booking.end.astimezone(desk.ROME)})


@bp.get("/api/intake/desk/locations")
def locations():  # type: ignore[no-untyped-def]
    return jsonify([LocationOut().dump(loc) for loc in config().locations.values()])


@bp.get("/api/intake/desk/availability")
def availability():  # type: ignore[no-untyped-def]
    slots = desk.availability(db_session(), config(), location=request.args.get("location", ""),
                              first=_date_arg("from"), last=_date_arg("to"), now=utcnow())
    return jsonify(SlotOut(many=True).dump(slots))


@bp.post("/api/intake/desk/bookings")
def book():  # type: ignore[no-untyped-def]
    session = db_session()
    booking, token = desk.book(session, data=request.get_json(silent=True), now=utcnow(), config=config(),
                               uid_domain=uid_domain())
    session.commit()
    response = jsonify(booking_json(booking, token))
    response.status_code = 201
    return response


@bp.delete("/api/intake/desk/bookings/<booking_id>")
def cancel(booking_id: str):  # type: ignore[no-untyped-def]
    session = db_session()
    desk.cancel(session, booking_id=booking_id, token=request.args.get("token"), now=utcnow(),
                config=config())
    session.commit()
    return Response(status=204)


@bp.post("/api/intake/desk/bookings/<booking_id>/reschedule")
def reschedule(booking_id: str):  # type: ignore[no-untyped-def]
    session = db_session()
    body = request.get_json(silent=True) or {}
    booking, token = desk.reschedule(session, booking_id=booking_id, token=request.args.get("token"),
                                     start=body.get("start"), now=utcnow(), config=config())
    session.commit()
    return jsonify(booking_json(booking, token))


@bp.get("/api/intake/desk/bookings/<booking_id>/calendar.ics")
def calendar(booking_id: str):  # type: ignore[no-untyped-def]
    booking = desk.managed(db_session(), booking_id, request.args.get("token"), utcnow(), config())
    return Response(desk.ics(booking, config(), method="PUBLISH"), mimetype="text/calendar",
                    headers={"Content-Disposition": "attachment; filename=appuntamento.ics"})


@bp.post("/api/intake/desk/closures")
@require_roles(AMBITO_ADMIN)
def add_closure():  # type: ignore[no-untyped-def]
    """Close a location for a day; the answer lists the bookings to move."""
    session = db_session()
    body = request.get_json(silent=True) or {}
    identity = current_identity()
    assert identity is not None
    closure, affected = desk.add_closure(session, location=body.get("location"), day=body.get("date"),
                                         reason=body.get("reason"), author=identity.username, now=utcnow(),
                                         config=config())
    session.commit()
    response = jsonify({"location": closure.location, "date": closure.date.isoformat(),
                        "reason": closure.reason,
                        "affected_bookings": [{"id": b.id, "start": b.start.astimezone(desk.ROME).isoformat(),
                                               "email": b.email} for b in affected]})
    response.status_code = 201
    return response


def document_desk(spec: APISpec, problem: Any) -> None:
    spec.components.schema("DeskLocation", schema=LocationOut)
    spec.components.schema("DeskSlot", schema=SlotOut)
    spec.components.schema("DeskBookingForm", schema=BookingSchema)
    spec.components.schema("DeskBooking", schema=BookingOut)
    ident = {"name": "booking_id", "in": "path", "required": True, "schema": {"type": "string"}}
    token = {"name": "token", "in": "query", "required": True, "schema": {"type": "string"},
             "description": "Il `manage_token` dell'ultima modifica."}
    spec.path(path="/api/intake/desk/locations", operations={"get": {
        "summary": "Sedi dello Sportello di Tutela Giuridica", "tags": ["sportello"],
        "responses": {"200": {"description": "Sedi", "content": {"application/json": {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/DeskLocation"}}}}}}}})
    spec.path(path="/api/intake/desk/availability", parameters=[
        {"name": "location", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "from", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}},
        {"name": "to", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}}],
        operations={"get": {"summary": "Orari prenotabili con i posti rimasti", "tags": ["sportello"],
                            "responses": {"200": {"description": "Orari (ora di Roma)", "content": {
                                "application/json": {"schema": {"type": "array", "items": {
                                    "$ref": "#/components/schemas/DeskSlot"}}}}},
                                "404": problem("Sede inesistente"), "422": problem("Date non valide")}}})
    spec.path(path="/api/intake/desk/bookings", operations={"post": {
        "summary": "Prenota un appuntamento", "tags": ["sportello"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": "DeskBookingForm"}}},
        "responses": {"201": {"description": "Prenotato", "content": {"application/json": {
            "schema": "DeskBooking"}}}, "409": problem("Orario pieno, passato, chiuso o fuori orario"),
            "422": problem("Dati non validi")}}})
    spec.path(path="/api/intake/desk/bookings/{booking_id}", parameters=[ident, token], operations={
        "delete": {"summary": "Annulla la prenotazione", "tags": ["sportello"],
                   "responses": {"204": {"description": "Annullata"},
                                 "403": problem("Token errato o appuntamento già iniziato"),
                                 "404": problem("Prenotazione inesistente o già annullata")}}})
    reschedule_operation = {
        "summary": "Sposta la prenotazione (stesso UID, SEQUENCE aumentato, nuovo token)",
        "tags": ["sportello"],
        "requestBody": {"content": {"application/json": {"schema": {
            "type": "object", "properties": {"start": {"type": "string", "format": "date-time"}}}}}},
        "responses": {"200": {"description": "Spostata", "content": {"application/json": {
            "schema": "DeskBooking"}}}, "403": problem("Token errato"),
            "404": problem("Prenotazione inesistente"), "409": problem("Orario non disponibile")}}
    spec.path(path="/api/intake/desk/bookings/{booking_id}/reschedule", parameters=[ident, token],
              operations={"post": reschedule_operation})
    spec.path(path="/api/intake/desk/closures", operations={"post": {
        "summary": "Chiude una sede per un giorno ed elenca le prenotazioni da spostare",
        "tags": ["sportello"],
        "security": [{"bearer": []}],
        "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
            "location": {"type": "string"}, "date": {"type": "string", "format": "date"},
            "reason": {"type": "string"}}}}}},
        "responses": {"201": {"description": "Chiusura registrata, con `affected_bookings`"},
                      "403": problem("Solo lo staff dell'Ambito"), "409": problem("Già chiusa")}}})
    spec.path(path="/api/intake/desk/bookings/{booking_id}/calendar.ics", parameters=[ident, token],
              operations={"get": {"summary": "L'appuntamento in formato iCalendar", "tags": ["sportello"],
                                  "responses": {"200": {"description": "text/calendar"}}}})
