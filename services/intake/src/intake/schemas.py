"""The application form of a co-programming call, and the shapes of the API.

``ApplicationSchema`` is the one definition of Form 1: the page renders it
(``ambito_common.forms.build_form``), the page and the API validate with its
``load``, OpenAPI documents it and the PDF is laid out from it. The categories
and legal forms are those of §4 of the call (art. 4 D.Lgs. 117/2017 and the
other bodies it admits); they are law, not yearly data, so they live here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ambito_common.errors import ProblemSchema
from ambito_common.forms import Confirmation, FormSchema
from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema
from stdnum.it import codicefiscale, iva

from .codes import normalise_tracking_code

ETS, OTHER_NONPROFIT, TRADE_UNION = "ets", "other_nonprofit", "trade_union"
CATEGORIES: list[tuple[str, str]] = [
    (ETS, "a) Ente del Terzo settore iscritto al RUNTS (art. 4 D.Lgs. 117/2017)"),
    (OTHER_NONPROFIT, "b) Altro organismo senza scopo di lucro"),
    (TRADE_UNION, "c) Organizzazione sindacale maggiormente rappresentativa"),
]
LEGAL_FORMS: dict[str, str] = {
    "odv": "Organizzazione di volontariato",
    "aps": "Associazione di promozione sociale",
    "ente_filantropico": "Ente filantropico",
    "impresa_sociale": "Impresa sociale",
    "cooperativa_sociale": "Cooperativa sociale",
    "rete_associativa": "Rete associativa",
    "societa_mutuo_soccorso": "Società di mutuo soccorso",
    "associazione_riconosciuta": "Associazione riconosciuta",
    "associazione_non_riconosciuta": "Associazione non riconosciuta",
    "fondazione": "Fondazione",
    "altro_ets": "Altro ente del Terzo settore",
    "onlus": "ONLUS (organizzazione non lucrativa di utilità sociale)",
    "organismo_cooperazione": "Organismo della cooperazione",
    "ente_promozione_sociale": "Ente di promozione sociale",
    "ente_patronato": "Ente di patronato",
    "ente_religioso": "Ente religioso civilmente riconosciuto",
    "organizzazione_sindacale": "Organizzazione sindacale",
}
LEGAL_FORMS_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    ETS: ("odv", "aps", "ente_filantropico", "impresa_sociale", "cooperativa_sociale",
          "rete_associativa", "societa_mutuo_soccorso", "associazione_riconosciuta",
          "associazione_non_riconosciuta", "fondazione", "altro_ets"),
    OTHER_NONPROFIT: ("onlus", "organismo_cooperazione", "ente_promozione_sociale", "fondazione",
                      "ente_patronato", "odv", "ente_religioso"),
    TRADE_UNION: ("organizzazione_sindacale",),
}

# The confirmations of the form; a call replaces the labels with its own words (§5, §6).
DECLARATIONS: dict[str, tuple[str, str]] = {
    "commitments_accepted": (
        "Mi impegno a partecipare alla co-programmazione secondo quanto previsto dall'avviso.",
        "È necessario accettare gli impegni previsti dall'avviso."),
    "publication_consent": (
        "Acconsento alla pubblicazione e all'utilizzo dei dati e dei contributi condivisi.",
        "È necessario accettare la pubblicazione dei dati e dei contributi."),
    "ip_release": (
        "Libero l'Amministrazione procedente da responsabilità sulla proprietà intellettuale "
        "delle proposte.",
        "È necessario accettare la liberatoria sulla proprietà intellettuale delle proposte."),
    "privacy_acknowledged": (
        "Dichiaro di aver letto l'informativa sul trattamento dei dati personali.",
        "È necessario accettare l'informativa sul trattamento dei dati personali."),
}

PHONE = re.compile(r"(\+39)?[0-9]{6,15}")
RUNTS_NUMBER = r"^[0-9]{1,12}$"


class Code(fields.String):
    """An identifier written any way a person types it: spaces removed, upper case."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return "".join(super()._deserialize(value, attr, data, **kwargs).split()).upper()


def validate_phone(value: str) -> None:
    if not PHONE.fullmatch(value.replace(" ", "")):
        raise ValidationError("Numero di telefono non valido: indicare da 6 a 15 cifre, "
                              "eventualmente precedute da +39.")


def validate_organisation_tax_code(value: str) -> None:
    """An organisation has an 11-digit codice fiscale (or partita IVA), or a personal one."""
    if len(value) == 11 and value.isascii() and value.isdigit():
        valid = iva.is_valid(value)
    elif len(value) == 16:
        valid = codicefiscale.is_valid(value)
    else:
        raise ValidationError("Indicare il codice fiscale o la partita IVA dell'ente "
                              "(11 cifre, oppure 16 caratteri).")
    if not valid:
        raise ValidationError("Codice fiscale o partita IVA non valido: controllare i caratteri.")


def validate_personal_tax_code(value: str) -> None:
    if len(value) != 16:
        raise ValidationError("Il codice fiscale di una persona è formato da 16 caratteri.")
    if not codicefiscale.is_valid(value):
        raise ValidationError("Codice fiscale non valido: controllare i caratteri.")


def validate_tracking_code(value: str) -> None:
    if normalise_tracking_code(value) is None:
        raise ValidationError("Codice non valido: il codice di tracciamento ha 20 caratteri "
                              "(lettere e cifre, i trattini sono facoltativi).")


def _text(label: str, *, max_length: int = 200, required: bool = True, **metadata: Any) -> fields.String:
    return fields.String(required=required, validate=validate.Length(max=max_length),
                         metadata={"label": label, **metadata})


def _email(label: str, **metadata: Any) -> fields.Email:
    return fields.Email(required=True, validate=validate.Length(max=254),
                        metadata={"label": label, "autocomplete": "email", **metadata})


def _phone(label: str) -> fields.String:
    return fields.String(required=True, validate=validate_phone,
                         metadata={"label": label, "widget": "tel", "autocomplete": "tel",
                                   "help": "Ad esempio +39 0346 12345."})


class AddressSchema(FormSchema):
    street = _text("Sede legale: indirizzo", autocomplete="street-address",
                   help="Via o piazza e numero civico.")
    postal_code = fields.String(required=True, validate=validate.Regexp(
        r"^[0-9]{5}$", error="Il CAP è formato da 5 cifre."),
        metadata={"label": "Sede legale: CAP", "autocomplete": "postal-code"})
    municipality = _text("Sede legale: comune", max_length=100, autocomplete="address-level2")
    province = Code(required=True, validate=validate.Regexp(
        r"^[A-Z]{2}$", error="Indicare la sigla della provincia, 2 lettere (ad esempio BG)."),
        metadata={"label": "Sede legale: provincia", "help": "Sigla di 2 lettere, ad esempio BG.",
                  "autocomplete": "address-level1"})


class OrganisationSchema(FormSchema):
    name = _text("Denominazione", max_length=300, autocomplete="organization")
    category = fields.String(required=True, validate=validate.OneOf([c for c, _ in CATEGORIES]),
                             metadata={"label": "Categoria (punto 4 dell'avviso)", "widget": "radio",
                                       "choices": CATEGORIES})
    legal_form = fields.String(required=True, validate=validate.OneOf(list(LEGAL_FORMS)),
                               metadata={"label": "Forma giuridica", "widget": "select",
                                         "choices": list(LEGAL_FORMS.items()),
                                         "help": "Deve corrispondere alla categoria scelta."})
    tax_code = Code(required=True, validate=validate_organisation_tax_code,
                    metadata={"label": "Codice fiscale o partita IVA",
                              "help": "11 cifre (o 16 caratteri se l'ente non ne ha uno numerico)."})
    runts_number = Code(validate=validate.Regexp(
        RUNTS_NUMBER, error="Il numero di iscrizione al RUNTS è formato da cifre (al massimo 12)."),
        metadata={"label": "Numero di iscrizione al RUNTS",
                  "help": "Obbligatorio per gli enti del Terzo settore (categoria a)."})
    address = fields.Nested(AddressSchema, required=True)
    pec = _email("PEC", help="Indirizzo di posta elettronica certificata dell'ente.")
    email = _email("E-mail")
    phone = _phone("Telefono")

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _category_rules(self, data: Mapping[str, Any], original: Any, **_: Any) -> None:
        """Rules linking fields: the legal form must be one of its category's; ETS name their RUNTS."""
        category = data.get("category")
        if category not in LEGAL_FORMS_BY_CATEGORY:
            return
        errors: dict[str, list[str]] = {}
        legal_form = data.get("legal_form")
        if legal_form is not None and legal_form not in LEGAL_FORMS_BY_CATEGORY[category]:
            errors["legal_form"] = ["La forma giuridica non corrisponde alla categoria scelta."]
        runts_given = isinstance(original, Mapping) and str(original.get("runts_number") or "").strip()
        if category == ETS and not runts_given:
            errors["runts_number"] = ["Per gli enti del Terzo settore il numero di iscrizione "
                                      "al RUNTS è obbligatorio."]
        if errors:
            raise ValidationError(errors)


class LegalRepresentativeSchema(FormSchema):
    first_name = _text("Nome", max_length=100, autocomplete="off")
    last_name = _text("Cognome", max_length=100, autocomplete="off")
    tax_code = Code(required=True, validate=validate_personal_tax_code,
                    metadata={"label": "Codice fiscale", "help": "16 caratteri."})


class ContactPersonSchema(FormSchema):
    first_name = _text("Nome", max_length=100, autocomplete="given-name")
    last_name = _text("Cognome", max_length=100, autocomplete="family-name")
    email = _email("E-mail")
    phone = _phone("Telefono")


def _confirmation(name: str) -> Confirmation:
    label, message = DECLARATIONS[name]
    return Confirmation(message=message, metadata={"label": label, "section": "Dichiarazioni"})


class ApplicationSchema(FormSchema):
    """An organisation's expression of interest in a call.

    Built for one call (``areas`` as ``[(code, title)]`` and its own
    ``declarations`` texts), so the areas offered and accepted are that call's.
    """

    organisation = fields.Nested(OrganisationSchema, required=True,
                                 metadata={"section": "Ente richiedente"})
    legal_representative = fields.Nested(LegalRepresentativeSchema, required=True,
                                         metadata={"section": "Legale rappresentante"})
    contact_person = fields.Nested(ContactPersonSchema, required=True, metadata={
        "section": "Referente",
        "description": "La persona che l'Ambito contatterà per gli incontri di co-programmazione."})
    areas = fields.List(fields.String(), required=True, metadata={
        "label": "Aree tematiche a cui si chiede di partecipare", "widget": "checkboxes",
        "section": "Aree tematiche", "help": "Selezionare una o più aree."})
    commitments_accepted = _confirmation("commitments_accepted")
    publication_consent = _confirmation("publication_consent")
    ip_release = _confirmation("ip_release")
    privacy_acknowledged = _confirmation("privacy_acknowledged")

    def __init__(self, *, areas: Sequence[tuple[str, str]] = (),
                 declarations: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.area_codes = [code for code, _ in areas]
        self.fields["areas"].metadata["choices"] = list(areas)
        for name, text in (declarations or {}).items():
            self.fields[name].metadata["label"] = text

    @validates("areas")
    def _areas_of_this_call(self, value: list[str], **_: Any) -> None:
        if not value:
            raise ValidationError("Selezionare almeno un'area tematica.")
        if any(code not in self.area_codes for code in value):
            raise ValidationError("Area tematica non prevista dall'avviso.")
        if len(set(value)) != len(value):
            raise ValidationError("Ogni area tematica va indicata una sola volta.")


class TrackingLookupSchema(FormSchema):
    """The one-field form that finds an application by its tracking code."""

    code = fields.String(required=True, validate=validate_tracking_code, metadata={
        "label": "Codice di tracciamento", "autocomplete": "off",
        "help": "Il codice di 20 caratteri ricevuto alla presentazione della domanda, "
                "ad esempio ABCD-EFGH-JKMN-PQRS-TVWX."})


# Shapes of the API responses (also what OpenAPI documents).

class MeetingOut(Schema):
    number = fields.Integer()
    date = fields.Date()
    start = fields.String(metadata={"description": "Ora di inizio (Europe/Rome), HH:MM."})
    end = fields.String(metadata={"description": "Ora di fine (Europe/Rome), HH:MM."})
    place = fields.String()


class AreaOut(Schema):
    code = fields.String()
    title = fields.String()
    meetings = fields.List(fields.Nested(MeetingOut))


class CallOut(Schema):
    slug = fields.String()
    title = fields.String()
    status = fields.String(validate=validate.OneOf(["open", "closed"]))
    deadline = fields.DateTime(metadata={
        "description": "Ultimo istante utile per presentare la domanda (ora di Roma)."})
    areas = fields.List(fields.Nested(AreaOut))


class ApplicationCreatedOut(Schema):
    id = fields.String()
    tracking_code = fields.String()
    status = fields.String()


class ProtocolOut(Schema):
    number = fields.String()
    date = fields.Date()


class ApplicationStatusOut(Schema):
    tracking_code = fields.String()
    status = fields.String(validate=validate.OneOf(
        ["draft", "received", "packaged", "delivered", "registered"]),
                           metadata={"description": "Il cammino verso il protocollo; `draft` solo per una "
                                                    "richiesta SAD non ancora presentata."})
    package_id = fields.String(allow_none=True)
    protocol = fields.Nested(ProtocolOut, allow_none=True)
    case_status = fields.String(allow_none=True, validate=validate.OneOf(
        ["new", "assessment", "documents_requested", "awaiting_budget", "rejected"]), metadata={
        "description": "Solo per una richiesta SAD: la lavorazione del servizio sociale del comune."})


class ProblemOut(ProblemSchema):
    tracking_code = fields.String(metadata={
        "description": "Solo per una domanda già presentata: il suo codice di tracciamento."})
