"""The OpenAPI document: valid OpenAPI 3, and the request body is the form's own schema."""

from __future__ import annotations

from openapi_spec_validator import validate


def test_intake_openapi_document(intake_client) -> None:
    response = intake_client.get("/api/intake/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert set(paths) == {"/api/intake/calls", "/api/intake/calls/{slug}",
                          "/api/intake/calls/{slug}/applications",
                          "/api/intake/applications/{tracking_code}", "/api/intake/comuni",
                          "/api/intake/sad-requests", "/api/intake/sad-requests/{tracking_code}/attachments",
                          "/api/intake/sad-requests/{tracking_code}/submit",
                          "/api/intake/sad-requests/{tracking_code}/documents-sent",
                          "/api/intake/sad-requests/{request_id}",
                          *(f"/api/intake/sad-requests/{{request_id}}/{action}" for action in (
                              "notes", "care-plan", "approve", "reject", "request-documents")),
                          "/api/intake/desk/locations", "/api/intake/desk/availability",
                          "/api/intake/desk/bookings", "/api/intake/desk/bookings/{booking_id}",
                          "/api/intake/desk/bookings/{booking_id}/reschedule",
                          "/api/intake/desk/bookings/{booking_id}/calendar.ics", "/api/intake/desk/closures"}
    post = paths["/api/intake/calls/{slug}/applications"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ApplicationForm"}
    assert set(post["responses"]) == {"201", "404", "409", "422"}
    assert "application/problem+json" in post["responses"]["422"]["content"]
    schemas = spec["components"]["schemas"]
    form = schemas["ApplicationForm"]
    assert set(form["required"]) == {"organisation", "legal_representative", "contact_person", "areas",
                                     "commitments_accepted", "publication_consent", "ip_release",
                                     "privacy_acknowledged"}
    assert form["additionalProperties"] is False
    organisation = schemas["Organisation"]["properties"]
    assert organisation["category"]["enum"] == ["ets", "other_nonprofit", "trade_union"]
    assert organisation["tax_code"]["title"] == "Codice fiscale o partita IVA"
    assert "runts_number" not in schemas["Organisation"]["required"]
    assert schemas["Call"]["properties"]["deadline"]["format"] == "date-time"
    status = schemas["ApplicationStatus"]["properties"]
    assert status["status"]["enum"] == ["draft", "received", "packaged", "delivered", "registered"]
    sad_form = schemas["SadRequestForm"]
    assert {"applicant", "beneficiary", "condition", "needs", "self_declaration",
            "health_data_consent"} <= set(sad_form["required"])
    upload = paths["/api/intake/sad-requests/{tracking_code}/attachments"]["post"]
    assert {"201", "413", "415", "422"} <= set(upload["responses"])


def test_intake_openapi_health(intake_client) -> None:
    assert intake_client.get("/api/intake/health").get_json() == {"status": "ok", "service": "intake"}
