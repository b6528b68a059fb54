"""The login request and the token response: one definition for the form, the API and OpenAPI."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class LoginSchema(Schema):
    """Not a FormSchema on purpose: that trims text, and a password is checked exactly as typed."""

    username = fields.String(
        required=True,
        validate=[validate.Length(min=1, error="Indichi il nome utente."),
                  validate.Length(max=64, error="Al massimo {max} caratteri.")],
        error_messages={"required": "Indichi il nome utente.", "null": "Indichi il nome utente.",
                        "invalid": "Nome utente non valido."},
        metadata={"label": "Nome utente", "autocomplete": "username"})
    password = fields.String(
        required=True, load_only=True,
        validate=[validate.Length(min=1, error="Indichi la password."),
                  validate.Length(max=1024, error="Al massimo {max} caratteri.")],
        error_messages={"required": "Indichi la password.", "null": "Indichi la password.",
                        "invalid": "Password non valida."},
        metadata={"label": "Password", "widget": "password", "autocomplete": "current-password"})


class TokenSchema(Schema):
    access_token = fields.String(metadata={"description": "Token di identità firmato (JWT, EdDSA)."})
    token_type = fields.String(metadata={"example": "Bearer"})
    expires_in = fields.Integer(metadata={"description": "Validità del token in secondi."})
    roles = fields.List(fields.String())
    comune = fields.String(allow_none=True, metadata={"description": "Comune dei ruoli comunali."})


class IdentitySchema(Schema):
    subject = fields.String()
    username = fields.String()
    display_name = fields.String()
    roles = fields.List(fields.String())
    comune = fields.String(allow_none=True)
