"""The protocol inbox API, through the Flask test client with real identity tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from zoneinfo import ZoneInfo

import pytest
from documents import tasks
from documents.services import get_package

CALLBACK = "intake.package_status"
ROME = ZoneInfo("Europe/Rome")
FILE_KEYS = {"name", "role", "media_type", "sha256", "size"}


def _today() -> dt.date:
    return dt.datetime.now(ROME).date()


def _problem(response, status: int) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.get_json()


def test_list_and_detail_shapes(documents_client, documents_officer, documents_delivered,
                                documents_runtime) -> None:
    response = documents_client.get("/api/documents/packages", headers=documents_officer)
    assert response.status_code == 200
    [package] = response.get_json()
    assert set(package) == {"id", "subject", "sender", "recipient", "status", "created_at", "files"}
    assert package["id"] == documents_delivered
    assert package["status"] == "delivered"
    assert package["subject"].startswith("Manifestazione di interesse")
    assert package["sender"] == {"name": "Cooperativa Sociale L'Àncora", "pec": "ancora@pec.example.it",
                                 "email": "info@ancora.example.it"}
    assert package["recipient"] == {"name": "Comune di Clusone",
                                    "pec": "protocollo@pec.comune.clusone.bg.it"}
    assert dt.datetime.fromisoformat(package["created_at"]).tzinfo is not None
    roles = ["primary", "segnatura", "metadata", "manifest", "message"]
    assert [f["role"] for f in package["files"]] == roles
    for file in package["files"]:
        assert set(file) == FILE_KEYS
        data = documents_runtime.store.path(documents_delivered, file["name"]).read_bytes()
        assert (file["sha256"], file["size"]) == (hashlib.sha256(data).hexdigest(), len(data))
    assert package["files"][0]["media_type"] == "application/pdf"

    detail = documents_client.get(f"/api/documents/packages/{documents_delivered}", headers=documents_officer)
    assert detail.status_code == 200
    body = dict(detail.get_json())
    timeline = body.pop("timeline")
    state = {key: body.pop(key) for key in ("delivery_attempts", "delivery_error", "protocol", "rejection")}
    assert state == {"delivery_attempts": 1, "delivery_error": None, "protocol": None, "rejection": None}
    assert body == package
    assert [entry["event"] for entry in timeline] == ["built", "sealed", "delivered"]
    for entry in timeline:
        assert set(entry) == {"at", "event", "detail"}
        assert dt.datetime.fromisoformat(entry["at"]).tzinfo is not None
    assert "B-T" in timeline[1]["detail"]


def test_list_is_newest_first_and_filters_by_status(documents_client, documents_officer, documents_build,
                                                    documents_payload) -> None:
    first = documents_build(1)
    second = documents_build(2, documents_payload(tracking="Q4W8E2RT", number="0000002"))
    tasks.deliver_package.run(package_id=first)

    listed = documents_client.get("/api/documents/packages", headers=documents_officer).get_json()
    assert [p["id"] for p in listed] == [second, first]
    delivered = documents_client.get("/api/documents/packages?status=delivered",
                                     headers=documents_officer).get_json()
    assert [p["id"] for p in delivered] == [first]
    built = documents_client.get("/api/documents/packages?status=built", headers=documents_officer).get_json()
    assert [p["id"] for p in built] == [second]

    found = documents_client.get("/api/documents/packages?q=q4w8e2rt", headers=documents_officer).get_json()
    assert [p["id"] for p in found] == [second]  # by tracking code
    found = documents_client.get("/api/documents/packages?q=Àncora+co-programmazione",
                                 headers=documents_officer).get_json()
    assert [p["id"] for p in found] == [second, first]
    nothing = documents_client.get("/api/documents/packages?q=nessuno", headers=documents_officer)
    assert nothing.get_json() == []

    problem = _problem(documents_client.get("/api/documents/packages?status=archiviato",
                                            headers=documents_officer), 422)
    assert "status" in problem["errors"]


@pytest.mark.parametrize("path", [
    "/api/documents/packages",
    "/api/documents/packages/x",
    "/api/documents/packages/x/files/manifest.json",
    "/api/documents/packages/x/download",
])
def test_reading_needs_a_protocol_officer(documents_client, documents_operator_token, path) -> None:
    _problem(documents_client.get(path), 401)
    _problem(documents_client.get(path, headers={"Authorization": "Bearer not-a-token"}), 401)
    _problem(documents_client.get(path, headers={"Authorization": f"Bearer {documents_operator_token}"}), 403)


def test_registration_needs_a_protocol_officer(documents_client, documents_operator_token,
                                               documents_delivered) -> None:
    path = f"/api/documents/packages/{documents_delivered}/registration"
    body = {"number": "12345", "date": _today().isoformat()}
    _problem(documents_client.post(path, json=body), 401)
    _problem(documents_client.post(path, json=body,
                                   headers={"Authorization": f"Bearer {documents_operator_token}"}), 403)


def test_unknown_package_and_file_are_404(documents_client, documents_officer, documents_delivered) -> None:
    for path in ("/api/documents/packages/00000000-0000-0000-0000-000000000000",
                 "/api/documents/packages/nope/download",
                 f"/api/documents/packages/{documents_delivered}/files/other.pdf",
                 f"/api/documents/packages/{documents_delivered}/files/..%2Fdocuments.sqlite3"):
        assert _problem(documents_client.get(path, headers=documents_officer), 404)["title"]
    _problem(documents_client.post("/api/documents/packages/nope/registration", headers=documents_officer,
                                   json={"number": "1", "date": _today().isoformat()}), 404)


def test_file_download_returns_the_stored_bytes(documents_client, documents_officer, documents_delivered,
                                                documents_runtime) -> None:
    for name, media_type in (("domanda-K7P2M9QX.pdf", "application/pdf"),
                             ("Segnatura.xml", "application/xml"),
                             ("message.eml", "message/rfc822")):
        response = documents_client.get(f"/api/documents/packages/{documents_delivered}/files/{name}",
                                         headers=documents_officer)
        assert response.status_code == 200
        assert response.mimetype == media_type
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert name in response.headers["Content-Disposition"]
        assert response.data == documents_runtime.store.path(documents_delivered, name).read_bytes()


def test_zip_download_holds_every_file(documents_client, documents_officer, documents_delivered,
                                       documents_runtime) -> None:
    response = documents_client.get(f"/api/documents/packages/{documents_delivered}/download",
                                    headers=documents_officer)
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == "attachment; filename=domanda-K7P2M9QX.zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["domanda-K7P2M9QX.pdf", "Segnatura.xml", "metadata.xml",
                                      "manifest.json", "message.eml"]
        for name in archive.namelist():
            assert archive.read(name) == documents_runtime.store.path(documents_delivered, name).read_bytes()


@pytest.mark.parametrize(("body", "errors"), [
    ({}, {"number": ["Campo obbligatorio."], "date": ["Campo obbligatorio."]}),
    ({"number": "   ", "date": "21/11/2026"},
     {"number": ["Campo obbligatorio."], "date": ["Data non valida: usare il formato AAAA-MM-GG."]}),
    ({"number": "1" * 51, "date": "2999-01-01"},
     {"number": ["Al massimo 50 caratteri."], "date": ["La data non può essere nel futuro."]}),
    ({"number": "7", "date": "2000-01-01"}, {"date": None}),
])
def test_registration_is_validated_per_field(documents_client, documents_officer, documents_delivered,
                                             documents_outbox, body, errors) -> None:
    response = documents_client.post(f"/api/documents/packages/{documents_delivered}/registration",
                                     json=body, headers=documents_officer)
    problem = _problem(response, 422)
    assert set(problem["errors"]) == set(errors)
    for field, messages in errors.items():
        if messages is not None:
            assert problem["errors"][field] == messages
    if body.get("date") == "2000-01-01":
        assert problem["errors"]["date"][0].startswith("La data non può precedere la ricezione")
    assert "registered" not in str(documents_outbox())


def test_registration_records_who_and_reports_back(documents_client, documents_officer,
                                                   documents_delivered, documents_outbox,
                                                   documents_runtime) -> None:
    today = _today().isoformat()
    response = documents_client.post(f"/api/documents/packages/{documents_delivered}/registration",
                                     json={"number": " 2026/0012345 ", "date": today},
                                     headers=documents_officer)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["status"] == "registered"
    assert response.get_json()["id"] == documents_delivered
    assert response.get_json()["protocol"] == {"number": "2026/0012345", "date": today}

    with documents_runtime.session_factory() as session:
        package = get_package(session, documents_delivered)
    assert (package.protocol_number, package.protocol_date.isoformat()) == ("2026/0012345", today)
    assert package.registered_by == "Paola Bianchi (protocollo.clusone)"
    assert package.registered_at is not None
    assert package.events[-1].event == "registered"
    assert package.events[-1].actor == "Paola Bianchi (protocollo.clusone)"
    registered = (CALLBACK, {"source_ref": "application:1", "package_id": documents_delivered,
                             "status": "registered",
                             "protocol": {"number": "2026/0012345", "date": today}})
    assert documents_outbox()[-1] == registered

    # The same registration again (a retry, a double click) is accepted and changes nothing.
    again = documents_client.post(f"/api/documents/packages/{documents_delivered}/registration",
                                  json={"number": "2026/0012345", "date": today},
                                  headers=documents_officer)
    assert again.status_code == 200
    assert again.get_json() == response.get_json()
    assert [task for task, kwargs in documents_outbox() if kwargs.get("status") == "registered"] == [CALLBACK]

    # A different number for a registered package is a conflict.
    problem = _problem(documents_client.post(
        f"/api/documents/packages/{documents_delivered}/registration",
        json={"number": "2026/0099999", "date": today}, headers=documents_officer), 409)
    assert "2026/0012345" in problem["detail"]
    assert problem["protocol"] == {"number": "2026/0012345", "date": today}
    listed = documents_client.get("/api/documents/packages?status=registered", headers=documents_officer)
    assert [p["id"] for p in listed.get_json()] == [documents_delivered]


def test_a_package_not_yet_delivered_cannot_be_registered(documents_client, documents_officer,
                                                          documents_build) -> None:
    package_id = documents_build()
    _problem(documents_client.post(f"/api/documents/packages/{package_id}/registration",
                                   json={"number": "1", "date": _today().isoformat()},
                                   headers=documents_officer), 409)


def test_openapi_describes_the_api(documents_client) -> None:
    spec = documents_client.get("/api/documents/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {
        "/api/documents/packages",
        "/api/documents/packages/{package_id}",
        "/api/documents/packages/{package_id}/files/{name}",
        "/api/documents/packages/{package_id}/download",
        "/api/documents/packages/{package_id}/registration",
        "/api/documents/packages/{package_id}/delivery",
        "/api/documents/packages/{package_id}/rejection",
        "/api/documents/replies",
        "/api/documents/certificates/seal.pem",
        "/api/documents/certificates/ca.pem",
    }
    package = spec["components"]["schemas"]["Package"]["properties"]
    assert set(package) == {"id", "subject", "sender", "recipient", "status", "created_at", "files"}
    assert documents_client.get("/api/documents/health").get_json() == {"status": "ok",
                                                                        "service": "documents"}
