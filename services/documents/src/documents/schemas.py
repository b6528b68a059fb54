"""The shapes of the documents API, and the one definition of the registration form."""

from __future__ import annotations

from typing import Any

from ambito_common.forms import FormSchema
from marshmallow import EXCLUDE, Schema, fields, validate

from .models import FILE_ROLES, STATUSES

REQUIRED = {"required": "Campo obbligatorio.", "null": "Campo obbligatorio."}


class PackageFileSchema(Schema):
    name = fields.String()
    role = fields.String(metadata={"enum": list(FILE_ROLES)})
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


class PackageListQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(metadata={"enum": list(STATUSES),
                                     "description": "Solo i pacchetti in questo stato"})


class RegistrationSchema(FormSchema):
    """The protocol number and date the recipient's protocol system assigned."""

    class Meta:
        unknown = EXCLUDE

    number = fields.String(required=True, error_messages={**REQUIRED, "invalid": "Testo non valido."},
                           validate=validate.Length(max=50, error="Al massimo {max} caratteri."),
                           metadata={"label": "Numero di protocollo", "widget": "text",
                                     "help": "Come assegnato dal protocollo (al massimo 50 caratteri)."})
    date = fields.Date(required=True, error_messages={
        **REQUIRED, "invalid": "Data non valida: usare il formato AAAA-MM-GG."},
        metadata={"label": "Data di protocollo", "widget": "date",
                  "help": "Scegliere la data dal calendario o scriverla come aaaa-mm-gg."})
