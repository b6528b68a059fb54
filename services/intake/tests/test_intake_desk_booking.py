"""Desk bookings: agenda as data, holidays and closures, capacity, the .ics, manage links, reminders."""

from __future__ import annotations

import datetime as dt
import email
from email import policy

import icalendar
from ambito_common.db import utcnow
from ambito_common.web import ROME
from intake import desk, tasks
from intake.models import DeskBooking, OutboxMessage
from sqlalchemy import event, select

FIXED_NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=ROME)  # a Tuesday


def test_intake_desk_locations_and_slots_follow_the_agenda(intake_client) -> None:
    locations = intake_client.get("/api/intake/desk/locations").get_json()
    assert {"code": "clusone", "name": "Sportello di Clusone",
            "address": "Via Somvico 2, 24023 Clusone (BG)"} in locations
    today = dt.date.today()
    slots = intake_client.get(f"/api/intake/desk/availability?location=clusone&from={today}"
                              f"&to={today + dt.timedelta(days=90)}").get_json()
    assert slots and all(set(s) == {"start", "end", "location", "remaining"} for s in slots)
    starts = [dt.datetime.fromisoformat(s["start"]) for s in slots]
    now = dt.datetime.now(dt.UTC)
    assert min(starts) >= now + dt.timedelta(hours=24) and max(starts) <= now + dt.timedelta(days=60)
    assert {s.astimezone(ROME).weekday() for s in starts} <= {1, 2, 3, 4}  # Tuesday to Friday
    assert all(dt.time(9, 30) <= s.astimezone(ROME).time() <= dt.time(12, 0) for s in starts)
    assert intake_client.get("/api/intake/desk/availability?location=x&from=2026-01-01&to=2026-01-02"
                             ).status_code == 404
    assert intake_client.get("/api/intake/desk/availability?location=clusone&from=ieri&to=oggi"
                             ).status_code == 422


def test_intake_desk_holidays_and_patron_days_yield_no_slots(intake_runtime) -> None:
    config = intake_runtime.desk
    with intake_runtime.session_factory() as session:
        def days(location: str, first: dt.date, last: dt.date) -> set[dt.date]:
            slots = desk.availability(session, config, location=location, first=first, last=last,
                                      now=FIXED_NOW)
            return {s["start"].date() for s in slots}
        # Tue 8 December (Immacolata) is a national holiday; Wed 9 is open.
        assert days("clusone", dt.date(2026, 12, 8), dt.date(2026, 12, 9)) == {dt.date(2026, 12, 9)}
        # Christmas (Fri 25) and the rest of the week after it.
        assert dt.date(2026, 12, 25) not in days("clusone", dt.date(2026, 12, 22), dt.date(2026, 12, 31))
    patron = desk.DeskConfig(**{**config.__dict__, "patron_days": {"vilminore-di-scalve": (12, 9)}})
    with intake_runtime.session_factory() as session:
        assert desk.availability(session, patron, location="vilminore", first=dt.date(2026, 12, 9),
                                 last=dt.date(2026, 12, 9), now=FIXED_NOW) == []
        assert len(desk.availability(session, config, location="vilminore", first=dt.date(2026, 12, 9),
                                     last=dt.date(2026, 12, 9), now=FIXED_NOW)) == 4


def test_intake_desk_availability_reads_a_whole_range_in_two_queries(intake_runtime) -> None:
    """Bookings and closures of the range are read at once, not day by day (a page shows two months)."""
    config = intake_runtime.desk
    statements: list[str] = []
    with intake_runtime.session_factory() as session:
        desk.add_closure(session, location="clusone", day="2026-12-16", reason="Sciopero", author="staff",
                         now=FIXED_NOW, config=config)
        session.flush()

        def record(conn, cursor, statement, *_: object) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        event.listen(session.get_bind(), "before_cursor_execute", record)
        try:
            slots = desk.availability(session, config, location="clusone", first=dt.date(2026, 12, 2),
                                      last=dt.date(2027, 1, 29), now=FIXED_NOW)
        finally:
            event.remove(session.get_bind(), "before_cursor_execute", record)
    days = {s["start"].date() for s in slots}
    assert dt.date(2026, 12, 16) not in days and dt.date(2026, 12, 17) in days  # the closure, the day after
    assert dt.date(2026, 12, 25) not in days and dt.date(2027, 1, 6) not in days  # holidays of both years
    assert len(statements) == 2, statements


def test_intake_desk_capacity_past_and_closed_slots(intake_client, intake_token, intake_booking_payload,
                                                    intake_free_slot) -> None:
    slot = intake_free_slot()
    first = intake_client.post("/api/intake/desk/bookings", json=intake_booking_payload(slot["start"]))
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert set(body) == {"id", "manage_token", "start", "end"}
    assert dt.datetime.fromisoformat(body["start"]) == dt.datetime.fromisoformat(slot["start"])
    assert intake_client.post("/api/intake/desk/bookings", json=intake_booking_payload(slot["start"])
                              ).status_code == 201
    full = intake_client.post("/api/intake/desk/bookings", json=intake_booking_payload(slot["start"]))
    assert full.status_code == 409 and full.mimetype == "application/problem+json"
    past = intake_client.post("/api/intake/desk/bookings", json=intake_booking_payload("2025-01-07T09:30"))
    assert past.status_code == 409
    invalid = intake_client.post("/api/intake/desk/bookings", json=intake_booking_payload(
        slot["start"], topic="divorzio", comune="bergamo"))
    assert invalid.status_code == 422 and {"topic", "comune"} <= set(invalid.get_json()["errors"])

    # A closure on that day lists both bookings so they can be moved, and the day has no more slots.
    day = dt.datetime.fromisoformat(slot["start"]).date()
    admin = intake_token("ambito", "ambito_admin")
    worker = intake_token("x", "social_worker", comune="clusone")
    assert intake_client.post("/api/intake/desk/closures", json={"location": "clusone", "date": str(day),
                              "reason": "Assemblea"}, headers=worker).status_code == 403
    closed = intake_client.post("/api/intake/desk/closures", json={"location": "clusone", "date": str(day),
                                                                  "reason": "Assemblea del personale"},
                                headers=admin)
    assert closed.status_code == 201
    assert len(closed.get_json()["affected_bookings"]) == 2
    slots = intake_client.get(f"/api/intake/desk/availability?location=clusone&from={day}&to={day}")
    slots = slots.get_json()
    assert slots == []
    assert intake_client.post("/api/intake/desk/bookings", json=intake_booking_payload(slot["start"])
                              ).status_code == 409


def _mails(runtime, mail_dir) -> list[email.message.EmailMessage]:
    with runtime.session_factory() as session:
        rows = session.scalars(select(OutboxMessage)
                               .where(OutboxMessage.task_name == "intake.send_booking_mail")
                               .order_by(OutboxMessage.id)).all()
        pending = [r.kwargs for r in rows]
    for kwargs in pending:
        tasks.send_booking_mail(**kwargs)
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted(mail_dir.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)]


def _event(message) -> tuple[str, icalendar.Event]:
    part = next(p for p in message.iter_attachments() if p.get_content_type() == "text/calendar")
    calendar = icalendar.Calendar.from_ical(part.get_content())
    return str(calendar["METHOD"]), next(iter(calendar.walk("VEVENT")))


def test_intake_desk_ics_manage_links_reschedule_and_cancel(intake_client, intake_worker, tmp_path,
                                                            intake_booking_payload, intake_free_slot) -> None:
    slot = intake_free_slot()
    created = intake_client.post("/api/intake/desk/bookings",
                                 json=intake_booking_payload(slot["start"])).get_json()
    (confirmation,) = _mails(intake_worker, tmp_path / "mail")
    method, event = _event(confirmation)
    assert method == "REQUEST"
    uid = str(event["UID"])
    assert int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == dt.datetime.fromisoformat(slot["start"])
    assert str(event.decoded("DTSTART").tzinfo) == "Europe/Rome"
    alarm = next(iter(event.walk("VALARM")))
    assert alarm.decoded("TRIGGER") == -dt.timedelta(hours=2)
    body = confirmation.get_body(("plain",)).get_content()
    assert f"/intake/sportello/prenotazioni/{created['id']}?token={created['manage_token']}" in body

    booking = f"/api/intake/desk/bookings/{created['id']}"
    later = next(s for s in intake_client.get(
        f"/api/intake/desk/availability?location=clusone&from={dt.date.today()}"
        f"&to={dt.date.today() + dt.timedelta(days=60)}").get_json() if s["start"] != slot["start"])
    assert intake_client.post(f"{booking}/reschedule?token=sbagliato", json={"start": later["start"]}
                              ).status_code == 403
    moved = intake_client.post(f"{booking}/reschedule?token={created['manage_token']}",
                               json={"start": later["start"]})
    assert moved.status_code == 200
    new_token = moved.get_json()["manage_token"]
    assert new_token != created["manage_token"]
    # The old link stopped working with the change.
    assert intake_client.delete(f"{booking}?token={created['manage_token']}").status_code == 403
    mails = _mails(intake_worker, tmp_path / "mail")
    _method, moved_event = _event(mails[-1])
    assert str(moved_event["UID"]) == uid and int(moved_event["SEQUENCE"]) == 1
    assert moved_event.decoded("DTSTART") == dt.datetime.fromisoformat(later["start"])

    assert intake_client.delete(f"{booking}?token={new_token}").status_code == 204
    assert intake_client.delete(f"{booking}?token={new_token}").status_code == 404
    mails = _mails(intake_worker, tmp_path / "mail")
    method, cancelled = _event(mails[-1])
    assert method == "CANCEL" and str(cancelled["UID"]) == uid and int(cancelled["SEQUENCE"]) == 2
    assert str(cancelled["STATUS"]) == "CANCELLED"
    # The seat is free again.
    slots = intake_client.get(f"/api/intake/desk/availability?location=clusone&from={dt.date.today()}"
                              f"&to={dt.date.today() + dt.timedelta(days=60)}").get_json()
    assert next(s for s in slots if s["start"] == later["start"])["remaining"] == 2


def test_intake_desk_reminders_go_only_to_live_bookings(intake_runtime, intake_booking_payload,
                                                        tmp_path) -> None:
    config, platform = intake_runtime.desk, intake_runtime.settings.platform
    with intake_runtime.session_factory() as session, session.begin():
        kept, _ = desk.book(session, data=intake_booking_payload("2026-12-03T09:30"), now=FIXED_NOW,
                            config=config, uid_domain="test")
        dropped, token = desk.book(session, data=intake_booking_payload("2026-12-03T10:00"), now=FIXED_NOW,
                                   config=config, uid_domain="test")
        later, _ = desk.book(session, data=intake_booking_payload("2026-12-04T10:00"), now=FIXED_NOW,
                             config=config, uid_domain="test")
        desk.cancel(session, booking_id=dropped.id, token=token, now=FIXED_NOW, config=config)
    the_day_before = dt.datetime(2026, 12, 2, 18, 0, tzinfo=ROME)
    with intake_runtime.session_factory() as session, session.begin():
        assert desk.send_reminders(session, now=the_day_before, config=config, platform=platform) == 1
        assert desk.send_reminders(session, now=the_day_before, config=config, platform=platform) == 0
    with intake_runtime.session_factory() as session:
        reminded = {b.id for b in session.scalars(select(DeskBooking).where(
            DeskBooking.reminder_sent_at.is_not(None)))}
    assert reminded == {kept.id}
    assert later.id not in reminded
    sent = [email.message_from_bytes(eml.read_bytes(), policy=policy.default)
            for eml in (tmp_path / "mail").glob("*.eml")]
    (reminder,) = [m for m in sent if m["Subject"].startswith("Promemoria")]
    assert reminder["To"] == "paola.bonetti@example.it"
    assert reminder["Subject"] == "Promemoria: appuntamento di domani alle 09:30"
    body = reminder.get_body(("plain",)).get_content()
    assert f"/intake/sportello/prenotazioni/{kept.id}?token=" in body  # still movable until it starts


def test_intake_desk_manage_link_stops_working_when_the_appointment_starts(
        intake_client, intake_runtime, intake_booking_payload, intake_free_slot) -> None:
    created = intake_client.post("/api/intake/desk/bookings",
                                 json=intake_booking_payload(intake_free_slot()["start"])).get_json()
    # The appointment's time comes (the clock moves on; here the booking's start moves back).
    with intake_runtime.session_factory() as session, session.begin():
        session.get(DeskBooking, created["id"]).start = utcnow() - dt.timedelta(minutes=1)
    booking = f"/api/intake/desk/bookings/{created['id']}"
    refused = intake_client.delete(f"{booking}?token={created['manage_token']}")
    assert refused.status_code == 403 and "già iniziato" in refused.get_json()["detail"]
    page = intake_client.get(f"/intake/sportello/prenotazioni/{created['id']}",
                             query_string={"token": created["manage_token"]})
    assert page.status_code == 403 and "già iniziato" in page.get_data(as_text=True)
    with intake_runtime.session_factory() as session:
        assert session.get(DeskBooking, created["id"]).status == desk.BOOKED  # nothing changed
