"""The protocol inbox as a working tool: search, reject, upload a reply, failed deliveries with
"retry now", the size limit, and the public certificates page."""

from __future__ import annotations

import re
from io import BytesIO

import pytest
from ambito_common.testing import free_port
from documents import tasks
from documents.services import get_package

from .conftest import agid_reply, form_csrf, page_text

CALLBACK = "intake.package_status"


def test_search_by_tracking_code_sender_or_subject(documents_browser, documents_delivered, documents_build,
                                                   documents_payload) -> None:
    # A second package whose tracking code, sender and subject each hold a word found nowhere
    # else (not in the other two fields, not in the first package): a hit on that word can
    # only come from that one field.
    payload = documents_payload(tracking="Q4W8E2RT", number="0000002")
    payload["subject"] = payload["meta"]["subject"] = "Manifestazione di interesse - tavolo Anziani fragili"
    payload["meta"]["sender"] = {"name": "Associazione Il Faro", "tax_code": "92345678901",
                                 "pec": "segreteria@pec.example.it", "email": "info@example.org"}
    other = documents_build(2, payload)
    tasks.deliver_package.run(package_id=other)

    def found(query: str) -> set[str]:
        html = page_text(documents_browser.get("/protocollo/", query_string={"q": query}))
        return {package for package in (documents_delivered, other) if package in html}

    assert found("Q4W8E2RT") == {other}  # tracking code (the primary document's name)
    assert found("K7P2M9QX") == {documents_delivered}
    assert found("Faro") == {other}  # sender only
    assert found("fragili") == {other}  # subject only
    assert found("Àncora") == {documents_delivered}  # the first one's sender and subject
    assert found("interesse") == {documents_delivered, other}
    assert found("Faro fragili") == {other} and found("Faro Àncora") == set()  # every word must match
    html = page_text(documents_browser.get("/protocollo/?q=Q4W8E2RT"))
    assert 'value="Q4W8E2RT"' in html and '<label for="cerca"' in html
    assert "Nessun pacchetto" in page_text(documents_browser.get("/protocollo/?q=inesistente"))


def test_reject_with_a_reason(documents_browser, documents_delivered, documents_runtime,
                              documents_outbox) -> None:
    page = page_text(documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}"))
    assert "Respingi" in page
    empty = documents_browser.post(f"/protocollo/pacchetti/{documents_delivered}/rifiuto",
                                   data={"csrf_token": form_csrf(page), "reason": "  "})
    assert empty.status_code == 422 and "Campo obbligatorio." in page_text(empty)

    before = documents_outbox()
    response = documents_browser.post(f"/protocollo/pacchetti/{documents_delivered}/rifiuto",
                                      data={"csrf_token": form_csrf(page), "reason": "Documento illeggibile"})
    assert response.status_code == 303
    html = page_text(documents_browser.get(response.headers["Location"]))
    assert "Pacchetto respinto." in html and "respinto" in html and "Documento illeggibile" in html
    assert "Registra protocollo" not in html
    with documents_runtime.session_factory() as session:
        assert get_package(session, documents_delivered).rejection_reason == "Documento illeggibile"
    # The source hears of it, with the reason, and the same rejection sent again changes nothing.
    rejected = (CALLBACK, {"source_ref": "application:1", "package_id": documents_delivered,
                           "status": "rejected",
                           "rejection": {"code": None, "reason": "Documento illeggibile"}})
    assert documents_outbox()[len(before):] == [rejected]
    documents_browser.post(f"/protocollo/pacchetti/{documents_delivered}/rifiuto",
                           data={"csrf_token": form_csrf(page), "reason": "Documento  illeggibile"})
    with documents_runtime.session_factory() as session:
        assert [e.event for e in get_package(session, documents_delivered).events].count("rejected") == 1


def test_upload_a_conferma_from_the_page(documents_browser, documents_delivered, documents_runtime) -> None:
    conferma = agid_reply("ConfermaRicezione", theirs="0000777", register="PROT")
    inbox = page_text(documents_browser.get("/protocollo/"))
    assert 'enctype="multipart/form-data"' in inbox

    bad = documents_browser.post("/protocollo/risposte", data={
        "csrf_token": form_csrf(inbox), "reply": (BytesIO(b"<nonsense/>"), "Conferma.xml")},
        content_type="multipart/form-data")
    assert bad.status_code == 422 and "non è leggibile" in page_text(bad)

    response = documents_browser.post("/protocollo/risposte", data={
        "csrf_token": form_csrf(inbox), "reply": (BytesIO(conferma), "Conferma.xml")},
        content_type="multipart/form-data")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/protocollo/pacchetti/{documents_delivered}"
    html = page_text(documents_browser.get(response.headers["Location"]))
    assert "Risposta registrata" in html and "0000777" in html
    assert "Conferma di protocollazione (Conferma.xml)" in html and "caricata a mano" in html
    link = re.search(r'href="(/protocollo/pacchetti/[^"]+/risposte/\d+)"', html).group(1)
    evidence = documents_browser.get(link)
    assert evidence.status_code == 200 and evidence.data == conferma
    assert evidence.mimetype == "application/xml"
    missing = documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}/risposte/999")
    assert missing.status_code == 404


def test_certificates_page_is_public(documents_client, documents_runtime) -> None:
    response = documents_client.get("/protocollo/certificati")
    assert response.status_code == 200
    html = page_text(response)
    assert 'href="/api/documents/certificates/seal.pem"' in html
    assert 'href="/api/documents/certificates/ca.pem"' in html
    assert "sigillo elettronico (TEST)" in html
    assert re.search(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", html)


class TestFailedDeliveries:
    """PEC configured, the provider's SMTP server unreachable."""

    @pytest.fixture
    def documents_environ(self, documents_environ: dict[str, str]) -> dict[str, str]:
        return {**documents_environ, "DOCUMENTS_PEC_SMTP_URL": f"smtp://127.0.0.1:{free_port()}"}

    def test_a_failed_delivery_is_visible_with_retry_now(self, documents_browser, documents_build,
                                                         documents_outbox) -> None:
        package_id = documents_build()
        with pytest.raises(OSError):
            tasks.deliver_package.run(package_id=package_id)

        html = page_text(documents_browser.get("/protocollo/?status=failed"))
        assert package_id in html
        assert package_id in page_text(documents_browser.get("/protocollo/"))
        page = page_text(documents_browser.get(f"/protocollo/pacchetti/{package_id}"))
        assert "Consegna non riuscita" in page and "Riprova ora" in page

        response = documents_browser.post(f"/protocollo/pacchetti/{package_id}/consegna",
                                          data={"csrf_token": form_csrf(page)})
        assert response.status_code == 303
        notice = page_text(documents_browser.get(response.headers["Location"]))
        assert "Nuovo tentativo di consegna avviato" in notice
        assert documents_outbox()[-1] == ("documents.deliver_package", {"package_id": package_id})

    def test_the_size_limit_error_is_shown_without_retry_now(self, documents_browser, documents_build,
                                                             documents_payload, documents_outbox) -> None:
        payload = documents_payload()
        payload["kind"] = "other_submission"
        payload["meta"]["recipient"]["pec_max_bytes"] = 10_000
        package_id = documents_build(payload=payload)
        assert tasks.deliver_package.run(package_id=package_id) == "built"
        page = page_text(documents_browser.get(f"/protocollo/pacchetti/{package_id}"))
        assert "supera il limite di 10,0 kB della casella del destinatario" in page
        assert 'role="alert"' in page
        # The package is sealed: a new attempt would be refused for the same size, so no
        # "retry now", but the reason and what to do instead.
        assert "Riprova ora" not in page and f"/protocollo/pacchetti/{package_id}/consegna" not in page
        assert "Un nuovo tentativo di invio fallirebbe allo stesso modo" in page
        # Posting the retry anyway (a stale page, the API) is refused with the reason, queueing nothing.
        queued = documents_outbox()
        response = documents_browser.post(f"/protocollo/pacchetti/{package_id}/consegna",
                                          data={"csrf_token": form_csrf(page)})
        assert response.status_code == 409
        assert "Un nuovo tentativo non può riuscire" in page_text(response)
        assert documents_outbox() == queued
