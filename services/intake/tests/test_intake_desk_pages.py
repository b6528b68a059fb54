"""The desk's pages as people use them: booking without JavaScript, the manage link, the staff's agenda."""

from __future__ import annotations

import datetime as dt

from lxml import html
from werkzeug.datastructures import MultiDict


def test_intake_desk_pages_book_manage_and_cancel(intake_client, intake_form_pairs, intake_booking_payload,
                                                  intake_token, intake_csrf) -> None:
    page = intake_client.get("/intake/sportello?sede=clusone")
    assert page.status_code == 200
    choices = html.fromstring(page.text).xpath("//input[@name='start']/@value")
    assert choices
    pairs = [(k, v) for k, v in intake_form_pairs(intake_booking_payload(choices[0])) if k != "location"]
    booked = intake_client.post("/intake/sportello", data=MultiDict(
        [*pairs, ("location", "clusone"), ("csrf_token", intake_csrf())]))
    assert booked.status_code == 303, booked.text
    manage = intake_client.get(booked.headers["Location"])
    assert manage.status_code == 200 and "Appuntamento prenotato" in manage.text
    doc = html.fromstring(manage.text)
    expected = dt.datetime.fromisoformat(choices[0]).strftime("%d/%m/%Y %H:%M")
    assert doc.xpath("string(//*[@id='quando'])") == expected

    # The Ambito's staff sees it in the day's agenda.
    intake_client.set_cookie("ambito_identity", intake_token("ambito", "ambito_admin")["Authorization"][7:])
    day = dt.datetime.fromisoformat(choices[0]).date()
    agenda = intake_client.get(f"/intake/sportello/agenda?sede=clusone&giorno={day}")
    assert agenda.status_code == 200 and "Bonetti" in agenda.text
    week = intake_client.get(f"/intake/sportello/agenda?sede=clusone&giorno={day - dt.timedelta(days=3)}"
                             "&vista=settimana")
    assert "Bonetti" in week.text

    token = doc.xpath("//form[contains(@action, '/annulla')]//input[@name='token']/@value")[0]
    action = doc.xpath("//form[contains(@action, '/annulla')]/@action")[0]
    cancelled = intake_client.post(action, data={"token": token, "csrf_token": intake_csrf()})
    assert cancelled.status_code == 200 and "annullato" in cancelled.text
    assert intake_client.get(booked.headers["Location"]).status_code == 404
    assert "Bonetti" not in intake_client.get(f"/intake/sportello/agenda?sede=clusone&giorno={day}").text


def test_intake_desk_pages_full_slot_and_closure_list(intake_client, intake_booking_payload, intake_token,
                                                      intake_free_slot, intake_csrf) -> None:
    slot = intake_free_slot()
    for _ in range(2):
        assert intake_client.post("/api/intake/desk/bookings",
                                  json=intake_booking_payload(slot["start"])).status_code == 201
    page = intake_client.get("/intake/sportello?sede=clusone")
    assert slot["start"] not in html.fromstring(page.text).xpath("//input[@name='start']/@value")

    intake_client.set_cookie("ambito_identity", intake_token("ambito", "ambito_admin")["Authorization"][7:])
    intake_client.get("/intake/sportello/agenda")
    day = dt.datetime.fromisoformat(slot["start"]).date()
    closed = intake_client.post("/intake/sportello/agenda/chiusure", data={
        "sede": "clusone", "giorno": str(day), "motivo": "Sciopero", "csrf_token": intake_csrf()})
    assert closed.status_code == 200
    assert html.fromstring(closed.text).xpath("count(//tbody/tr)") == 2
    assert "vanno spostate" in closed.text


def test_intake_desk_pages_reschedule_gives_a_new_link(intake_client, intake_csrf, intake_booking_payload,
                                                       intake_free_slot) -> None:
    slot = intake_free_slot()
    created = intake_client.post("/api/intake/desk/bookings",
                                 json=intake_booking_payload(slot["start"])).get_json()
    old_link = f"/intake/sportello/prenotazioni/{created['id']}?token={created['manage_token']}"
    doc = html.fromstring(intake_client.get(old_link).text)
    new_start = doc.xpath("//select[@id='f-start']/option/@value")[0]
    moved = intake_client.post(f"/intake/sportello/prenotazioni/{created['id']}/sposta", data={
        "token": created["manage_token"], "start": new_start, "csrf_token": intake_csrf()})
    assert moved.status_code == 303
    page = intake_client.get(moved.headers["Location"])
    expected = dt.datetime.fromisoformat(new_start).strftime("%d/%m/%Y %H:%M")
    assert html.fromstring(page.text).xpath("string(//*[@id='quando'])") == expected
    assert intake_client.get(old_link).status_code == 403  # the old link stopped working
