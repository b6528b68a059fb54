"""Case handling by the comune: who may see a case, the social worker's decisions, audit and e-mail."""

from __future__ import annotations

import pytest
from intake import tasks
from intake.models import OutboxMessage, SadEvent
from sqlalchemy import select

PDF_BYTES = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def submitted(intake_client, intake_sad_payload) -> dict[str, str]:
    created = intake_client.post("/api/intake/sad-requests", json=intake_sad_payload()).get_json()
    assert intake_client.post(f"/api/intake/sad-requests/{created['tracking_code']}/submit",
                              json={}).status_code == 200
    return created


def _send_pending_updates(runtime) -> None:
    """Run the e-mail tasks the outbox holds, as the worker would."""
    with runtime.session_factory() as session:
        events = [m.kwargs["event_id"] for m in session.scalars(
            select(OutboxMessage).where(OutboxMessage.task_name == "intake.send_sad_update"))]
    for event_id in events:
        tasks.send_sad_update(event_id=event_id)


def test_intake_sad_case_is_seen_only_by_its_comune_and_the_ambito(intake_client, intake_token,
                                                                    submitted) -> None:
    path = f"/api/intake/sad-requests/{submitted['id']}"
    assert intake_client.get(path).status_code == 401
    other = intake_client.get(path, headers=intake_token("anna.rossi", "social_worker", comune="clusone"))
    assert other.status_code == 403 and other.mimetype == "application/problem+json"
    operator = intake_client.get(path, headers=intake_token("op", "comune_operator", comune="schilpario"))
    assert operator.status_code == 403
    mine = intake_client.get(path, headers=intake_token("marta.neri", "social_worker", comune="schilpario"))
    assert mine.status_code == 200
    body = mine.get_json()
    assert body["status"] == "received" and body["case_status"] == "new"
    assert [h["status"] for h in body["history"]] == ["draft", "received"]
    assert body["data"]["beneficiary"]["tax_code"] == "BRTGNN40A41C800C"
    admin = intake_client.get(path, headers=intake_token("ambito", "ambito_admin"))
    assert admin.status_code == 200
    # The Ambito's staff reads, the comune decides.
    assert intake_client.post(path + "/reject", json={"reason": "x"},
                              headers=intake_token("ambito", "ambito_admin")).status_code == 403
    assert intake_client.post(path + "/reject", json={"reason": "x"}, headers=intake_token(
        "anna.rossi", "social_worker", comune="clusone")).status_code == 403


def test_intake_sad_case_transitions_are_audited_and_mailed(intake_client, intake_runtime, intake_token,
                                                            intake_upload, submitted,
                                                            intake_mail) -> None:
    path = f"/api/intake/sad-requests/{submitted['id']}"
    worker = intake_token("marta.neri", "social_worker", comune="schilpario")
    code = submitted["tracking_code"]

    note = intake_client.post(path + "/notes", json={"text": "Visita domiciliare del 20/11."}, headers=worker)
    assert note.status_code == 200 and note.get_json()["case_status"] == "assessment"
    asked = intake_client.post(path + "/request-documents",
                               json={"message": "Certificato del medico curante"}, headers=worker)
    assert asked.get_json()["case_status"] == "documents_requested"
    # The citizen answers through the tracking link, with an upload.
    assert intake_client.post(f"/api/intake/sad-requests/{code}/documents-sent", json={}).status_code == 422
    assert intake_upload(code, PDF_BYTES, name="certificato.pdf", kind="certificate").status_code == 201
    answered = intake_client.post(f"/api/intake/sad-requests/{code}/documents-sent", json={})
    assert answered.get_json() == {"case_status": "assessment"}

    assert intake_client.post(path + "/approve", json={}, headers=worker).status_code == 409  # no PAI yet
    bad_plan = intake_client.post(path + "/care-plan", json={"start_date": "2026-12-01", "weeks": 12,
                                                              "provider": "nessuno"}, headers=worker)
    assert bad_plan.status_code == 422
    assert set(bad_plan.get_json()["errors"]) == {"asa_hours_week"}
    plan = intake_client.post(path + "/care-plan", json={
        "asa_hours_week": 4, "oss_hours_week": 2, "start_date": "2026-12-01", "weeks": 12,
        "provider": "coop-sociale-scalve"}, headers=worker).get_json()["care_plan"]
    # ISEE 9,500 € falls in the 8,000-14,000 € band of the default rule: 10 €/h, 6 h a week, 12 weeks.
    assert plan["copayment_hourly_cents"] == 1000 and plan["copayment_total_cents"] == 72000
    approved = intake_client.post(path + "/approve", json={}, headers=worker).get_json()
    assert approved["case_status"] == "awaiting_budget"
    assert intake_client.post(path + "/reject", json={"reason": "x"}, headers=worker).status_code == 409

    with intake_runtime.session_factory() as session:
        events = session.scalars(select(SadEvent).where(SadEvent.request_id == submitted["id"])
                                 .order_by(SadEvent.id)).all()
        voucher = session.scalars(select(OutboxMessage).where(
            OutboxMessage.task_name == "vouchers.request_voucher")).one().kwargs
    assert [(e.status, e.actor) for e in events] == [
        ("draft", "cittadino"), ("received", "cittadino"), ("assessment", "Marta Neri"),
        ("documents_requested", "Marta Neri"), ("assessment", "cittadino"), ("assessment", "Marta Neri"),
        ("awaiting_budget", "Marta Neri")]
    assert all(e.at is not None for e in events)
    assert voucher["source_ref"] == f"sad_request:{submitted['id']}" and voucher["comune"] == "schilpario"
    assert voucher["isee_cents"] == 950000 and voucher["care_plan"]["provider"] == "coop-sociale-scalve"

    _send_pending_updates(intake_runtime)
    _send_pending_updates(intake_runtime)  # a redelivered task sends nothing twice
    assert len(intake_mail.mails) == len(events)
    assert all(m["To"] == "luigi.verdi@example.it" for m in intake_mail.mails)
    bodies = [m.get_payload(decode=True).decode(m.get_content_charset()) for m in intake_mail.mails]
    assert f"https://ambito.example.it/intake/sad/{code}" in bodies[0] and "bozza" in bodies[0]
    assert "Certificato del medico curante" in bodies[3]
    assert "in attesa dell'assegnazione del budget" in bodies[-1]

    page = intake_client.get(f"/intake/sad/{code}")
    assert page.status_code == 200 and "in attesa di budget" in page.text


def test_intake_sad_reject_needs_a_reason(intake_client, intake_token, submitted) -> None:
    path = f"/api/intake/sad-requests/{submitted['id']}"
    worker = intake_token("marta.neri", "social_worker", comune="schilpario")
    assert intake_client.post(path + "/reject", json={}, headers=worker).status_code == 422
    rejected = intake_client.post(path + "/reject", json={"reason": "Residenza non confermata"},
                                  headers=worker).get_json()
    assert rejected["case_status"] == "rejected" and rejected["decision_reason"] == "Residenza non confermata"
