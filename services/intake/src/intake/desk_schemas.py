"""Form 3, a booking at the Sportello di Tutela Giuridica, and the shapes of its API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ambito_common.forms import FormSchema
from ambito_common.web import ROME
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .schemas import _email, _phone, _text

TOPICS = [("amministrazione_di_sostegno", "Amministrazione di sostegno"), ("tutela", "Tutela"),
          ("curatela", "Curatela"), ("rendiconto", "Rendiconto annuale"),
          ("relazione_periodica", "Relazione periodica"),
          ("ricorso_giudice_tutelare", "Ricorso al Giudice Tutelare"), ("altro", "Altro")]
MODES = [("in_person", "In presenza"), ("phone", "Al telefono")]


class LocalDateTime(fields.DateTime):
    """An instant; without an offset it is read as Europe/Rome time, as a person means it."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime:
        parsed = super()._deserialize(value, attr, data, **kwargs)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=ROME)


class PersonSchema(FormSchema):
    first_name = _text("Nome", max_length=100, autocomplete="given-name")
    last_name = _text("Cognome", max_length=100, autocomplete="family-name")


class ConcerningSchema(FormSchema):
    first_name = _text("Nome della persona interessata", max_length=100, autocomplete="off")
    last_name = _text("Cognome della persona interessata", max_length=100, autocomplete="off")
    relation = _text("Rapporto con chi prenota", max_length=100, required=False, autocomplete="off",
                     help="Ad esempio figlio, coniuge, amministratore di sostegno.")


class ContactSchema(FormSchema):
    email = _email("E-mail", help="Riceverà qui la conferma con l'appuntamento da aggiungere al calendario.")
    phone = _phone("Telefono")


class BookingSchema(FormSchema):
    location = fields.String(required=True, metadata={"label": "Sede", "widget": "radio"})
    start = LocalDateTime(required=True, metadata={"label": "Orario", "widget": "radio"})
    topic = fields.String(required=True, validate=validate.OneOf([v for v, _ in TOPICS]),
                          metadata={"label": "Argomento", "widget": "radio", "choices": TOPICS})
    person = fields.Nested(PersonSchema, required=True, metadata={"section": "Chi prenota"})
    concerning = fields.Nested(ConcerningSchema, required=True, metadata={
        "section": "Persona a cui si riferisce la richiesta"})
    comune = fields.String(required=True, metadata={"label": "Comune di residenza della persona interessata",
                                                    "widget": "select", "section": "Recapiti"})
    contact = fields.Nested(ContactSchema, required=True, metadata={"section": "Recapiti"})
    mode = fields.String(required=True, validate=validate.OneOf([v for v, _ in MODES]),
                         metadata={"label": "Modalità", "widget": "radio", "choices": MODES})

    def __init__(self, *, locations: Sequence[tuple[str, str]] = (),
                 comuni: Sequence[tuple[str, str]] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fields["location"].metadata["choices"] = list(locations)
        self.fields["comune"].metadata["choices"] = list(comuni)
        self.location_codes = {c for c, _ in locations}
        self.comuni = list(comuni)

    @validates_schema(skip_on_field_errors=False)
    def _known(self, data: Mapping[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        if "location" in data and data["location"] not in self.location_codes:
            errors["location"] = ["Sede non prevista."]
        if "comune" in data and data["comune"] not in {c for c, _ in self.comuni}:
            errors["comune"] = ["Lo sportello serve i residenti nei comuni dell'Ambito: "
                                + ", ".join(n for _, n in self.comuni) + "."]
        if errors:
            raise ValidationError(errors)


class LocationOut(Schema):
    code = fields.String()
    name = fields.String()
    address = fields.String()


class SlotOut(Schema):
    start = fields.DateTime()
    end = fields.DateTime()
    location = fields.String()
    remaining = fields.Integer()


class BookingOut(Schema):
    id = fields.String()
    manage_token = fields.String()
    start = fields.DateTime()
    end = fields.DateTime()
