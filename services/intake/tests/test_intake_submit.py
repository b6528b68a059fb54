"""Accepting an application: the deadline, duplicates, the register, the outbox, the page flow."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from ambito_common.db import session_scope
from ambito_common.errors import Conflict
from ambito_common.web import ROME, load_ambito
from intake import services
from intake.codes import ALPHABET, LENGTH, group_tracking_code
from intake.models import Application, ApplicationEvent, Call, OutboxMessage, RegisterCounter
from intake.reference_data import load_demo_data
from lxml import html
from sqlalchemy import func, select

SUBMIT = "/api/intake/calls/pdz-demo/applications"
SEED_DEADLINE = dt.datetime(2024, 10, 2, 23, 59, 59, tzinfo=ROME)


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _written(runtime) -> dict[str, int]:
    with runtime.session_factory() as session:
        return {m.__name__: _count(session, m)
                for m in (Application, ApplicationEvent, OutboxMessage, RegisterCounter)}


NOTHING = {"Application": 0, "ApplicationEvent": 0, "OutboxMessage": 0, "RegisterCounter": 0}


def test_intake_submit_accepts_and_writes_everything_in_one_go(intake_client, intake_runtime,
                                                               intake_payload) -> None:
    response = intake_client.post(SUBMIT, json=intake_payload())
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "tracking_code", "status"}
    assert body["status"] == "received"
    code = body["tracking_code"]
    # 20 symbols of a 32-symbol alphabet: 100 bits, drawn from `secrets`.
    assert len(code) == LENGTH == 20 and set(code) <= set(ALPHABET) and len(ALPHABET) == 32
    assert response.headers["Location"].endswith(f"/api/intake/applications/{code}")

    ambito = load_ambito(intake_runtime.settings.platform)
    with intake_runtime.session_factory() as session:
        application = session.get(Application, body["id"])
        assert application.tracking_code == code and application.status == "received"
        assert (application.register_code, application.register_number) == ("ISTANZE_ONLINE", 1)
        assert application.register_year == application.submitted_at.astimezone(ROME).year
        assert [e.status for e in application.events] == ["received"]
        outbox = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [m.task_name for m in outbox] == ["documents.build_package", "intake.send_receipt"]
        assert outbox[1].kwargs == {"application_id": application.id}
        build = outbox[0].kwargs
    today = application.submitted_at.astimezone(ROME)
    assert set(build) == {"source", "source_ref", "callback", "payload"}
    assert build["source"] == "intake" and build["callback"] == "intake.package_status"
    assert build["source_ref"] == f"application:{application.id}"
    payload = build["payload"]
    assert set(payload) == {"kind", "subject", "file_stem", "document", "data", "meta"}
    assert payload["kind"] == "coprogramming_application"
    assert payload["file_stem"] == f"domanda-{code}"
    document = payload["document"]
    assert set(document) == {"header", "title", "subtitle", "sections", "declarations", "submitted_at",
                             "tracking_code", "registration"}
    assert document["header"] == {"lead_body": "Comune di Clusone", "ambito": ambito["name"]}
    assert document["registration"] == f"n. 0000001 del {today:%d/%m/%Y} (registro istanze online)"
    assert document["submitted_at"] == f"{today:%d/%m/%Y %H:%M}"
    assert [s["title"] for s in document["sections"]] == [
        "Ente richiedente", "Legale rappresentante", "Referente", "Aree tematiche"]
    organisation_rows = {f["label"]: f["value"] for f in document["sections"][0]["fields"]}
    assert organisation_rows["Forma giuridica"] == "Associazione di promozione sociale"
    assert organisation_rows["Categoria (punto 4 dell'avviso)"].startswith("a) Ente del Terzo settore")
    assert document["sections"][3]["fields"][0]["value"] == "Minori e famiglia, Inclusione sociale"
    assert len(document["declarations"]) == 4
    assert document["declarations"][2].startswith("Libera l'Amministrazione procedente")
    assert payload["data"]["organisation"]["tax_code"] == "00000010017"
    meta = payload["meta"]
    assert meta["registration"] == {"ipa_code": "c_c800", "aoo_code": "AOO_DEMO_CLUSONE",
                                    "register_code": "ISTANZE_ONLINE", "number": "0000001",
                                    "date": today.date().isoformat()}
    assert meta["sender"] == {"name": "Associazione Amici della Val di Scalve", "tax_code": "00000010017",
                              "pec": "amici@pec.example.it", "email": "info@amici.example.it"}
    assert meta["recipient"] == {"name": "Comune di Clusone", "ipa_code": "c_c800",
                                 "aoo_code": "AOO_DEMO_CLUSONE",
                                 "aoo_name": "Comune di Clusone - Protocollo generale",
                                 "pec": "protocollo@pec.comune.clusone.bg.it"}
    assert meta["subject"] == payload["subject"] and "Associazione Amici" in payload["subject"]

    status = intake_client.get(f"/api/intake/applications/{code}")
    assert status.get_json() == {"tracking_code": code, "status": "received", "package_id": None,
                                 "protocol": None}


def test_intake_submit_tracking_codes_differ(intake_client, intake_payload, intake_tax_code) -> None:
    codes = set()
    for n in range(1, 6):
        payload = intake_payload()
        payload["organisation"]["tax_code"] = intake_tax_code(n)
        codes.add(intake_client.post(SUBMIT, json=payload).get_json()["tracking_code"])
    assert len(codes) == 5


def test_intake_submit_closed_call_is_409_naming_the_date_and_writes_nothing(
        intake_client, intake_runtime, intake_payload) -> None:
    response = intake_client.post("/api/intake/calls/pdz-2025-2027/applications", json=intake_payload())
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "02/10/2024" in response.get_json()["detail"]
    assert _written(intake_runtime) == NOTHING


def test_intake_submit_unknown_call_is_404(intake_client, intake_payload) -> None:
    response = intake_client.post("/api/intake/calls/nessuno/applications", json=intake_payload())
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_intake_submit_second_application_of_an_organisation_is_409_with_the_first_code(
        intake_client, intake_runtime, intake_payload) -> None:
    first = intake_client.post(SUBMIT, json=intake_payload()).get_json()
    again = intake_payload()
    again["organisation"]["tax_code"] = "0000001 0017"  # the same, typed differently
    again["organisation"]["name"] = "Amici della Val di Scalve APS"
    response = intake_client.post(SUBMIT, json=again)
    assert response.status_code == 409
    body = response.get_json()
    assert body["tracking_code"] == first["tracking_code"]
    assert group_tracking_code(first["tracking_code"]) in body["detail"]
    submitted = dt.datetime.fromisoformat(body["submitted_at"])
    assert submitted.strftime("%d/%m/%Y") in body["detail"]
    assert _written(intake_runtime) == {"Application": 1, "ApplicationEvent": 1, "OutboxMessage": 2,
                                        "RegisterCounter": 1}
    with intake_runtime.session_factory() as session:
        assert session.scalar(select(RegisterCounter.last_number)) == 1  # no number was used up


@pytest.mark.parametrize(("moment", "accepted"), [
    (SEED_DEADLINE - dt.timedelta(seconds=1), True),
    (SEED_DEADLINE, True),
    (SEED_DEADLINE + dt.timedelta(seconds=1), False),
])
def test_intake_submit_deadline_is_an_instant_in_europe_rome(intake_runtime, intake_payload, moment,
                                                             accepted) -> None:
    ambito = load_ambito(intake_runtime.settings.platform)
    with session_scope(intake_runtime.session_factory) as session:
        call = services.get_call(session, "pdz-2025-2027")
        assert services.call_status(call, moment) == ("open" if accepted else "closed")
        if accepted:
            application = services.submit_application(session, call_slug=call.slug, data=intake_payload(),
                                                      now=moment, ambito=ambito)
            assert (application.register_year, application.register_number) == (2024, 1)
            return
        with pytest.raises(Conflict) as caught:
            services.submit_application(session, call_slug=call.slug, data=intake_payload(), now=moment,
                                        ambito=ambito)
        assert "02/10/2024" in caught.value.detail
    assert _written(intake_runtime) == NOTHING


def test_intake_submit_register_is_gapless_and_restarts_on_1_january(
        intake_runtime, intake_payload, intake_tax_code, intake_data_dir) -> None:
    ambito = load_ambito(intake_runtime.settings.platform)
    with session_scope(intake_runtime.session_factory) as session:
        load_demo_data(session, intake_data_dir, dt.date(2026, 12, 1))  # open until 30/01/2027

    def submit(n: int, moment: dt.datetime) -> Application:
        payload = intake_payload()
        payload["organisation"]["tax_code"] = intake_tax_code(n)
        with session_scope(intake_runtime.session_factory) as session:
            return services.submit_application(session, call_slug="pdz-demo", data=payload, now=moment,
                                               ambito=ambito)

    new_year_eve = dt.datetime(2026, 12, 31, 23, 59, 58, tzinfo=ROME)
    new_year = dt.datetime(2027, 1, 1, 0, 0, 0, tzinfo=ROME)  # still 2026 in UTC
    first = submit(1, new_year_eve)
    with pytest.raises(Conflict):  # a refused submission takes no number
        submit(1, new_year_eve)
    bad = intake_payload(areas=[])
    with pytest.raises(Exception), session_scope(intake_runtime.session_factory) as session:  # noqa: B017
        services.submit_application(session, call_slug="pdz-demo", data=bad, now=new_year_eve,
                                    ambito=ambito)
    second = submit(2, new_year_eve + dt.timedelta(seconds=1))
    third = submit(3, new_year)
    fourth = submit(4, new_year + dt.timedelta(minutes=1))
    numbers = [(a.register_year, a.register_number) for a in (first, second, third, fourth)]
    assert numbers == [(2026, 1), (2026, 2), (2027, 1), (2027, 2)]
    assert services.registration_label(third) == "n. 0000001 del 01/01/2027 (registro istanze online)"
    with intake_runtime.session_factory() as session:
        counters = session.execute(select(RegisterCounter.year, RegisterCounter.last_number)
                                   .order_by(RegisterCounter.year)).all()
        assert [tuple(c) for c in counters] == [(2026, 2), (2027, 2)]


def test_intake_submit_through_the_page_redirects_to_the_receipt(
        intake_client, intake_page_post, intake_payload, intake_form_pairs, intake_runtime) -> None:
    response = intake_page_post("/intake/avvisi/pdz-demo/domanda", intake_form_pairs(intake_payload()))
    assert response.status_code == 303
    location = response.headers["Location"]
    code = re.fullmatch(r"/intake/domande/([0-9A-Z]{20})", location).group(1)
    receipt = intake_client.get(location)
    assert receipt.status_code == 200
    doc = html.fromstring(receipt.text)
    text = " ".join(doc.text_content().split())
    assert doc.get_element_by_id("codice-tracciamento").text_content() == group_tracking_code(code)
    assert "n. 0000001 del" in text and "(registro istanze online)" in text
    assert doc.get_element_by_id("stato-domanda").text_content() == "ricevuta"
    assert doc.xpath(f"//a[normalize-space()='Aggiorna'][@href='/intake/domande/{code}']")
    with intake_runtime.session_factory() as session:
        application = session.scalar(select(Application))
        submitted = application.submitted_at.astimezone(ROME)
        assert application.data["areas"] == ["minori-famiglia", "inclusione-sociale"]
        assert application.data["commitments_accepted"] is True
    assert f"{submitted:%d/%m/%Y %H:%M}" in text


def test_intake_submit_page_says_when_the_organisation_already_applied(
        intake_client, intake_page_post, intake_payload, intake_form_pairs) -> None:
    first = intake_client.post(SUBMIT, json=intake_payload()).get_json()["tracking_code"]
    response = intake_page_post("/intake/avvisi/pdz-demo/domanda", intake_form_pairs(intake_payload()))
    assert response.status_code == 409
    doc = html.fromstring(response.text)
    assert group_tracking_code(first) in doc.text_content()
    assert doc.xpath(f"//a[@href='/intake/domande/{first}']")
    names = doc.xpath("//input[@name='organisation.name']/@value")
    assert names == ["Associazione Amici della Val di Scalve"]


def test_intake_submit_page_needs_the_csrf_token(intake_page_post, intake_payload, intake_form_pairs,
                                                 intake_runtime) -> None:
    response = intake_page_post("/intake/avvisi/pdz-demo/domanda", intake_form_pairs(intake_payload()),
                                with_token=False)
    assert response.status_code == 400
    assert _written(intake_runtime) == NOTHING


def test_intake_submit_call_status_on_the_model(intake_runtime) -> None:
    with intake_runtime.session_factory() as session:
        seed = session.scalar(select(Call).where(Call.slug == "pdz-2025-2027"))
        assert seed.deadline == SEED_DEADLINE
        assert services.deadline_instant(dt.date(2024, 10, 2), dt.time(23, 59, 59)) == SEED_DEADLINE
