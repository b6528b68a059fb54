"""The shapes of the documents API, and the one definition of the registration form."""

from __future__ import annotations

from typing import Any

from ambito_common.forms import FormSchema
from marshmallow import EXCLUDE, Schema, fields, validate

from .builders import ROLES
from .models import STATUSES

REQUIRED = {"required": "Campo obbligatorio.", "null": "Campo obbligatorio."}


class PackageFileSchema(Schema):
    name = fields.String()
    role = fields.String(metadata={"enum": list(ROLES)})
    media_type = fields.String()
    sha256 = fields.String(metadata={"description": "SHA-256 del file, esadecimale"})
    size = fields.Integer(metadata={"description": "Dimensione in byte"})


class SenderSchema(Schema):
    name = fields.String(attribute="sender_name")
    pec = fields.String(attribute="sender_pec", allow_none=True)
    email = fields.String(attribute="sender_email", allow_none=True)


class RecipientSchema(Schema):
    name = fields.String(attribute="recipient_name")
    pec = fields.String(attribute="recipient_pec")


class PackageSchema(Schema):
    id = fields.String()
    subject = fields.String()
    sender = fields.Nested(SenderSchema, metadata={"description": "Mittente"})
    recipient = fields.Nested(RecipientSchema, metadata={"description": "AOO destinataria"})
    status = fields.String(metadata={"enum": list(STATUSES)})
    created_at = fields.DateTime()
    files = fields.List(fields.Nested(PackageFileSchema))

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        # Sender and recipient are groups of the package's own columns, not related rows.
        if attr in ("sender", "recipient"):
            return obj
        return super().get_attribute(obj, attr, default)


class TimelineEventSchema(Schema):
    at = fields.DateTime()
    event = fields.String(metadata={"description": "built, sealed, sent, accepted, delivered, "
                                                   "registered, rejected, ..."})
    detail = fields.String()


class ProtocolSchema(Schema):
    number = fields.String(attribute="protocol_number")
    date = fields.Date(attribute="protocol_date")


class RejectionSchema(Schema):
    code = fields.String(attribute="rejection_code", allow_none=True)
    reason = fields.String(attribute="rejection_reason")


class PackageDetailSchema(PackageSchema):
    """One package with its timeline and delivery state (the list leaves them out)."""

    timeline = fields.List(fields.Nested(TimelineEventSchema), attribute="events")
    delivery_attempts = fields.Integer()
    delivery_error = fields.String(allow_none=True, metadata={
        "description": "Perché l'ultima consegna non è riuscita (finché non riesce)"})
    protocol = fields.Method("_protocol", allow_none=True, metadata={
        "description": "Numero e data del protocollo del destinatario"})
    rejection = fields.Method("_rejection", allow_none=True)

    def _protocol(self, package: Any) -> dict[str, Any] | None:
        return ProtocolSchema().dump(package) if package.protocol_number else None

    def _rejection(self, package: Any) -> dict[str, Any] | None:
        return RejectionSchema().dump(package) if package.rejection_reason else None


class PackageListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(metadata={"enum": list(STATUSES),
                                     "description": "Solo i pacchetti in questo stato"})
    q = fields.String(load_default="", validate=validate.Length(max=100), metadata={
        "description": "Cerca nell'oggetto, nel mittente e nel codice di tracciamento"})


class RegistrationSchema(FormSchema):
    """The protocol number and date the recipient's protocol system assigned."""

    class Meta:
        unknown = EXCLUDE

    number = fields.String(required=True, error_messages={**REQUIRED, "invalid": "Testo non valido."},
                           validate=validate.Length(max=50, error="Al massimo {max} caratteri."),
                           metadata={"label": "Numero di protocollo", "widget": "text", "autocomplete": "off",
                                     "help": "Come assegnato dal protocollo (al massimo 50 caratteri)."})
    date = fields.Date(required=True, error_messages={
        **REQUIRED, "invalid": "Data non valida: usare il formato AAAA-MM-GG."},
        metadata={"label": "Data di protocollo", "widget": "date", "autocomplete": "off",
                  "help": "La data assegnata dal protocollo."})
