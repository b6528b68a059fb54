"""The generic form mechanism, on a small form that is not intake's (the SAD form will be another)."""

from __future__ import annotations

import datetime as dt

import pytest
from ambito_common.errors import InvalidInput
from ambito_common.forms import (
    Confirmation,
    FormSchema,
    accepted_declarations,
    build_form,
    document_in_openapi,
    document_sections,
    field_id,
    load,
    parse_form,
)
from ambito_common.web import new_spec
from marshmallow import fields, validate
from werkzeug.datastructures import MultiDict


class PersonSchema(FormSchema):
    name = fields.String(required=True, validate=validate.Length(max=5),
                         metadata={"label": "Nome", "autocomplete": "given-name",
                                   "help": "Come sui documenti."})
    birth_date = fields.Date(required=True, metadata={"label": "Data di nascita"})
    email = fields.Email(required=True, metadata={"label": "E-mail"})


class RequestSchema(FormSchema):
    person = fields.Nested(PersonSchema, required=True,
                           metadata={"section": "Beneficiario", "description": "Chi riceve il servizio."})
    relation = fields.String(required=True, validate=validate.OneOf(["self", "relative"]),
                             metadata={"label": "Relazione", "widget": "radio", "section": "Richiedente",
                                       "choices": [("self", "Me stesso"), ("relative", "Un familiare")]})
    needs = fields.List(fields.String(validate=validate.OneOf(["meals", "care"])), metadata={
        "label": "Bisogni", "section": "Richiedente",
        "choices": [("meals", "Pasti"), ("care", "Cura della persona")]})
    hours = fields.Integer(validate=validate.Range(min=1, max=40),
                           metadata={"label": "Ore settimanali", "section": "Richiedente"})
    law_104 = fields.Boolean(load_default=False, metadata={"label": "L. 104 art. 3 c. 3",
                                                           "section": "Richiedente"})
    note = fields.String(metadata={"label": "Note", "widget": "textarea", "section": "Richiedente"})
    truthful = Confirmation(message="È necessario accettare la dichiarazione.",
                            metadata={"label": "Dichiaro che i dati sono veri.", "section": "Dichiarazioni"})


VALID = {"person": {"name": "Anna", "birth_date": "1940-03-01", "email": "a@example.it"},
         "relation": "relative", "needs": ["care", "meals"], "hours": 6, "law_104": True,
         "truthful": True}


def test_common_forms_sections_and_fields_follow_the_schema() -> None:
    form = build_form(RequestSchema())
    assert [(s.title, s.description) for s in form.sections] == [
        ("Beneficiario", "Chi riceve il servizio."), ("Richiedente", ""), ("Dichiarazioni", "")]
    names = [[f.name for f in s.fields] for s in form.sections]
    assert names == [["person.name", "person.birth_date", "person.email"],
                     ["relation", "needs", "hours", "law_104", "note"], ["truthful"]]
    widgets = {f.name: f.widget for s in form.sections for f in s.fields}
    assert widgets == {"person.name": "text", "person.birth_date": "date", "person.email": "email",
                       "relation": "radio", "needs": "checkboxes", "hours": "number",
                       "law_104": "checkbox", "note": "textarea", "truthful": "checkbox"}
    name = form.field("person.name")
    assert (name.id, name.hint_id, name.help, name.autocomplete, name.required) == (
        "f-person-name", "f-person-name-hint", "Come sui documenti.", "given-name", True)
    assert form.field("note").hint_id == "" and form.field("note").required is False
    assert form.field("needs").choices == [("meals", "Pasti"), ("care", "Cura della persona")]
    assert form.field("needs").value == [] and form.field("law_104").value is False
    assert form.errors == []


def test_common_forms_parse_a_browser_post_into_what_the_api_sends() -> None:
    posted = MultiDict([("person.name", "Anna"), ("person.birth_date", "1940-03-01"),
                        ("person.email", "a@example.it"), ("relation", "relative"), ("needs", "care"),
                        ("needs", "meals"), ("hours", "6"), ("law_104", "on"), ("truthful", "on"),
                        ("csrf_token", "ignored"), ("submit", "ignored")])
    data = parse_form(RequestSchema(), posted)
    assert data == {"person": {"name": "Anna", "birth_date": "1940-03-01", "email": "a@example.it"},
                    "relation": "relative", "needs": ["care", "meals"], "hours": "6", "law_104": True,
                    "truthful": True}
    assert load(RequestSchema(), data) == load(RequestSchema(), VALID)
    # Unticked boxes are not sent by browsers: they are false, and an empty group is an empty list.
    bare = parse_form(RequestSchema(), MultiDict([("relation", "self")]))
    assert bare == {"relation": "self", "needs": [], "law_104": False, "truthful": False}


def test_common_forms_values_and_errors_land_on_their_fields() -> None:
    posted = MultiDict([("person.name", "Annabella"), ("person.email", "nope"), ("needs", "care"),
                        ("needs", "flying"), ("hours", "99"), ("relation", "self")])
    data = parse_form(RequestSchema(), posted)
    with pytest.raises(InvalidInput) as caught:
        load(RequestSchema(), data)
    errors = caught.value.errors
    assert errors == {
        "person.name": ["Inserire al massimo 5 caratteri."],
        "person.birth_date": ["Campo obbligatorio."],
        "person.email": ["Indirizzo e-mail non valido."],
        "needs.1": ["Valore non previsto."],
        "hours": ["Il valore deve essere compreso tra 1 e 40."],
        "truthful": ["È necessario accettare la dichiarazione."],
    }
    form = build_form(RequestSchema(), data, errors)
    assert form.field("person.name").value == "Annabella"
    assert form.field("needs").value == ["care", "flying"]
    assert form.field("needs").errors == ["Valore non previsto."]  # "needs.1" lands on "needs"
    assert form.field("relation").value == "self" and form.field("relation").errors == []
    # The summary links to the inputs, in the order of the form.
    assert [e[0] for e in form.errors] == ["f-person-name", "f-person-birth_date", "f-person-email",
                                           "f-needs", "f-hours", "f-truthful"]
    assert form.errors[0] == ("f-person-name", "Nome", "Inserire al massimo 5 caratteri.")
    # A path that names no input (never from a page) still reaches the summary.
    assert build_form(RequestSchema(), {}, {"elsewhere": ["Strano."]}).errors == [("", "", "Strano.")]


def test_common_forms_messages_are_italian_for_api_clients_too() -> None:
    with pytest.raises(InvalidInput) as caught:
        load(RequestSchema(), {"person": "x", "relation": "boss", "needs": "care", "hours": "many",
                               "law_104": "maybe", "truthful": "yes", "extra": 1, "note": "   "})
    assert caught.value.errors == {
        "person": ["Dati non validi."],
        "relation": ["Valore non previsto."],
        "needs": ["Inserire un elenco di valori."],
        "hours": ["Inserire un numero intero."],
        "law_104": ["Indicare sì o no."],
        "truthful": ["Indicare sì o no."],
        "extra": ["Campo non previsto."],
    }
    with pytest.raises(InvalidInput) as caught:
        load(RequestSchema(), {"relation": "self", "truthful": False})
    assert caught.value.errors == {"person": ["Campo obbligatorio."],
                                   "truthful": ["È necessario accettare la dichiarazione."]}
    with pytest.raises(InvalidInput) as caught:
        load(RequestSchema(), ["not", "an", "object"])
    assert caught.value.errors == {"_schema": ["I dati devono essere un oggetto JSON."]}


def test_common_forms_blank_text_is_missing_and_text_is_trimmed() -> None:
    data = {**VALID, "person": {**VALID["person"], "name": "  Anna "}, "note": "  "}
    loaded = load(RequestSchema(), data)
    assert loaded["person"]["name"] == "Anna" and "note" not in loaded
    with pytest.raises(InvalidInput) as caught:
        load(RequestSchema(), {**VALID, "person": {**VALID["person"], "name": "   "}})
    assert caught.value.errors == {"person.name": ["Campo obbligatorio."]}


def test_common_forms_document_sections_read_like_the_form() -> None:
    schema = RequestSchema()
    loaded = load(schema, {**VALID, "law_104": False})
    assert document_sections(schema, loaded) == [
        {"title": "Beneficiario", "fields": [
            {"label": "Nome", "value": "Anna"},
            {"label": "Data di nascita", "value": "01/03/1940"},
            {"label": "E-mail", "value": "a@example.it"}]},
        {"title": "Richiedente", "fields": [
            {"label": "Relazione", "value": "Un familiare"},
            {"label": "Bisogni", "value": "Cura della persona, Pasti"},
            {"label": "Ore settimanali", "value": "6"},
            {"label": "L. 104 art. 3 c. 3", "value": "No"}]},
    ]
    assert accepted_declarations(schema, loaded) == ["Dichiaro che i dati sono veri."]
    assert document_sections(schema, {**loaded, "law_104": True})[1]["fields"][3]["value"] == "Sì"


def test_common_forms_dates_show_as_iso_in_inputs() -> None:
    form = build_form(RequestSchema(), {"person": {"birth_date": dt.date(1940, 3, 1)}})
    assert form.field("person.birth_date").value == "1940-03-01"


def test_common_forms_field_id_is_the_dotted_name_with_dashes() -> None:
    assert field_id("organisation.address.street") == "f-organisation-address-street"


def test_common_forms_openapi_shows_labels_help_and_choices() -> None:
    spec = document_in_openapi(new_spec("test", "Test"))
    spec.components.schema("Request", schema=RequestSchema)
    schemas = spec.to_dict()["components"]["schemas"]
    person = schemas["Person"]["properties"]["name"]
    assert person["title"] == "Nome" and person["description"] == "Come sui documenti."
    assert schemas["Request"]["properties"]["relation"]["enum"] == ["self", "relative"]
    assert set(schemas["Request"]["required"]) == {"person", "relation", "truthful"}
