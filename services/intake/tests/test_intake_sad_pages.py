"""The SAD pages as a person uses them: the form, the upload step, submission, the comune's case pages."""

from __future__ import annotations

import io

from ambito_common.forms import build_form
from intake.models import SadAttachment, SadRequest
from lxml import html
from sqlalchemy import func, select


def _token_cookie(client, headers: dict[str, str]) -> None:
    client.set_cookie("ambito_identity", headers["Authorization"].removeprefix("Bearer "))


def test_intake_sad_pages_form_keeps_values_and_names_the_comuni(intake_client, intake_page_post,
                                                                 intake_form_pairs,
                                                                 intake_sad_payload) -> None:
    page = intake_client.get("/intake/sad/nuova")
    assert page.status_code == 200
    doc = html.fromstring(page.text)
    assert len(doc.xpath("//select[@id='f-beneficiary-comune']/option")) == 25  # 24 comuni + the prompt
    assert doc.xpath("//input[@name='self_declaration']") and "art. 76" in page.text

    payload = intake_sad_payload()
    payload["beneficiary"]["comune"] = "bergamo"
    payload["isee"]["value_cents"] = "9.500,00"
    response = intake_page_post("/intake/sad/nuova", intake_form_pairs(payload))
    assert response.status_code == 422
    doc = html.fromstring(response.text)
    assert "residenti nei comuni dell'Ambito" in doc.text_content()
    assert doc.xpath("//input[@id='f-beneficiary-first_name']/@value") == ["Giovanna"]


def test_intake_sad_pages_share_one_schema_that_requests_leave_as_it_was(intake_runtime, intake_page_post,
                                                                         intake_form_pairs,
                                                                         intake_sad_payload) -> None:
    """The request's schema is built once per process: a request must not leave anything on it."""
    schema = intake_runtime.sad.schema()
    blank = build_form(schema)
    payload = intake_sad_payload()
    payload["beneficiary"]["comune"] = "bergamo"
    assert intake_page_post("/intake/sad/nuova", intake_form_pairs(payload)).status_code == 422
    assert intake_page_post("/intake/sad/nuova", intake_form_pairs(intake_sad_payload())).status_code == 303
    assert intake_runtime.sad.schema() is schema
    assert build_form(schema) == blank and not blank.errors


def test_intake_sad_pages_file_upload_and_submit(intake_client, intake_csrf, intake_runtime, intake_page_post,
                                                 intake_form_pairs, intake_sad_payload) -> None:
    payload = intake_sad_payload()
    payload["isee"]["value_cents"] = "9.500,00"  # a person types euros
    created = intake_page_post("/intake/sad/nuova", intake_form_pairs(payload))
    assert created.status_code == 303
    tracking = created.headers["Location"]
    with intake_runtime.session_factory() as session:
        found = session.scalars(select(SadRequest)).one()
        assert found.data["isee"]["value_cents"] == 950000
    page = intake_client.get(tracking)
    assert page.status_code == 200 and "bozza" in page.text

    disguised = intake_client.post(tracking + "/allegati", data={
        "csrf_token": intake_csrf(), "kind": "isee",
        "file": (io.BytesIO(b"MZ\x90\x00" + b"\x00" * 100), "isee.pdf")}, content_type="multipart/form-data")
    assert disguised.status_code == 415 and "PDF, JPEG o PNG" in disguised.text
    with intake_runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(SadAttachment)) == 0

    uploaded = intake_client.post(tracking + "/allegati", data={
        "csrf_token": intake_csrf(), "kind": "isee",
        "file": (io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "isee.pdf")}, content_type="multipart/form-data")
    assert uploaded.status_code == 303
    submitted = intake_client.post(tracking + "/presenta", data={"csrf_token": intake_csrf()})
    assert submitted.status_code == 303
    page = intake_client.get(tracking)
    assert "Richiesta presentata e registrata" in html.fromstring(page.text).text_content()
    assert html.fromstring(page.text).xpath("string(//*[@id='stato-richiesta'])") == "da valutare"


def test_intake_sad_pages_queue_and_case_for_the_comune_only(intake_client, intake_token, intake_runtime,
                                                             intake_sad_payload, intake_csrf) -> None:
    created = intake_client.post("/api/intake/sad-requests", json=intake_sad_payload()).get_json()
    intake_client.post(f"/api/intake/sad-requests/{created['tracking_code']}/submit", json={})
    other = intake_client.post("/api/intake/sad-requests", json=intake_sad_payload(
        beneficiary={**intake_sad_payload()["beneficiary"], "comune": "clusone"})).get_json()
    intake_client.post(f"/api/intake/sad-requests/{other['tracking_code']}/submit", json={})

    assert intake_client.get("/intake/servizi-sociali/sad").status_code == 302  # to the login refresh
    _token_cookie(intake_client, intake_token("marta.neri", "social_worker", comune="schilpario"))
    queue = intake_client.get("/intake/servizi-sociali/sad")
    assert queue.status_code == 200
    links = html.fromstring(queue.text).xpath("//table//a/@href")
    assert links == [f"/intake/servizi-sociali/sad/{created['id']}"]
    assert intake_client.get(f"/intake/servizi-sociali/sad/{other['id']}").status_code == 403

    case = f"/intake/servizi-sociali/sad/{created['id']}"
    assert intake_client.get(case).status_code == 200
    bad = intake_client.post(case + "/piano", data={"csrf_token": intake_csrf(), "weeks": "8"})
    assert bad.status_code == 422
    plan = intake_client.post(case + "/piano", data={
        "csrf_token": intake_csrf(), "asa_hours_week": "3", "oss_hours_week": "0",
        "start_date": "2026-12-01", "weeks": "8", "provider": "coop-sociale-scalve"})
    assert plan.status_code == 303
    assert intake_client.post(case + "/approva", data={"csrf_token": intake_csrf()}).status_code == 303
    page = intake_client.get(case)
    state = html.fromstring(page.text).xpath("string(//*[@id='stato-caso'])")
    assert state == "approvata, in attesa di budget"
    assert intake_client.get(f"/intake/sad/{created['tracking_code']}").text.count("in attesa di budget") >= 1


def test_intake_sad_pages_citizen_answers_a_request_for_documents(intake_client, intake_csrf, intake_token,
                                                                  intake_sad_payload) -> None:
    created = intake_client.post("/api/intake/sad-requests", json=intake_sad_payload()).get_json()
    code = created["tracking_code"]
    intake_client.post(f"/api/intake/sad-requests/{code}/submit", json={})
    intake_client.post(f"/api/intake/sad-requests/{created['id']}/request-documents",
                       json={"message": "Verbale di invalidità"},
                       headers=intake_token("marta.neri", "social_worker", comune="schilpario"))
    page = intake_client.get(f"/intake/sad/{code}")
    asked = html.fromstring(page.text).xpath("string(//*[@id='documenti-richiesti'])")
    assert "Verbale di invalidità" in asked
    answer = f"/intake/sad/{code}/documenti-inviati"
    early = intake_client.post(answer, data={"csrf_token": intake_csrf()})
    assert early.status_code == 422
    uploaded = intake_client.post(f"/intake/sad/{code}/allegati", data={
        "csrf_token": intake_csrf(), "kind": "certificate",
        "file": (io.BytesIO(b"%PDF-1.4\nverbale\n%%EOF\n"), "verbale.pdf")},
        content_type="multipart/form-data")
    assert uploaded.status_code == 303
    sent = intake_client.post(answer, data={"csrf_token": intake_csrf()})
    assert sent.status_code == 303
    page = intake_client.get(f"/intake/sad/{code}")
    assert html.fromstring(page.text).xpath("string(//*[@id='stato-richiesta'])") == "in valutazione"
