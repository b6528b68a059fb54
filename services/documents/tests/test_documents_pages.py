"""The protocol inbox pages, as a protocol officer's browser uses them (identity cookie, CSRF form)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from documents import tasks
from documents.services import get_package

from .conftest import form_csrf, page_text

ROME = ZoneInfo("Europe/Rome")
CALLBACK = "intake.package_status"


def test_a_person_without_a_token_is_sent_to_log_in(documents_client) -> None:
    response = documents_client.get("/protocollo/?status=delivered")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/refresh?next=/protocollo/%3Fstatus%3Ddelivered"


def test_other_roles_are_refused(documents_client, documents_operator_token, documents_delivered) -> None:
    documents_client.set_cookie("ambito_identity", documents_operator_token)
    for path in ("/protocollo/", f"/protocollo/pacchetti/{documents_delivered}"):
        response = documents_client.get(path)
        assert response.status_code == 403
        assert response.mimetype == "text/html"


def test_inbox_lists_delivered_packages_in_italian(documents_browser, documents_delivered,
                                                   documents_runtime) -> None:
    response = documents_browser.get("/protocollo/")
    assert response.status_code == 200
    html = page_text(response)
    with documents_runtime.session_factory() as session:
        delivered_at = get_package(session, documents_delivered).delivered_at
    assert delivered_at.astimezone(ROME).strftime("%d/%m/%Y %H:%M") in html
    assert "Manifestazione di interesse alla co-programmazione - Cooperativa Sociale L'Àncora" in html
    assert "Cooperativa Sociale L'Àncora" in html and "Comune di Clusone" in html
    assert "da protocollare" in html
    assert f'href="/protocollo/pacchetti/{documents_delivered}"' in html
    assert '<select id="filtro-stato" name="status"' in html
    assert '<label for="filtro-stato"' in html


def test_inbox_filter_by_status_works_without_javascript(documents_browser, documents_delivered,
                                                         documents_build, documents_payload) -> None:
    in_transit = documents_build(2, documents_payload(tracking="Q4W8E2RT", number="0000002"))
    html = page_text(documents_browser.get("/protocollo/"))
    assert documents_delivered in html
    assert in_transit not in html  # not yet delivered to the inbox

    html = page_text(documents_browser.get("/protocollo/?status=registered"))
    assert documents_delivered not in html
    assert "Nessun pacchetto in questo stato." in html
    assert '<option value="registered" selected>' in html

    html = page_text(documents_browser.get("/protocollo/?status=delivered"))
    assert documents_delivered in html

    assert documents_browser.get("/protocollo/?status=archiviato").status_code == 422


def test_detail_shows_files_hashes_seal_and_timeline(documents_browser, documents_delivered,
                                                     documents_runtime) -> None:
    response = documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}")
    assert response.status_code == 200
    html = page_text(response)
    with documents_runtime.session_factory() as session:
        package = get_package(session, documents_delivered)
    for file in package.files:
        assert f'<code class="font-monospace text-break">{file.sha256}</code>' in html
        assert f'/protocollo/pacchetti/{documents_delivered}/file/{file.name}' in html
    assert "Documento principale" in html and "Segnatura di protocollo" in html
    assert "application/pdf" in html
    assert re.search(r"\d+,\d kB", html)
    assert "Sigillo valido" in html and "alert-success" in html
    assert "Scarica pacchetto (.zip)" in html
    for label in ("Pacchetto creato", "Sigillo elettronico apposto", "Consegnato"):
        assert label in html
    assert "Registra protocollo" in html
    assert '<label for="f-number"' in html and '<label for="f-date"' in html

    pdf = documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}/file/domanda-K7P2M9QX.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data == documents_runtime.store.path(documents_delivered, "domanda-K7P2M9QX.pdf").read_bytes()
    archive = documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}/pacchetto.zip")
    assert archive.status_code == 200 and archive.mimetype == "application/zip"


def test_a_tampered_primary_document_shows_an_invalid_seal(documents_browser, documents_delivered,
                                                           documents_runtime) -> None:
    path = documents_runtime.store.path(documents_delivered, "domanda-K7P2M9QX.pdf")
    data = bytearray(path.read_bytes())
    data[200] ^= 0x01
    path.write_bytes(bytes(data))
    html = page_text(documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}"))
    assert "Sigillo non valido" in html and "alert-danger" in html
    assert "Sigillo valido" not in html


def test_registration_form_records_the_number(documents_browser, documents_delivered,
                                              documents_runtime, documents_outbox) -> None:
    page = documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}")
    today = dt.datetime.now(ROME).date()
    response = documents_browser.post(f"/protocollo/pacchetti/{documents_delivered}/registrazione", data={
        "csrf_token": form_csrf(page_text(page)), "number": "0012345", "date": today.isoformat()})
    assert response.status_code == 303
    assert response.headers["Location"] == f"/protocollo/pacchetti/{documents_delivered}"

    html = page_text(documents_browser.get(response.headers["Location"]))
    assert "Numero di protocollo registrato." in html
    assert f"0012345</strong> del {today:%d/%m/%Y}" in html
    assert "registrato da Paola Bianchi (protocollo.clusone)" in html
    assert 'action="/protocollo/pacchetti/' not in html  # the form is gone once registered
    # The confirmation is shown once.
    assert "Numero di protocollo registrato." not in page_text(
        documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}"))
    assert "protocollato" in page_text(documents_browser.get("/protocollo/?status=registered"))
    assert documents_outbox()[-1] == (CALLBACK, {
        "source_ref": "application:1", "package_id": documents_delivered, "status": "registered",
        "protocol": {"number": "0012345", "date": today.isoformat()}})


def test_registration_form_shows_errors_per_field(documents_browser, documents_delivered,
                                                  documents_runtime) -> None:
    page = documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}")
    response = documents_browser.post(f"/protocollo/pacchetti/{documents_delivered}/registrazione", data={
        "csrf_token": form_csrf(page_text(page)), "number": "", "date": "2999-12-31"})
    assert response.status_code == 422
    html = page_text(response)
    assert re.search(r'<div id="f-number-error" class="invalid-feedback">\s*<span class="d-block">'
                     r'Campo obbligatorio.</span>', html)
    assert re.search(r'<div id="f-date-error" class="invalid-feedback">\s*<span class="d-block">'
                     r'La data non può essere nel futuro.</span>', html)
    assert 'value="2999-12-31"' in html  # what was typed is kept
    assert html.count('aria-invalid="true"') == 2
    assert 'href="#f-number"' in html and 'href="#f-date"' in html  # the summary links to the fields
    assert "Il modulo contiene 2 errori" in html
    with documents_runtime.session_factory() as session:
        assert get_package(session, documents_delivered).status == "delivered"


def test_registration_form_needs_the_csrf_token(documents_browser, documents_delivered) -> None:
    documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}")
    response = documents_browser.post(f"/protocollo/pacchetti/{documents_delivered}/registrazione", data={
        "number": "0012345", "date": dt.datetime.now(ROME).date().isoformat()})
    assert response.status_code == 400


def test_registration_form_reports_a_conflicting_number(documents_browser, documents_delivered,
                                                        documents_client, documents_officer) -> None:
    today = dt.datetime.now(ROME).date().isoformat()
    page = documents_browser.get(f"/protocollo/pacchetti/{documents_delivered}")
    # Meanwhile a colleague records another number.
    documents_client.post(f"/api/documents/packages/{documents_delivered}/registration",
                          json={"number": "111", "date": today}, headers=documents_officer)
    response = documents_browser.post(f"/protocollo/pacchetti/{documents_delivered}/registrazione", data={
        "csrf_token": form_csrf(page_text(page)), "number": "222", "date": today})
    assert response.status_code == 409
    assert "già protocollato con il numero 111" in page_text(response)


def test_a_package_in_transit_has_no_registration_form(documents_browser, documents_build) -> None:
    package_id = documents_build()
    html = page_text(documents_browser.get(f"/protocollo/pacchetti/{package_id}"))
    assert "in consegna" in html
    assert "Registra protocollo" not in html
    tasks.deliver_package.run(package_id=package_id)
    assert "Registra protocollo" in page_text(documents_browser.get(f"/protocollo/pacchetti/{package_id}"))
