"""What every page of vouchers shares: the fund and period asked for, whose comune is shown,
euros typed the Italian way, and the write that runs once per rendered form.

Each rendered form carries its own key (a hidden field), used like the API's Idempotency-Key:
a double submit writes once and shows the first result again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from ambito_common.csrf import CSRF_FIELD
from ambito_common.db import db_session
from ambito_common.errors import NotFound
from ambito_common.identity import AMBITO_ADMIN, COMUNE_OPERATOR, Identity, current_identity
from flask import current_app, request

from . import idempotency, services
from .models import Fund, Period

STAFF = (AMBITO_ADMIN, COMUNE_OPERATOR)
FORM_KEY = "form_key"
EURO = re.compile(r"^(\d{1,3}(\.\d{3})+|\d+)(,\d{1,2})?$")


def selection(values: Any = None) -> tuple[list[Fund], Fund, Period]:
    """The funds, and the fund and period asked for (by default the first fund, its latest period).

    ``values``: where to read them (default the query string; a form posts them).
    """
    values = request.args if values is None else values
    funds = [f for f in services.list_funds(db_session()) if f.periods]
    if not funds:
        raise NotFound("Nessun fondo con periodi.")
    fund = next((f for f in funds if f.code == values.get("fund")), funds[0])
    period = next((p for p in fund.periods if p.code == values.get("period")), fund.periods[-1])
    return funds, fund, period


def comune_scope(identity: Identity | None) -> str | None:
    """None for Ambito staff (everything), else the operator's comune.

    An operator's token without a comune gets "" (matches no comune), never None: None means
    "no filter", which would let such an operator see and touch every comune.
    """
    if identity is not None and AMBITO_ADMIN in identity.roles:
        return None
    return (identity.comune if identity is not None else None) or ""


def comune_filter() -> str | None:
    """:func:`comune_scope` of the signed-in person."""
    return comune_scope(current_identity())


def comune_names() -> dict[str, str]:
    """The Ambito's comuni, ``{code: name}``, in the Ambito's order."""
    return {c["code"]: c["name"] for c in current_app.extensions["ambito"]["comuni"]}


def comune_choices(identity: Identity) -> list[tuple[str, str]]:
    """The comuni a person may pick in a form: every one for Ambito staff, else only their own."""
    scope = comune_scope(identity)
    return [(code, name) for code, name in comune_names().items() if scope is None or code == scope]


def parse_euro(text: str) -> int | None:
    """Euros as a person types them ("1.234,56", "80") in cents, or None."""
    compact = text.replace("€", "").replace(" ", "").strip()
    if not EURO.match(compact):
        return None
    whole, _, decimals = compact.replace(".", "").partition(",")
    return int(whole) * 100 + int((decimals + "00")[:2])


def euro_text(cents: int | None) -> str:
    return "" if cents is None else f"{cents / 100:.2f}".replace(".", ",")


def form_once(action: Callable[[], dict[str, Any]], files: list[str] | None = None) -> dict[str, Any]:
    """Run a form's write once per rendered form; a repeated submit gets the first result."""
    key = idempotency.check_key(request.form.get(FORM_KEY))
    fields = {name: request.form.getlist(name) for name in sorted(request.form)
              if name not in (FORM_KEY, CSRF_FIELD)}
    fingerprint = idempotency.request_hash("POST", request.path, {"form": fields, "files": files or []})
    identity = current_identity()
    assert identity is not None
    session = db_session()
    _, body = services.run_transaction(session, lambda: idempotency.once(
        session, scope=identity.subject, key=key, fingerprint=fingerprint, action=lambda: (200, action())))
    return body


def identity_actor() -> tuple[Identity, str]:
    identity = current_identity()
    assert identity is not None  # require_roles ran first
    return identity, identity.username or identity.subject


def form_key() -> str:
    """The form's key: the one it was sent with (a refused write stored nothing), else a new one."""
    return request.form.get(FORM_KEY) or uuid.uuid4().hex
