"""A real browser (chromium via Playwright) books a desk slot and files a SAD request with an upload.

The intake app is served over HTTP by werkzeug in a thread, on a SQLite file;
no JavaScript of ours runs, so this checks that plain forms carry a person
through both services.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from ambito_common.testing import free_port
from flask import Flask
from werkzeug.serving import make_server

from tests.browser import chromium

pytestmark = pytest.mark.slow


@pytest.fixture
def intake_live_url(intake_app: Flask) -> Iterator[str]:
    port = free_port()
    server = make_server("127.0.0.1", port, intake_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_intake_browser_books_a_slot_and_files_a_request(intake_live_url, tmp_path) -> None:
    pdf = tmp_path / "attestazione-isee.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    with chromium() as browser:
        page = browser.new_page()

        page.goto(f"{intake_live_url}/intake/sportello")
        page.check("#sede-clusone")
        page.click("text=Mostra gli orari liberi")
        page.check("#f-start")  # the first free slot
        page.check("#f-topic")
        for field, value in {"person-first_name": "Paola", "person-last_name": "Bonetti",
                             "concerning-first_name": "Giacomo", "concerning-last_name": "Bonetti",
                             "contact-email": "paola@example.it", "contact-phone": "3331112223"}.items():
            page.fill(f"#f-{field}", value)
        page.select_option("#f-comune", "rovetta")
        page.check("#f-mode")
        page.click("button:has-text('Prenota')")
        assert page.locator("h1").inner_text() == "Appuntamento prenotato"

        page.goto(f"{intake_live_url}/intake/sad/nuova")
        for field, value in {
                "applicant-first_name": "Luigi", "applicant-last_name": "Verdi",
                "applicant-tax_code": "VRDLGU70M01C800H", "applicant-email": "luigi@example.it",
                "applicant-phone": "3337654321", "beneficiary-first_name": "Giovanna",
                "beneficiary-last_name": "Berti", "beneficiary-tax_code": "BRTGNN40A41C800C",
                "beneficiary-birth_date": "1940-01-01", "beneficiary-address": "Via Manzoni 3",
                "beneficiary-phone": "034655001", "isee-value_cents": "9.500,00",
                "isee-dsu_protocol": "INPS-ISEE-2026-012345678-00", "isee-expires_on": "2099-01-15"}.items():
            page.fill(f"#f-{field}", value)
        page.check("#f-applicant-relation-2")  # familiare
        page.select_option("#f-beneficiary-comune", "schilpario")
        page.check("#f-condition-category")
        page.check("#f-needs")
        page.check("#f-self_declaration")
        page.check("#f-health_data_consent")
        page.click("button:has-text('Salva e prosegui')")
        assert "bozza" in page.locator("h1").inner_text()

        page.select_option("#f-kind", "isee")
        page.set_input_files("#f-file", str(pdf))
        page.click("button:has-text('Carica il file')")
        assert page.locator("#allegati li").first.inner_text().startswith("attestazione-isee.pdf")
        page.click("button:has-text('Presenta la richiesta')")
        assert page.locator("#stato-richiesta").inner_text() == "da valutare"
