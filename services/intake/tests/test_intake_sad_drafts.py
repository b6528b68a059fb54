"""Save and resume: a draft comes back from the e-mailed link, expires, and is purged with its files."""

from __future__ import annotations

import datetime as dt
import email
import re

from ambito_common.db import utcnow
from intake import tasks
from intake.models import OutboxMessage, SadRequest
from lxml import html
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

PDF_BYTES = b"%PDF-1.4\n%%EOF\n"


def _mailed_link(runtime, mail_dir) -> str:
    with runtime.session_factory() as session:
        event_id = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "intake.send_sad_update")).first().kwargs["event_id"]
    assert tasks.send_sad_update(event_id=event_id) is True
    (eml,) = mail_dir.glob("*.eml")
    message = email.message_from_bytes(eml.read_bytes())
    body = message.get_payload(decode=True).decode(message.get_content_charset())
    assert "bozza" in message["Subject"]
    return re.search(r"https://ambito\.example\.it(/intake/sad/[0-9A-Z]{20})", body).group(1)


def test_intake_sad_draft_resumes_from_the_mailed_link(intake_client, intake_worker, intake_env, tmp_path,
                                                      intake_page_post, intake_form_pairs,
                                                      intake_sad_payload) -> None:
    payload = intake_sad_payload()
    payload["isee"]["value_cents"] = "9.500,00"
    assert intake_page_post("/intake/sad/nuova", intake_form_pairs(payload)).status_code == 303
    link = _mailed_link(intake_worker, tmp_path / "mail")

    # Another browser (no cookies) resumes it.
    other = intake_client.application.test_client()
    page = other.get(link)
    assert page.status_code == 200 and "valida fino al" in page.text
    edit = other.get(link + "/modifica")
    doc = html.fromstring(edit.text)
    assert doc.xpath("//input[@id='f-isee-value_cents']/@value") == ["9500,00"]
    assert doc.xpath("//input[@id='f-beneficiary-address']/@value") == ["Via Manzoni 3"]
    pairs = intake_form_pairs({**payload, "isee": {**payload["isee"], "value_cents": "9500,00"},
                               "beneficiary": {**payload["beneficiary"], "address": "Via Manzoni 5"}})
    saved = other.post(link + "/modifica",
                       data=MultiDict([*pairs, ("csrf_token", other.get_cookie("ambito_csrf").value)]))
    assert saved.status_code == 303
    with intake_worker.session_factory() as session:
        found = session.scalars(select(SadRequest)).one()
        assert found.data["beneficiary"]["address"] == "Via Manzoni 5"
        assert found.data["isee"]["value_cents"] == 950000
    assert other.post(link + "/presenta", data={"csrf_token": other.get_cookie("ambito_csrf").value}
                      ).status_code == 303
    assert other.get(link + "/modifica").status_code == 409  # submitted: no more changes


def test_intake_sad_draft_expires_and_is_purged_with_its_files(intake_client, intake_worker, intake_upload,
                                                              intake_sad_payload) -> None:
    old = intake_client.post("/api/intake/sad-requests", json=intake_sad_payload()).get_json()
    kept = intake_client.post("/api/intake/sad-requests", json=intake_sad_payload()).get_json()
    submitted = intake_client.post("/api/intake/sad-requests", json=intake_sad_payload()).get_json()
    assert intake_upload(old["tracking_code"], PDF_BYTES).status_code == 201
    intake_client.post(f"/api/intake/sad-requests/{submitted['tracking_code']}/submit", json={})
    with intake_worker.session_factory() as session, session.begin():
        session.get(SadRequest, old["id"]).expires_at = utcnow() - dt.timedelta(seconds=1)
        session.get(SadRequest, submitted["id"]).created_at = utcnow() - dt.timedelta(days=60)

    code = old["tracking_code"]
    assert intake_client.get(f"/intake/sad/{code}").status_code == 404
    assert intake_upload(code, PDF_BYTES + b"1").status_code == 404
    assert intake_client.post(f"/api/intake/sad-requests/{code}/submit", json={}).status_code == 404

    storage = intake_worker.settings.storage_dir
    assert (storage / old["id"]).exists()
    assert tasks.purge_drafts() == 1
    assert not (storage / old["id"]).exists()
    with intake_worker.session_factory() as session:
        assert {r.id for r in session.scalars(select(SadRequest))} == {kept["id"], submitted["id"]}
    assert intake_client.get(f"/api/intake/applications/{code}").status_code == 404
    assert tasks.purge_drafts() == 0


def test_intake_sad_half_filled_draft_is_kept_as_typed_and_checked_only_on_submit(
        intake_client, intake_worker, intake_env, tmp_path, intake_page_post, intake_form_pairs,
        intake_sad_payload) -> None:
    typed = {"applicant": {"first_name": "Luigi", "tax_code": "VRDLGU70M01C80"},  # a digit short
             "beneficiary": {"last_name": "Berti", "birth_date": "1940-01-01"},
             "isee": {"value_cents": "novemila"}, "needs": ["meals"]}

    # Without an e-mail there is nowhere to send the link: said on that field, everything kept.
    refused = intake_page_post("/intake/sad/nuova", [*intake_form_pairs(typed), ("azione", "bozza")])
    assert refused.status_code == 422
    doc = html.fromstring(refused.text)
    assert "e-mail a cui inviare il link" in doc.xpath("string(//input[@id='f-applicant-email']/..)")
    assert doc.xpath("//input[@id='f-applicant-tax_code']/@value") == ["VRDLGU70M01C80"]
    assert doc.xpath("//input[@id='f-isee-value_cents']/@value") == ["novemila"]
    bad_mail = {**typed, "applicant": {**typed["applicant"], "email": "luigi@"}}
    refused = intake_page_post("/intake/sad/nuova", [*intake_form_pairs(bad_mail), ("azione", "bozza")])
    assert refused.status_code == 422
    assert "non valido" in html.fromstring(refused.text).xpath(
        "string(//input[@id='f-applicant-email']/..)")
    with intake_worker.session_factory() as session:
        assert session.scalars(select(SadRequest)).first() is None

    typed["applicant"]["email"] = "luigi.verdi@example.it"
    saved = intake_page_post("/intake/sad/nuova", [*intake_form_pairs(typed), ("azione", "bozza")])
    assert saved.status_code == 303
    with intake_worker.session_factory() as session:
        found = session.scalars(select(SadRequest)).one()
        assert found.status == "draft" and found.comune == ""
        assert found.data["applicant"]["tax_code"] == "VRDLGU70M01C80"
        assert found.data["isee"]["value_cents"] == "novemila"
    link = _mailed_link(intake_worker, tmp_path / "mail")

    other = intake_client.application.test_client()
    page = other.get(link)
    assert page.status_code == 200 and html.fromstring(page.text).xpath("//*[@id='bozza-incompleta']")
    edit = html.fromstring(other.get(link + "/modifica").text)
    assert edit.xpath("//input[@id='f-applicant-tax_code']/@value") == ["VRDLGU70M01C80"]
    assert edit.xpath("//input[@id='f-isee-value_cents']/@value") == ["novemila"]
    assert edit.xpath("//input[@id='f-beneficiary-birth_date']/@value") == ["1940-01-01"]
    assert edit.xpath("//input[@name='needs'][@checked]/@value") == ["meals"]
    token = other.get_cookie("ambito_csrf").value

    # Presenting it runs the whole form: the page says what to complete, nothing is registered.
    presented = other.post(link + "/presenta", data={"csrf_token": token})
    assert presented.status_code == 422
    doc = html.fromstring(presented.text)
    assert doc.xpath("//*[@id='completare']")
    assert doc.xpath("//input[@id='f-applicant-tax_code']/@value") == ["VRDLGU70M01C80"]
    summary = doc.xpath("string(//div[@role='alert'])")
    assert "Codice fiscale" in summary and "Comune di residenza" in summary
    code = link.rsplit("/", 1)[1]
    assert other.post(f"/api/intake/sad-requests/{code}/submit", json={}).status_code == 422
    with intake_worker.session_factory() as session:
        assert session.scalars(select(SadRequest)).one().status == "draft"

    # Completed and presented.
    payload = intake_sad_payload()
    payload["isee"]["value_cents"] = "9.500,00"
    completed = other.post(link + "/modifica", data=MultiDict([*intake_form_pairs(payload),
                                                                ("csrf_token", token)]))
    assert completed.status_code == 303
    assert other.post(link + "/presenta", data={"csrf_token": token}).status_code == 303
    with intake_worker.session_factory() as session:
        found = session.scalars(select(SadRequest)).one()
        assert (found.status, found.comune, found.data["isee"]["value_cents"]) == ("received", "schilpario",
                                                                                   950000)
