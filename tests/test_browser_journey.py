"""The co-programming journey walked in a real browser, as the people involved walk it.

An organisation finds the open call from the home page, fills the form (first
with a mistake, which the page explains, then right) and keeps the tracking
code; the protocol officer logs in, checks the sealed package, downloads the
PDF and records the protocol number; the organisation looks its application up
and sees the number. Everything is found by what the pages say, in Italian, and
by role, as assistive technology finds it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser import PageLog, chromium
from tests.harness import VALID_APPLICATION, Platform, embedded_platform, wait_until

pytestmark = pytest.mark.slow

TIMEOUT_MS = 30_000
#: What travels through the worker (PDF/A, seal, delivery) gets longer on a slow 2-core machine.
PIPELINE_TIMEOUT = 90
PROTOCOL_NUMBER = "2026/0004321"
WRONG_TAX_CODE = "RSSMRA80A01H501X"  # Mario Rossi's code with a wrong check character


def test_coprogramming_journey_in_a_browser(tmp_path):
    expect.set_options(timeout=TIMEOUT_MS)
    with chromium() as browser, embedded_platform(tmp_path) as platform:
        organisation = browser.new_page(locale="it-IT", timezone_id="Europe/Rome")
        organisation.set_default_timeout(TIMEOUT_MS)
        log = PageLog.attach(organisation)

        call = open_the_form(organisation, platform)
        check_page_health(organisation, platform, log)
        for group in (organisation_group(organisation), representative(organisation),
                      contact_group(organisation)):
            # Bootstrap Italia's labels float above their input, towards the section's title.
            assert_clear(group.locator("legend").first, group.locator("label").first)
        submit_with_a_mistake(organisation, call)
        organisation.screenshot(path=str(tmp_path / "form-errors.png"), full_page=True)
        # The page with the errors comes with HTTP 422 (intake/views.py); chromium logs the status.
        assert all("status of 422" in error for error in log.errors), log.errors
        log.clear()
        code = correct_and_submit(organisation)
        reload_until(organisation, platform, code, "consegnata al protocollo")
        assert platform.tracking(code)["status"] == "delivered"
        expect(organisation.get_by_role("listitem").filter(
            has_text="Consegnata all'ufficio protocollo")).to_contain_text("completato")
        organisation.screenshot(path=str(tmp_path / "receipt.png"), full_page=True)

        today = dt.datetime.now(ZoneInfo("Europe/Rome")).date()
        register_protocol(browser, platform, code, today, tmp_path)
        see_protocol_number(organisation, platform, code, today)
        assert log.errors == [], "the pages logged errors"


def open_the_form(page: Page, platform: Platform) -> dict[str, Any]:
    """Home → Avvisi → the open call → "Presenta la domanda"."""
    call = platform.open_call()
    page.goto(platform.url + "/")
    main_menu(page).get_by_role("link", name="Avvisi", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Avvisi")

    open_calls = page.get_by_role("listitem").filter(has=page.get_by_text("Aperto", exact=True))
    expect(open_calls).to_have_count(1)
    open_calls.get_by_role("link", name=call["title"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(call["title"])

    page.get_by_role("link", name="Presenta la domanda").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Domanda di partecipazione")
    return call


def check_page_health(page: Page, platform: Platform, log: PageLog) -> None:
    """No console errors; styles, scripts and fonts come from our /static, never from another host."""
    page.wait_for_load_state("load")
    assert log.errors == [], "the form page logged errors"
    origin = urlsplit(platform.url).netloc
    assert [url for url in log.requests if urlsplit(url).netloc != origin] == []

    stylesheets = page.eval_on_selector_all("link[rel=stylesheet]", "links => links.map(l => l.href)")
    assert stylesheets and all(href.startswith(platform.url + "/static/") for href in stylesheets)
    # Loaded, not only linked: Bootstrap Italia's typeface is applied and its files arrived.
    assert "Titillium Web" in page.evaluate("getComputedStyle(document.body).fontFamily")
    assert page.evaluate("document.fonts.check('16px \"Titillium Web\"')"), "Titillium Web did not load"


def submit_with_a_mistake(page: Page, call: dict[str, Any]) -> None:
    """Fill the whole form with one mistake and read what the page says about it."""
    area = call["areas"][0]["title"]
    fill_application(page, area, legal_representative_tax_code=WRONG_TAX_CODE)
    page.get_by_role("button", name="Invia la domanda").click()

    summary = page.get_by_role("alert").filter(has_text="Il modulo contiene un errore")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()  # a screen reader starts from what went wrong
    expect(summary.get_by_role("link")).to_have_text(
        "Codice fiscale: Codice fiscale non valido: controllare i caratteri.")
    tax_code = representative(page).get_by_label("Codice fiscale")
    expect(tax_code).to_have_attribute("aria-invalid", "true")
    expect(tax_code).to_have_accessible_description(re.compile("Codice fiscale non valido"))
    expect(tax_code).to_have_value(WRONG_TAX_CODE)
    expect(page.get_by_role("heading", level=1)).to_have_text("Domanda di partecipazione")
    expect(page).to_have_title(re.compile("^Errore: "))
    check_values_kept(page, area)


def correct_and_submit(page: Page) -> str:
    """Follow the error summary to the field, correct it, send; returns the tracking code."""
    page.get_by_role("alert").get_by_role("link").click()
    tax_code = representative(page).get_by_label("Codice fiscale")
    expect(tax_code).to_be_focused()
    # The field comes into view with its label, not scrolled to the window's top edge.
    expect(label_of(tax_code)).to_be_in_viewport(ratio=1)
    tax_code.fill(VALID_APPLICATION["legal_representative"]["tax_code"])
    page.get_by_role("button", name="Invia la domanda").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Domanda ricevuta")
    expect(page).to_have_url(re.compile(r"/intake/domande/"))
    code = page.locator("#codice-tracciamento").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){4}", code), code
    return code


def assert_clear(upper: Locator, lower: Locator) -> None:
    """``lower`` starts below the end of ``upper``: neither covers the other."""
    above, below = upper.bounding_box(), lower.bounding_box()
    assert above and below, "not rendered"
    assert above["y"] + above["height"] <= below["y"], f"{upper} overlaps {lower}"


def label_of(control: Locator) -> Locator:
    return control.page.locator(f"label[for={control.get_attribute('id')}]")


def main_menu(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Navigazione principale")


def organisation_group(page: Page) -> Locator:
    return page.get_by_role("group", name="Ente richiedente")


def representative(page: Page) -> Locator:
    return page.get_by_role("group", name="Legale rappresentante")


def contact_group(page: Page) -> Locator:
    return page.get_by_role("group", name="Referente")


def fill_application(page: Page, area: str, *, legal_representative_tax_code: str) -> None:
    organisation = VALID_APPLICATION["organisation"]
    address = organisation["address"]
    ente = organisation_group(page)
    ente.get_by_label("Denominazione").fill(organisation["name"])
    tick(ente.get_by_role("radiogroup", name="Categoria"), "Ente del Terzo settore iscritto al RUNTS")
    ente.get_by_label("Forma giuridica").select_option(label="Cooperativa sociale")
    ente.get_by_label("Codice fiscale o partita IVA").fill(organisation["tax_code"])
    ente.get_by_label("Numero di iscrizione al RUNTS").fill(organisation["runts_number"])
    ente.get_by_label("Sede legale: indirizzo").fill(address["street"])
    ente.get_by_label("Sede legale: CAP").fill(address["postal_code"])
    ente.get_by_label("Sede legale: comune").fill(address["municipality"])
    ente.get_by_label("Sede legale: provincia").fill(address["province"])
    ente.get_by_label("PEC").fill(organisation["pec"])
    ente.get_by_label("E-mail").fill(organisation["email"])
    ente.get_by_label("Telefono").fill(organisation["phone"])

    person = VALID_APPLICATION["legal_representative"]
    # "Nome" alone would also match "Cognome".
    representative(page).get_by_label("Nome (obbligatorio)", exact=True).fill(person["first_name"])
    representative(page).get_by_label("Cognome").fill(person["last_name"])
    representative(page).get_by_label("Codice fiscale").fill(legal_representative_tax_code)

    contact = VALID_APPLICATION["contact_person"]
    referente = contact_group(page)
    referente.get_by_label("Nome (obbligatorio)", exact=True).fill(contact["first_name"])
    referente.get_by_label("Cognome").fill(contact["last_name"])
    referente.get_by_label("E-mail").fill(contact["email"])
    referente.get_by_label("Telefono").fill(contact["phone"])

    tick(page.get_by_role("group", name="Aree tematiche a cui si chiede di partecipare"), area)
    declarations = page.get_by_role("group", name="Dichiarazioni")
    for start in ("Si impegna a partecipare", "Acconsente alla pubblicazione",
                  "Libera l'Amministrazione", "Dichiara di aver letto l'informativa"):
        tick(declarations, start)


def tick(scope: Locator, label: str) -> None:
    """Click a radio button's or checkbox's label, as people do: Bootstrap Italia draws the
    control in the label and leaves the input itself under it."""
    scope.get_by_text(label).check()
    expect(scope.get_by_label(label)).to_be_checked()


def check_values_kept(page: Page, area: str) -> None:
    organisation = VALID_APPLICATION["organisation"]
    ente = organisation_group(page)
    expect(ente.get_by_label("Denominazione")).to_have_value(organisation["name"])
    expect(ente.get_by_label("Ente del Terzo settore iscritto al RUNTS")).to_be_checked()
    expect(ente.get_by_label("Forma giuridica")).to_have_value("cooperativa_sociale")
    expect(ente.get_by_label("Codice fiscale o partita IVA")).to_have_value(organisation["tax_code"])
    expect(ente.get_by_label("PEC")).to_have_value(organisation["pec"])
    expect(ente.get_by_label("Telefono")).to_have_value(organisation["phone"])
    expect(representative(page).get_by_label("Cognome")).to_have_value(
        VALID_APPLICATION["legal_representative"]["last_name"])
    expect(contact_group(page).get_by_label("E-mail")).to_have_value(
        VALID_APPLICATION["contact_person"]["email"])
    expect(page.get_by_label(area)).to_be_checked()
    declarations = page.get_by_role("group", name="Dichiarazioni").get_by_role("checkbox")
    expect(declarations).to_have_count(4)
    for index in range(4):
        expect(declarations.nth(index)).to_be_checked()
    # The one mistake is the only thing flagged.
    expect(page.locator("[aria-invalid=true]")).to_have_count(1)


def reload_until(page: Page, platform: Platform, code: str, status: str) -> None:
    """The person reloads the application's page until its status reads ``status``."""
    shown = page.locator("#stato-domanda")

    def reached() -> bool:
        if shown.inner_text() == status:
            return True
        page.reload()
        return False

    try:
        wait_until(reached, timeout=PIPELINE_TIMEOUT, interval=1, what=f"{code} to show {status!r}")
    except AssertionError:
        print(platform.processes.describe())
        raise


def register_protocol(browser: Browser, platform: Platform, code: str, today: dt.date,
                      tmp_path: Path) -> None:
    """The protocol officer, in a browser of their own: log in, check, download, register."""
    context = browser.new_context(locale="it-IT", timezone_id="Europe/Rome", accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    log = PageLog.attach(page)

    page.goto(platform.url + "/")
    page.get_by_role("link", name="Accedi").click()
    expect(page).to_have_url(re.compile(r"/accesso"))
    page.get_by_label("Nome utente").fill("protocollo")
    page.get_by_label("Password").fill(platform.env.get("AMBITO_DEMO_PASSWORD", "demo"))
    page.get_by_role("button", name="Accedi").click()
    expect(page.get_by_role("button", name="Esci")).to_be_visible()

    main_menu(page).get_by_role("link", name="Protocollo").click()
    expect(page).to_have_url(platform.url + "/protocollo/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Casella del protocollo")
    organisation = VALID_APPLICATION["organisation"]["name"]
    row = page.get_by_role("row").filter(has_text=organisation)
    expect(row).to_have_count(1)
    expect(row).to_contain_text("da protocollare")
    row.get_by_role("link").click()

    package_id = platform.tracking(code)["package_id"]
    expect(page).to_have_url(re.compile(f"/protocollo/pacchetti/{package_id}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Pacchetto di protocollo")
    expect(page.get_by_role("paragraph").filter(has_text="Manifestazione d'interesse")).to_contain_text(
        organisation)
    seal = page.locator("#esito-sigillo")
    expect(seal).to_contain_text("Sigillo valido")
    expect(seal).not_to_contain_text("non valido")

    files = page.get_by_role("table", name=re.compile("file nel pacchetto"))
    rows = files.get_by_role("row").filter(has=page.get_by_role("cell"))
    expect(rows).to_have_count(5)  # PDF, Segnatura.xml, metadata.xml, manifest.json, message.eml
    for file_row in rows.all():
        expect(file_row.get_by_role("cell").nth(4)).to_have_text(re.compile(r"^\s*[0-9a-f]{64}\s*$"))
    primary = rows.filter(has_text="Documento principale")
    sha256 = primary.get_by_role("cell").nth(4).inner_text().strip()

    with page.expect_download() as download_info:
        primary.get_by_role("link").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".pdf")
    pdf = tmp_path / download.suggested_filename
    download.save_as(pdf)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert hashlib.sha256(data).hexdigest() == sha256, "the page's SHA-256 is not the file's"

    page.screenshot(path=str(tmp_path / "package.png"), full_page=True)

    expect(page.get_by_role("heading", name="Registra protocollo")).to_be_visible()
    number = page.get_by_label("Numero di protocollo")
    assert_clear(page.get_by_text("Riportare il numero"), label_of(number))
    number.fill(PROTOCOL_NUMBER)
    page.get_by_label("Data di protocollo").fill(today.isoformat())
    page.get_by_role("button", name="Registra protocollo").click()

    expect(page.get_by_role("status")).to_have_text(
        "Numero di protocollo registrato. Il mittente ne riceverà notizia.")
    expect(page.get_by_text("protocollato", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Registra protocollo")).to_have_count(0)
    assert log.errors == [], "the protocol pages logged errors"
    context.close()


def see_protocol_number(page: Page, platform: Platform, code: str, today: dt.date) -> None:
    """The organisation looks its application up by code until the number shows."""
    main_menu(page).get_by_role("link", name="Avvisi", exact=True).click()
    page.get_by_role("link", name="Ne segua lo stato con il codice di tracciamento").click()
    page.get_by_label("Codice di tracciamento").fill(code)
    page.get_by_role("button", name="Cerca").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Domanda ricevuta")
    expect(page.locator("#codice-tracciamento")).to_have_text(code)

    reload_until(page, platform, code, "protocollata")
    expect(page.locator("#protocollo")).to_have_text(
        f"n. {PROTOCOL_NUMBER} del {today.strftime('%d/%m/%Y')}")
