"""Form 2, the SAD home-care voucher request, and the shapes of its API.

``SadRequestSchema`` is the one definition of the form: page, API, OpenAPI and
the PDF all come from it. It is built for the Ambito (its 24 comuni) and for
the SAD configuration (its accredited providers), which are data.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from ambito_common.forms import Confirmation, FormSchema
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from stdnum.it import codicefiscale

from .schemas import Code, ProtocolOut, _email, _phone, _text, validate_personal_tax_code

RELATIONS = [("self", "Sono io il beneficiario"), ("family", "Familiare"),
             ("legal_guardian", "Amministratore di sostegno, tutore o curatore"), ("other", "Altro")]
CATEGORIES = [("elderly", "Persona anziana"), ("disabled", "Persona con disabilità"),
              ("frail", "Persona in condizione di fragilità")]
NEEDS = [("personal_care", "Cura della persona (igiene, vestizione)"),
         ("mobility", "Mobilizzazione e accompagnamento"), ("meals", "Preparazione e aiuto nei pasti"),
         ("home_care", "Cura dell'ambiente domestico"), ("other", "Altro")]
ATTACHMENT_KINDS = [("isee", "Attestazione ISEE"),
                    ("certificate", "Certificazione sanitaria o di invalidità"),
                    ("identity", "Documento d'identità"), ("other", "Altro documento")]

SELF_DECLARATION = (
    "Dichiaro, ai sensi degli artt. 46 e 47 del DPR 445/2000, che i dati indicati sono veri, consapevole "
    "che, ai sensi dell'art. 76 dello stesso decreto, chi rilascia dichiarazioni mendaci, forma atti falsi "
    "o ne fa uso è punito ai sensi del codice penale e delle leggi speciali, e decade dai benefici "
    "ottenuti (art. 75).")
HEALTH_CONSENT = (
    "Acconsento al trattamento dei dati relativi alla salute del beneficiario (art. 9 del Regolamento "
    "UE 2016/679) per la valutazione della domanda e l'erogazione del servizio.")
DSU_PROTOCOL = re.compile(r"^INPS-ISEE-[0-9]{4}-[0-9A-Z]{6,12}-[0-9]{2}$")


class Cents(fields.Integer):
    """Money: a JSON number is cents (the API contract); typed text is euros ("12.345,67").

    A person writes euros, a program sends cents, and both reach the same
    rules; the stored value is always integer cents.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, str):
            text = value.replace("€", "").replace(" ", "").replace(".", "").replace(",", ".")
            try:
                euros = Decimal(text)
            except InvalidOperation as exc:
                raise self.make_error("invalid") from exc
            if not euros.is_finite():
                raise self.make_error("invalid")
            return int((euros * 100).to_integral_value())
        return super()._deserialize(value, attr, data, **kwargs)


class ApplicantSchema(FormSchema):
    first_name = _text("Nome", max_length=100, autocomplete="given-name")
    last_name = _text("Cognome", max_length=100, autocomplete="family-name")
    tax_code = Code(required=True, validate=validate_personal_tax_code,
                    metadata={"label": "Codice fiscale", "help": "16 caratteri."})
    email = _email("E-mail", help="Riceverà qui la ricevuta e gli aggiornamenti sulla domanda.")
    phone = _phone("Telefono")
    relation = fields.String(required=True, validate=validate.OneOf([v for v, _ in RELATIONS]),
                             metadata={"label": "Rapporto con il beneficiario", "widget": "radio",
                                       "choices": RELATIONS})


class BeneficiarySchema(FormSchema):
    first_name = _text("Nome", max_length=100, autocomplete="off")
    last_name = _text("Cognome", max_length=100, autocomplete="off")
    tax_code = Code(required=True, validate=validate_personal_tax_code,
                    metadata={"label": "Codice fiscale", "help": "16 caratteri."})
    birth_date = fields.Date(required=True, metadata={"label": "Data di nascita",
                                                      "help": "Deve corrispondere al codice fiscale."})
    comune = fields.String(required=True, metadata={"label": "Comune di residenza", "widget": "select"})
    address = _text("Indirizzo", help="Via o piazza e numero civico.", autocomplete="off")
    phone = _phone("Telefono")

    def __init__(self, *, comuni: Sequence[tuple[str, str]] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.comuni = list(comuni)
        self.fields["comune"].metadata["choices"] = self.comuni

    @validates_schema(skip_on_field_errors=False)
    def _consistent(self, data: Mapping[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        comune = data.get("comune")
        if comune is not None and comune not in {code for code, _ in self.comuni}:
            names = ", ".join(name for _, name in self.comuni)
            errors["comune"] = [f"Il servizio è riservato ai residenti nei comuni dell'Ambito: {names}."]
        tax_code, birth_date = data.get("tax_code"), data.get("birth_date")
        if tax_code and birth_date and codicefiscale.is_valid(tax_code):
            expected = codicefiscale.get_birth_date(tax_code)
            if expected != birth_date:
                errors["birth_date"] = [f"La data di nascita non corrisponde al codice fiscale "
                                        f"({expected:%d/%m/%Y})."]
        if errors:
            raise ValidationError(errors)


class ConditionSchema(FormSchema):
    category = fields.String(required=True, validate=validate.OneOf([v for v, _ in CATEGORIES]),
                             metadata={"label": "Condizione", "widget": "radio", "choices": CATEGORIES})
    invalidity_percent = fields.Integer(validate=validate.Range(0, 100), metadata={
        "label": "Percentuale di invalidità civile",
        "help": "Da 0 a 100; lasciare vuoto se non riconosciuta."})
    law104_severe = fields.Boolean(load_default=False, metadata={
        "label": "Handicap in situazione di gravità (L. 104/1992, art. 3 comma 3)"})
    attendance_allowance = fields.Boolean(load_default=False, metadata={
        "label": "Percepisce l'indennità di accompagnamento"})


class IseeSchema(FormSchema):
    value_cents = Cents(validate=validate.Range(min=0), metadata={
        "label": "Valore ISEE (euro)", "widget": "text",
        "help": "Ad esempio 12.345,67. Senza ISEE si applica la compartecipazione massima. "
                "Nell'API il valore è in centesimi."})
    dsu_protocol = Code(validate=validate.Regexp(DSU_PROTOCOL, error=(
        "Il protocollo della DSU ha la forma INPS-ISEE-2026-XXXXXXXXX-XX.")), metadata={
        "label": "Protocollo DSU", "help": "Ad esempio INPS-ISEE-2026-012345678-00."})
    expires_on = fields.Date(metadata={"label": "Scadenza dell'ISEE",
                                       "help": "Un ISEE scaduto viene segnalato al servizio sociale."})

    @validates_schema(skip_on_field_errors=True)
    def _complete(self, data: Mapping[str, Any], **_: Any) -> None:
        """An ISEE value means nothing without the declaration behind it and its validity."""
        if data.get("value_cents") is None:
            return
        missing = {name: ["Indicare anche questo dato dell'ISEE."]
                   for name in ("dsu_protocol", "expires_on") if data.get(name) is None}
        if missing:
            raise ValidationError(missing)


class SadRequestSchema(FormSchema):
    """The request for a SAD voucher, built for the Ambito's comuni and accredited providers."""

    applicant = fields.Nested(ApplicantSchema, required=True, metadata={
        "section": "Chi presenta la domanda"})
    beneficiary = fields.Nested(BeneficiarySchema, required=True, metadata={
        "section": "Beneficiario", "description": "La persona che riceverà l'assistenza a domicilio."})
    condition = fields.Nested(ConditionSchema, required=True, metadata={"section": "Condizione"})
    isee = fields.Nested(IseeSchema, load_default=dict, metadata={"section": "ISEE"})
    needs = fields.List(fields.String(validate=validate.OneOf([v for v, _ in NEEDS])), required=True,
                        metadata={"label": "Bisogni", "widget": "checkboxes", "choices": NEEDS,
                                  "section": "Bisogni e servizi", "help": "Selezionare una o più voci."})
    current_services = fields.String(validate=validate.Length(max=2000), metadata={
        "label": "Servizi già ricevuti", "widget": "textarea", "section": "Bisogni e servizi"})
    preferred_provider = fields.String(metadata={
        "label": "Ente accreditato preferito", "widget": "select", "section": "Bisogni e servizi",
        "help": "Facoltativo: il servizio sociale ne terrà conto nel piano assistenziale."})
    self_declaration = Confirmation(message="È necessario rendere la dichiarazione sostitutiva.",
                                    metadata={"label": SELF_DECLARATION, "section": "Dichiarazioni"})
    health_data_consent = Confirmation(
        message="Senza il consenso al trattamento dei dati sanitari la domanda non può essere valutata.",
        metadata={"label": HEALTH_CONSENT, "section": "Dichiarazioni"})

    def __init__(self, *, comuni: Sequence[tuple[str, str]] = (),
                 providers: Sequence[tuple[str, str]] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        beneficiary = self.fields["beneficiary"]
        assert isinstance(beneficiary, fields.Nested)
        beneficiary.nested = BeneficiarySchema(comuni=comuni)  # type: ignore[assignment]
        beneficiary._schema = None  # rebuilt from ``nested`` on next access
        self.fields["preferred_provider"].metadata["choices"] = list(providers)
        self.provider_codes = {code for code, _ in providers}

    @validates_schema(skip_on_field_errors=False)
    def _lists(self, data: Mapping[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        if "needs" in data and not data["needs"]:
            errors["needs"] = ["Selezionare almeno un bisogno."]
        provider = data.get("preferred_provider")
        if provider is not None and provider not in self.provider_codes:
            errors["preferred_provider"] = ["Ente non compreso nell'elenco degli enti accreditati."]
        if errors:
            raise ValidationError(errors)


class CarePlanSchema(FormSchema):
    """The PAI the social worker writes: ASA/OSS hours a week, from when, for how long, with whom."""

    asa_hours_week = fields.Float(load_default=0.0, validate=validate.Range(0, 60), metadata={
        "label": "Ore settimanali ASA", "widget": "number", "help": "Ausiliario socio-assistenziale."})
    oss_hours_week = fields.Float(load_default=0.0, validate=validate.Range(0, 60), metadata={
        "label": "Ore settimanali OSS", "widget": "number", "help": "Operatore socio-sanitario."})
    start_date = fields.Date(required=True, metadata={"label": "Data di inizio"})
    weeks = fields.Integer(required=True, validate=validate.Range(1, 104), metadata={
        "label": "Durata (settimane)"})
    provider = fields.String(required=True, metadata={"label": "Ente accreditato", "widget": "select"})

    def __init__(self, *, providers: Sequence[tuple[str, str]] = (), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fields["provider"].metadata["choices"] = list(providers)
        self.provider_codes = {code for code, _ in providers}

    @validates_schema(skip_on_field_errors=True)
    def _plan(self, data: Mapping[str, Any], **_: Any) -> None:
        if data["asa_hours_week"] + data["oss_hours_week"] <= 0:
            raise ValidationError({"asa_hours_week": ["Indicare le ore settimanali di ASA e/o OSS."]})
        if data["provider"] not in self.provider_codes:
            raise ValidationError({"provider": ["Ente non compreso nell'elenco degli enti accreditati."]})


def isee_expired(data: Mapping[str, Any], today: dt.date) -> bool:
    """Whether the ISEE had expired by ``today`` (a half-filled draft's unreadable date: not known yet)."""
    isee = data.get("isee")
    expires_on = isee.get("expires_on") if isinstance(isee, Mapping) else None
    if isinstance(expires_on, str):
        try:
            expires_on = dt.date.fromisoformat(expires_on)
        except ValueError:
            return False
    return isinstance(expires_on, dt.date) and expires_on < today


# API shapes.

class SadCreatedOut(Schema):
    id = fields.String()
    tracking_code = fields.String()
    status = fields.String()


class AttachmentOut(Schema):
    name = fields.String()
    sha256 = fields.String()
    size = fields.Integer()


class AttachmentDetailOut(AttachmentOut):
    kind = fields.String()
    media_type = fields.String()
    uploaded_at = fields.DateTime()


class SadEventOut(Schema):
    at = fields.DateTime()
    status = fields.String()
    actor = fields.String()
    actor_role = fields.String()
    detail = fields.String()


class SadRequestOut(Schema):
    id = fields.String()
    tracking_code = fields.String()
    status = fields.String()
    case_status = fields.String(allow_none=True)
    comune = fields.String()
    isee_expired = fields.Boolean()
    submitted_at = fields.DateTime(allow_none=True)
    registration = fields.String(allow_none=True)
    protocol = fields.Nested(ProtocolOut, allow_none=True)
    data = fields.Dict()
    care_plan = fields.Dict(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    history = fields.List(fields.Nested(SadEventOut))
    attachments = fields.List(fields.Nested(AttachmentDetailOut))
