"""Shapes of the vouchers API (requests validated, responses documented)."""

from __future__ import annotations

from ambito_common.errors import ProblemSchema
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

COMUNE_CODE = validate.Regexp(r"^[a-z0-9-]{2,60}$", error="Codice del comune non valido.")


class ReservationIn(Schema):
    fund = fields.String(required=True, validate=validate.Length(min=1, max=40))
    period = fields.String(required=True, validate=validate.Length(min=1, max=40))
    comune = fields.String(required=True, validate=COMUNE_CODE)
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=1),
                            metadata={"description": "Importo in centesimi di euro."})
    reference = fields.String(required=True, validate=validate.Length(min=1, max=200),
                              metadata={"description": "Riferimento della pratica (ad esempio il buono)."})


class PostIn(Schema):
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=0),
                            metadata={"description": "Centesimi spesi; il resto torna disponibile."})


class ReservationOut(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"enum": ["reserved", "posted", "partially_posted", "voided",
                                              "expired"]})
    fund = fields.String()
    period = fields.String()
    comune = fields.String()
    amount = fields.Integer()
    posted = fields.Integer()
    reference = fields.String()


class PeriodOut(Schema):
    code = fields.String()
    start = fields.Date()
    end = fields.Date()


class FundOut(Schema):
    code = fields.String()
    name = fields.String()
    periods = fields.List(fields.Nested(PeriodOut))


class BudgetOut(Schema):
    comune = fields.String()
    sub_ambito = fields.String()
    allocated = fields.Integer()
    reserved = fields.Integer()
    spent = fields.Integer()
    available = fields.Integer()


class ProblemOut(ProblemSchema):
    available = fields.Integer(
        metadata={"description": "Centesimi disponibili (409 per budget insufficiente)."})
    available_eur = fields.String(metadata={"description": "Lo stesso importo in euro, ad es. «1.234,56 €»."})


class VoucherIn(Schema):
    fund = fields.String(required=True, validate=validate.Length(min=1, max=40))
    period = fields.String(required=True, validate=validate.Length(min=1, max=40))
    comune = fields.String(required=True, validate=COMUNE_CODE)
    beneficiary_ref = fields.String(required=True, validate=validate.Length(min=1, max=120),
                                    metadata={"description": "Riferimento della cartella sociale."})
    beneficiary_name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    isee = fields.Integer(required=True, strict=True, allow_none=True, validate=validate.Range(min=0),
                          metadata={"description": "ISEE in centesimi; null senza un ISEE valido "
                                                   "(compartecipazione massima, ultimo in graduatoria)."})
    provider = fields.String(required=True, validate=validate.Length(min=1, max=200))
    profile = fields.String(required=True, validate=validate.OneOf(["ASA", "OSS"]))
    hours_per_week = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=16800),
        metadata={"description": "Ore settimanali in centesimi d'ora (1,5 h = 150)."})
    weeks = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=104))
    contact_email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254),
                                 metadata={"description": "E-mail del beneficiario o della famiglia: "
                                                          "riceve copia del buono sigillato."})


class VoucherOut(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"enum": ["waiting", "active", "closed", "cancelled"]})
    comune = fields.String()
    beneficiary_ref = fields.String()
    provider = fields.String()
    profile = fields.String()
    hours_per_week = fields.Integer()
    weeks = fields.Integer()
    tariff = fields.Integer(metadata={"description": "Centesimi l'ora."})
    copayment_hourly = fields.Integer(metadata={
        "description": "Compartecipazione della famiglia in centesimi l'ora, versata all'ente erogatore "
                       "(regola del comune, ambito_common.copayment)."})
    value = fields.Integer(metadata={"description": "Centesimi a carico del fondo: ore × (tariffa − "
                                                    "compartecipazione oraria)."})
    reservation_id = fields.Integer(allow_none=True)
    document = fields.Dict(allow_none=True, metadata={
        "description": "Il documento sigillato del buono (quando prenotato): stato e protocollo."})


class HoursIn(Schema):
    month = fields.String(required=True, validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$",
                                                                  error="Mese nel formato AAAA-MM."))
    hours = fields.Integer(required=True, strict=True, validate=validate.Range(min=0),
                           metadata={"description": "Ore erogate nel mese, in centesimi d'ora."})


class HoursOut(Schema):
    voucher_id = fields.Integer()
    month = fields.String()
    hours = fields.Integer()
    amount = fields.Integer()


class AllocationIn(Schema):
    """By hand (``amounts``, signed cents per comune) or by formula (``total`` by population share,
    after ``base_per_comune`` to every comune of the Ambito)."""

    fund = fields.String(required=True, validate=validate.Length(min=1, max=40))
    period = fields.String(required=True, validate=validate.Length(min=1, max=40))
    amounts = fields.Dict(keys=fields.String(validate=COMUNE_CODE), values=fields.Integer(strict=True))
    total = fields.Integer(strict=True, validate=validate.Range(min=1))
    base_per_comune = fields.Integer(strict=True, validate=validate.Range(min=0), load_default=0)

    @validates_schema
    def _one_way(self, data: dict, **_: object) -> None:
        if ("amounts" in data) == ("total" in data):
            raise ValidationError("Indicare gli importi per comune oppure il totale da ripartire.")


class MovementOut(Schema):
    id = fields.Integer()
    kind = fields.String()
    created_at = fields.DateTime()
    actor = fields.String()
    memo = fields.String()
    reversal_of = fields.Integer(allow_none=True)
    entries = fields.List(fields.Dict(),
                          metadata={"description": "[{comune, account, amount}] in centesimi."})


class ReimbursementLineIn(Schema):
    beneficiary_ref = fields.String(required=True, validate=validate.Length(min=1, max=120))
    service = fields.String(required=True, validate=validate.Length(min=1, max=200),
                            metadata={"description": "Struttura o servizio."})
    service_period = fields.String(required=True, validate=validate.Length(min=1, max=60))
    amount_paid = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    amount_asked = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class ReimbursementIn(Schema):
    fund = fields.String(required=True, validate=validate.Length(min=1, max=40))
    period = fields.String(required=True, validate=validate.Length(min=1, max=40))
    comune = fields.String(required=True, validate=COMUNE_CODE)
    lines = fields.List(fields.Nested(ReimbursementLineIn), required=True,
                        validate=validate.Length(min=1, max=500))


class DecisionIn(Schema):
    """``approve`` (all lines as asked, or ``approved`` cents per line id), or ``reject`` with a reason."""

    outcome = fields.String(required=True, validate=validate.OneOf(["approve", "reject"]))
    approved = fields.Dict(keys=fields.Integer(), values=fields.Integer(strict=True), load_default=None)
    reason = fields.String(load_default="", validate=validate.Length(max=2000))


class PaymentIn(Schema):
    payment_ref = fields.String(required=True, validate=validate.Length(min=1, max=200),
                                metadata={"description": "Estremi del mandato di pagamento."})


class ReimbursementOut(Schema):
    id = fields.Integer()
    comune = fields.String()
    status = fields.String(metadata={"enum": ["filed", "approved", "partially_approved", "rejected", "paid"]})
    asked = fields.Integer()
    approved = fields.Integer()
    reason = fields.String()
    payment_ref = fields.String()
    lines = fields.List(fields.Dict())
    invoices = fields.List(fields.Dict(), metadata={"description": "[{id, name, media_type, sha256, size}]"})
    documents = fields.List(fields.Dict(), metadata={
        "description": "Documenti sigillati: richiesta, decisioni, pagamento (stato, protocollo)."})


class PopulationIn(Schema):
    population = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    as_of = fields.Date(required=True, metadata={"description": "Data di riferimento (ISTAT)."})


class PopulationOut(Schema):
    comune = fields.String()
    population = fields.Integer()
    as_of = fields.Date()
    updated_by = fields.String()


class CarryOverIn(Schema):
    fund = fields.String(required=True, validate=validate.Length(min=1, max=40))
    from_period = fields.String(required=True, validate=validate.Length(min=1, max=40))
    to_period = fields.String(required=True, validate=validate.Length(min=1, max=40))
    comune = fields.String(required=True, validate=COMUNE_CODE)
    amount = fields.Integer(strict=True, validate=validate.Range(min=1), load_default=None,
                            metadata={"description": "Centesimi; senza, tutto il disponibile."})


class ReversalIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
