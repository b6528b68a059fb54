"""Every rule of the form, through the API and through the page: the same schema, the same messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ambito_common.forms import field_id
from intake.models import Application, OutboxMessage, RegisterCounter
from lxml import html
from markupsafe import escape
from sqlalchemy import func, select

SUBMIT = "/api/intake/calls/pdz-demo/applications"
FORM = "/intake/avvisi/pdz-demo/domanda"


def _set(payload: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = payload
    for part in parents:
        target = target[part]
    if value is _DELETE:
        target.pop(last, None)
    else:
        target[last] = value


_DELETE = object()

# (id, {dotted path: new value}, path of the error, a fragment of its Italian message, possible on a page)
RULES: list[tuple[str, dict[str, Any], str, str, bool]] = [
    ("name-required", {"organisation.name": _DELETE}, "organisation.name", "Campo obbligatorio.", True),
    ("name-blank", {"organisation.name": "   "}, "organisation.name", "Campo obbligatorio.", True),
    ("name-too-long", {"organisation.name": "x" * 301}, "organisation.name",
     "Inserire al massimo 300 caratteri.", True),
    ("category-required", {"organisation.category": _DELETE}, "organisation.category",
     "Campo obbligatorio.", True),
    ("category-unknown", {"organisation.category": "company"}, "organisation.category",
     "Valore non previsto.", True),
    ("legal-form-unknown", {"organisation.legal_form": "srl"}, "organisation.legal_form",
     "Valore non previsto.", True),
    ("legal-form-of-another-category", {"organisation.category": "trade_union"},
     "organisation.legal_form", "La forma giuridica non corrisponde alla categoria scelta.", True),
    ("legal-form-ets-only", {"organisation.category": "other_nonprofit", "organisation.legal_form": "aps"},
     "organisation.legal_form", "La forma giuridica non corrisponde alla categoria scelta.", True),
    ("tax-code-required", {"organisation.tax_code": _DELETE}, "organisation.tax_code",
     "Campo obbligatorio.", True),
    ("tax-code-length", {"organisation.tax_code": "1234567"}, "organisation.tax_code",
     "Indicare il codice fiscale o la partita IVA dell'ente", True),
    ("tax-code-check-digit", {"organisation.tax_code": "00000010018"}, "organisation.tax_code",
     "Codice fiscale o partita IVA non valido", True),
    ("tax-code-personal-invalid", {"organisation.tax_code": "RSSMRA85T10A562X"}, "organisation.tax_code",
     "Codice fiscale o partita IVA non valido", True),
    ("runts-required-for-ets", {"organisation.runts_number": _DELETE}, "organisation.runts_number",
     "il numero di iscrizione al RUNTS è obbligatorio", True),
    ("runts-digits", {"organisation.runts_number": "RUNTS-12"}, "organisation.runts_number",
     "Il numero di iscrizione al RUNTS è formato da cifre", True),
    ("runts-garbage-for-others", {"organisation.category": "trade_union",
                                  "organisation.legal_form": "organizzazione_sindacale",
                                  "organisation.runts_number": "n/d"},
     "organisation.runts_number", "Il numero di iscrizione al RUNTS è formato da cifre", True),
    ("street-required", {"organisation.address.street": _DELETE}, "organisation.address.street",
     "Campo obbligatorio.", True),
    ("postal-code", {"organisation.address.postal_code": "2402"}, "organisation.address.postal_code",
     "Il CAP è formato da 5 cifre.", True),
    ("municipality-required", {"organisation.address.municipality": ""},
     "organisation.address.municipality", "Campo obbligatorio.", True),
    ("province", {"organisation.address.province": "BGR"}, "organisation.address.province",
     "Indicare la sigla della provincia", True),
    ("pec-format", {"organisation.pec": "amici.pec.it"}, "organisation.pec",
     "Indirizzo e-mail non valido.", True),
    ("email-format", {"organisation.email": "info@"}, "organisation.email",
     "Indirizzo e-mail non valido.", True),
    ("phone-letters", {"organisation.phone": "0346 ABC"}, "organisation.phone",
     "Numero di telefono non valido", True),
    ("phone-too-short", {"organisation.phone": "+39 12345"}, "organisation.phone",
     "Numero di telefono non valido", True),
    ("phone-too-long", {"organisation.phone": "1234567890123456"}, "organisation.phone",
     "Numero di telefono non valido", True),
    ("representative-name", {"legal_representative.last_name": _DELETE}, "legal_representative.last_name",
     "Campo obbligatorio.", True),
    ("representative-tax-code-length", {"legal_representative.tax_code": "00000010017"},
     "legal_representative.tax_code", "Il codice fiscale di una persona è formato da 16 caratteri.", True),
    ("representative-tax-code-check", {"legal_representative.tax_code": "RSSMRA85T10A562X"},
     "legal_representative.tax_code", "Codice fiscale non valido", True),
    ("contact-first-name", {"contact_person.first_name": _DELETE}, "contact_person.first_name",
     "Campo obbligatorio.", True),
    ("contact-email", {"contact_person.email": "anna@@example.it"}, "contact_person.email",
     "Indirizzo e-mail non valido.", True),
    ("contact-phone", {"contact_person.phone": "tel. 333"}, "contact_person.phone",
     "Numero di telefono non valido", True),
    ("areas-none", {"areas": []}, "areas", "Selezionare almeno un'area tematica.", True),
    ("areas-other-call", {"areas": ["anziani"]}, "areas", "Area tematica non prevista dall'avviso.", True),
    ("areas-twice", {"areas": ["minori-famiglia", "minori-famiglia"]}, "areas",
     "Ogni area tematica va indicata una sola volta.", True),
    ("areas-missing", {"areas": _DELETE}, "areas", "Campo obbligatorio.", False),
    ("commitments", {"commitments_accepted": False}, "commitments_accepted",
     "È necessario accettare gli impegni previsti dall'avviso.", True),
    ("publication", {"publication_consent": False}, "publication_consent",
     "È necessario accettare la pubblicazione", True),
    ("ip-release", {"ip_release": False}, "ip_release",
     "È necessario accettare la liberatoria sulla proprietà intellettuale", True),
    ("privacy", {"privacy_acknowledged": False}, "privacy_acknowledged",
     "È necessario accettare l'informativa", True),
    ("privacy-missing", {"privacy_acknowledged": _DELETE}, "privacy_acknowledged",
     "È necessario accettare l'informativa", True),
    ("confirmation-not-literally-true", {"ip_release": "yes"}, "ip_release", "Indicare sì o no.", False),
    ("unknown-field", {"organisation.vat_rate": 22}, "organisation.vat_rate", "Campo non previsto.", False),
]


def _mutated(payload: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    for path, value in changes.items():
        _set(payload, path, value)
    return payload


def _nothing_written(runtime) -> bool:
    with runtime.session_factory() as session:
        return all(session.scalar(select(func.count()).select_from(model)) == 0
                   for model in (Application, OutboxMessage, RegisterCounter))


@pytest.mark.parametrize(("changes", "path", "message"),
                         [pytest.param(c, p, m, id=i) for i, c, p, m, _ in RULES])
def test_intake_validation_api(intake_client, intake_runtime, intake_payload, changes, path,
                               message) -> None:
    response = intake_client.post(SUBMIT, json=_mutated(intake_payload(), changes))
    assert response.status_code == 422, response.get_json()
    assert response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert list(errors) == [path]
    assert any(message in m for m in errors[path]), errors
    assert _nothing_written(intake_runtime)


@pytest.mark.parametrize(("changes", "path", "message"),
                         [pytest.param(c, p, m, id=i) for i, c, p, m, on_page in RULES if on_page])
def test_intake_validation_page(intake_page_post, intake_runtime, intake_payload, intake_form_pairs,
                                changes, path, message) -> None:
    payload = _mutated(intake_payload(), changes)
    response = intake_page_post(FORM, intake_form_pairs(payload))
    assert response.status_code == 422
    doc = html.fromstring(response.text)
    target = field_id("areas" if path.startswith("areas") else path)
    # In the summary, linked to the input ...
    assert doc.xpath(f"//a[@href='#{target}']")
    # ... and next to the input itself: the message appears in both places.
    assert response.text.count(html_escape(message)) >= 2
    assert _nothing_written(intake_runtime)
    # Every value typed is still there.
    _assert_values_kept(doc, payload)


def html_escape(text: str) -> str:
    return str(escape(text))


def _assert_values_kept(doc, payload: dict[str, Any]) -> None:
    organisation = payload["organisation"]
    for name in ("name", "tax_code", "pec", "email", "phone"):
        if organisation.get(name, "").strip():
            inputs = doc.xpath(f"//input[@name='organisation.{name}']")
            assert inputs and inputs[0].get("value") == organisation[name], name
    ticked = doc.xpath("//input[@name='areas'][@checked]/@value")
    assert sorted(ticked) == sorted(set(payload.get("areas", [])) & {
        "invecchiamento-disabilita", "minori-famiglia", "inclusione-sociale"})
    for box in ("commitments_accepted", "publication_consent", "ip_release", "privacy_acknowledged"):
        assert bool(doc.xpath(f"//input[@name='{box}'][@checked]")) == (payload.get(box) is True), box
    category = doc.xpath("//input[@name='organisation.category'][@checked]/@value")
    assert category == ([organisation["category"]] if organisation.get("category") in
                        ("ets", "other_nonprofit", "trade_union") else [])


def test_intake_validation_page_many_errors_at_once(intake_page_post, intake_runtime,
                                                    intake_form_pairs) -> None:
    pairs = [("organisation.name", "Circolo Acli"), ("organisation.address.postal_code", "24O23"),
             ("areas", "minori-famiglia"), ("privacy_acknowledged", "on")]
    response = intake_page_post(FORM, pairs)
    assert response.status_code == 422
    doc = html.fromstring(response.text)
    summary_links = doc.xpath("//a[starts-with(@href, '#f-')]/@href")
    assert summary_links[:3] == ["#f-organisation-category", "#f-organisation-legal_form",
                                 "#f-organisation-tax_code"]
    assert "#f-organisation-name" not in summary_links and "#f-privacy_acknowledged" not in summary_links
    assert "#f-organisation-address-postal_code" in summary_links and "#f-ip_release" in summary_links
    assert doc.xpath("//input[@name='organisation.address.postal_code']/@value") == ["24O23"]
    assert doc.xpath("//input[@name='privacy_acknowledged'][@checked]")
    assert "Errore" in doc.findtext(".//title")
    assert _nothing_written(intake_runtime)


def test_intake_validation_normalises_what_people_type(intake_client, intake_runtime,
                                                       intake_payload) -> None:
    payload = intake_payload()
    payload["organisation"].update(tax_code=" 0000001 0017 ", category="trade_union",
                                   legal_form="organizzazione_sindacale", runts_number="")
    payload["organisation"]["address"]["province"] = "bg"
    payload["legal_representative"]["tax_code"] = "rssmra85t10a562s"
    response = intake_client.post(SUBMIT, json=payload)
    assert response.status_code == 201, response.get_json()
    with intake_runtime.session_factory() as session:
        application = session.scalar(select(Application))
        assert application.organisation_tax_code == "00000010017"
        organisation = application.data["organisation"]
        assert organisation["address"]["province"] == "BG"
        assert "runts_number" not in organisation
        assert application.data["legal_representative"]["tax_code"] == "RSSMRA85T10A562S"


def test_intake_validation_rejects_a_body_that_is_not_an_object(intake_client) -> None:
    for body in ([1, 2], "text"):
        response = intake_client.post(SUBMIT, json=body)
        assert response.status_code == 422
        assert response.get_json()["errors"] == {"_schema": ["I dati devono essere un oggetto JSON."]}
    response = intake_client.post(SUBMIT, data="organisation=x", content_type="text/csv")
    assert response.status_code == 422

