"""Short-lived signed identity tokens (JWT, EdDSA/Ed25519).

The gateway signs with its private key; every service verifies with the public
key on its own and enforces its own authorization, so no service trusts the
network. A token carries the subject, the roles and, for comune-bound roles,
the comune.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask, current_app, g, redirect, request

from .errors import Forbidden, Unauthorized, wants_json

ISSUER = "ambito-gateway"
AUDIENCE = "ambito"

AMBITO_ADMIN = "ambito_admin"
COMUNE_OPERATOR = "comune_operator"
SOCIAL_WORKER = "social_worker"
PROTOCOL_OFFICER = "protocol_officer"
ROLES = (AMBITO_ADMIN, COMUNE_OPERATOR, SOCIAL_WORKER, PROTOCOL_OFFICER)
COMUNE_BOUND_ROLES = (COMUNE_OPERATOR, SOCIAL_WORKER)


@dataclass(frozen=True)
class Identity:
    subject: str
    username: str
    roles: tuple[str, ...] = field(default_factory=tuple)
    comune: str | None = None
    display_name: str = ""

    def has_any(self, roles: Iterable[str]) -> bool:
        return bool(set(self.roles) & set(roles))


def ensure_keypair(private_path: Path, public_path: Path) -> None:
    """Generate a development Ed25519 key pair once (embedded mode, tests)."""
    if private_path.exists() and public_path.exists():
        return
    private_path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_atomically(private_path, private_pem, mode=0o600)
    _write_atomically(public_path, public_pem, mode=0o644)


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    os.replace(tmp, path)


class TokenIssuer:
    def __init__(self, private_key_pem: bytes, ttl: dt.timedelta) -> None:
        self._key = serialization.load_pem_private_key(private_key_pem, password=None)
        self.ttl = ttl

    def issue(self, identity: Identity, *, now: dt.datetime | None = None) -> str:
        now = now or dt.datetime.now(dt.UTC)
        claims: dict[str, Any] = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": identity.subject, "jti": uuid.uuid4().hex,
            "iat": now, "nbf": now, "exp": now + self.ttl,
            "username": identity.username, "roles": list(identity.roles),
            "name": identity.display_name,
        }
        if identity.comune:
            claims["comune"] = identity.comune
        return jwt.encode(claims, self._key, algorithm="EdDSA")


class TokenVerifier:
    def __init__(self, public_key_pem: bytes, *, leeway: int = 10) -> None:
        self._key = serialization.load_pem_public_key(public_key_pem)
        self._leeway = leeway

    def verify(self, token: str) -> Identity:
        try:
            claims = jwt.decode(token, self._key, algorithms=["EdDSA"], audience=AUDIENCE,
                                issuer=ISSUER, leeway=self._leeway,
                                options={"require": ["exp", "iat", "sub"]})
        except jwt.PyJWTError as exc:
            raise Unauthorized("Credenziali non valide o scadute.") from exc
        roles = tuple(r for r in claims.get("roles", []) if r in ROLES)
        return Identity(subject=claims["sub"], username=claims.get("username", ""),
                        roles=roles, comune=claims.get("comune"),
                        display_name=claims.get("name", ""))


def init_identity(app: Flask, verifier: TokenVerifier, cookie_name: str) -> None:
    """Read the bearer token or the identity cookie on every request; never required here."""
    app.extensions["identity_verifier"] = verifier
    app.config["IDENTITY_COOKIE"] = cookie_name

    @app.before_request
    def _load_identity() -> None:
        g.identity = None
        g.identity_error = None
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        token = token or request.cookies.get(cookie_name, "")
        if not token:
            return
        try:
            g.identity = verifier.verify(token)
        except Unauthorized as exc:
            g.identity_error = exc

    @app.context_processor
    def _identity_in_templates() -> dict[str, Any]:
        return {"identity": g.get("identity")}


def current_identity() -> Identity | None:
    return g.get("identity")


F = TypeVar("F", bound=Callable[..., Any])


def require_roles(*roles: str) -> Callable[[F], F]:
    """Allow the view only to an identity holding one of ``roles``.

    API callers get 401/403 problem+json; a person on a page without a valid
    token is sent through the gateway's refresh (which renews an expired token
    from the gateway session, or asks to log in).
    """

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            identity = current_identity()
            if identity is None:
                if not wants_json():
                    return redirect("/auth/refresh?next=" + quote(request.full_path.rstrip("?")))
                raise Unauthorized("Accesso richiesto: presentare un token valido.")
            if not identity.has_any(roles):
                raise Forbidden("Il suo profilo non consente questa operazione.")
            return view(*args, **kwargs)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def verifier_from_file(path: Path) -> TokenVerifier:
    return TokenVerifier(path.read_bytes())


def identity_cookie_name() -> str:
    return current_app.config["IDENTITY_COOKIE"]
