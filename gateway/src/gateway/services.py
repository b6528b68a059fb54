"""Operator accounts: creating them, checking passwords, turning them into identities."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from ambito_common.db import utcnow
from ambito_common.errors import InvalidInput, Unauthorized
from ambito_common.identity import (
    AMBITO_ADMIN,
    COMUNE_BOUND_ROLES,
    COMUNE_OPERATOR,
    PROTOCOL_OFFICER,
    ROLES,
    SOCIAL_WORKER,
    Identity,
)
from ambito_common.settings import PlatformSettings
from ambito_common.web import load_ambito
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import User

LOGIN_FAILED = "Nome utente o password non corretti."
MIN_PASSWORD_LENGTH = 12
USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")

# (username, display name, roles, comune): one account per kind of operator, to show the platform.
DEMO_ACCOUNTS = (
    ("admin", "Amministratore dell'Ambito (demo)", (AMBITO_ADMIN,), None),
    ("protocollo", "Ufficio protocollo (demo)", (PROTOCOL_OFFICER,), None),
    ("clusone", "Operatore del Comune di Clusone (demo)", (COMUNE_OPERATOR,), "clusone"),
    ("as.clusone", "Assistente sociale di Clusone (demo)", (SOCIAL_WORKER,), "clusone"),
)

_hasher = PasswordHasher()


class DemoDisabled(RuntimeError):
    """Demo accounts with a published password must never exist outside a demo."""


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not a password of anyone")


def normalise_username(username: str) -> str:
    return username.strip().lower()


def create_user(session: Session, username: str, password: str, roles: Iterable[str],
                comune: str | None = None, display_name: str = "", *,
                platform: PlatformSettings) -> User:
    """Add an operator account for a real deployment (password of at least 12 characters)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput("La password è troppo corta.", errors={
            "password": [f"La password deve avere almeno {MIN_PASSWORD_LENGTH} caratteri."]})
    return _add_user(session, username, password, roles, comune, display_name,
                     comuni=_comuni(platform))


def seed_demo_accounts(session: Session, password: str, *, platform: PlatformSettings) -> list[str]:
    """Create the demo operators that are missing; returns the usernames created.

    Refuses outside demo mode: these accounts have well-known names and a
    shared password.
    """
    if not platform.demo:
        raise DemoDisabled("demo accounts are created only when AMBITO_DEMO is true")
    existing = set(session.scalars(select(User.username)))
    comuni = _comuni(platform)
    created = []
    for username, display_name, roles, comune in DEMO_ACCOUNTS:
        if username not in existing:
            _add_user(session, username, password, roles, comune, display_name, comuni=comuni)
            created.append(username)
    return created


def _comuni(platform: PlatformSettings) -> set[str]:
    """The codes of the Ambito's comuni, the only ones a comune-bound operator may belong to."""
    return {c["code"] for c in load_ambito(platform)["comuni"]}


def _add_user(session: Session, username: str, password: str, roles: Iterable[str],
              comune: str | None, display_name: str, *, comuni: set[str]) -> User:
    username = normalise_username(username)
    roles = list(dict.fromkeys(roles))
    errors: dict[str, list[str]] = {}
    if not USERNAME_PATTERN.fullmatch(username):
        errors["username"] = ["Da 2 a 64 caratteri tra lettere minuscole, cifre, punto e trattini."]
    elif session.scalar(select(User.id).where(User.username == username)) is not None:
        errors["username"] = ["Questo nome utente esiste già."]
    unknown = [role for role in roles if role not in ROLES]
    if not roles or unknown:
        errors["roles"] = [f"Ruoli ammessi: {', '.join(ROLES)}."]
    if set(roles) & set(COMUNE_BOUND_ROLES):
        if comune not in comuni:
            errors["comune"] = ["Indicare uno dei comuni dell'Ambito."]
    elif comune is not None:
        errors["comune"] = ["Il comune si indica solo per operatori comunali e assistenti sociali."]
    if errors:
        raise InvalidInput("L'utente non può essere creato.", errors=errors)
    user = User(username=username, password_hash=_hasher.hash(password),
                display_name=display_name.strip() or username, roles=roles, comune=comune, active=True)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    """The active user with these credentials, or Unauthorized with one generic message.

    An unknown or inactive username still costs one argon2 verification, so
    response times do not reveal which usernames exist.
    """
    user = session.scalar(select(User).where(User.username == normalise_username(username)))
    stored = user.password_hash if user is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError) as exc:
        raise Unauthorized(LOGIN_FAILED) from exc
    if user is None or not user.active:
        raise Unauthorized(LOGIN_FAILED)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = utcnow()
    return user


def active_user(session: Session, user_id: object) -> User | None:
    """The user a gateway session points at, if it still exists and may log in."""
    if not isinstance(user_id, int):
        return None
    user = session.get(User, user_id)
    return user if user is not None and user.active else None


def identity_of(user: User) -> Identity:
    return Identity(subject=str(user.id), username=user.username, roles=tuple(user.roles),
                    comune=user.comune, display_name=user.display_name)
