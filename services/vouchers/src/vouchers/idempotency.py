"""Idempotent writes: the ``Idempotency-Key`` header of every write to this API.

A client that did not hear the answer (timeout, dropped connection) sends the same
request with the same key and gets the first answer again, instead of reserving
twice. The key is remembered per caller with a hash of the request (method, path,
body): the same key with a different request is a 409. The answer is stored in the
transaction that did the work, so either both are committed or neither is.

A request the rules refuse (a ``DomainError`` raised by the work: 409 over budget,
422 rule violation, 404...) is remembered too, in a transaction of its own after the
work was rolled back: a replay gets the same refusal, never a late 201 for a request
its caller already saw refused. Failures of the system (5xx, a database that kept
asking to retry) are not remembered, so the same key may be sent again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from ambito_common.errors import Conflict, DomainError, problem_body
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


class KeyReused(Conflict):
    """The key was already used for a different request (never remembered itself)."""


class MissingKey(DomainError):
    status = 400
    title = "Idempotency-Key mancante"


def check_key(key: str | None) -> str:
    key = (key or "").strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise MissingKey(f"Ogni scrittura richiede l'intestazione {HEADER} "
                         f"(da 1 a {MAX_KEY_LENGTH} caratteri stampabili).")
    return key


def request_hash(method: str, path: str, body: Any) -> str:
    """A fingerprint of a request: JSON bodies compare by content, others (CSV) by their text."""
    canonical = json.dumps({"method": method, "path": path, "body": body}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def once(session: Session, *, scope: str, key: str, fingerprint: str,
         action: Callable[[], tuple[int, dict[str, Any]]]) -> tuple[int, dict[str, Any]]:
    """The stored answer for ``key``, or ``action``'s answer, stored with it."""
    stored = session.scalar(select(IdempotencyKey).where(IdempotencyKey.scope == scope,
                                                         IdempotencyKey.key == key))
    if stored is not None:
        if stored.request_hash != fingerprint:
            raise KeyReused(f"La chiave {HEADER} è già stata usata per una richiesta diversa.")
        return stored.status_code, stored.response
    status, response = action()
    session.add(IdempotencyKey(scope=scope, key=key, request_hash=fingerprint, status_code=status,
                               response=response))
    session.flush()
    return status, response


def remember_refusal(session: Session, *, scope: str, key: str, fingerprint: str,
                     error: DomainError) -> tuple[int, dict[str, Any]]:
    """Store a refusal under ``key`` (the work was rolled back); the answer to give.

    A concurrent request with the same key may have stored its answer meanwhile: that
    first answer wins, as for any replay.
    """
    return once(session, scope=scope, key=key, fingerprint=fingerprint,
                action=lambda: (error.status, problem_body(error)))
