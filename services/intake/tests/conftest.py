"""Fixtures of the intake suite: a real app on a SQLite file under tmp_path, with the calls loaded."""

from __future__ import annotations

import datetime as dt
import email
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from ambito_common.db import session_scope
from ambito_common.identity import ensure_keypair
from ambito_common.testing import REPO_ROOT
from flask import Flask
from flask.testing import FlaskClient
from intake.app import create_app
from intake.reference_data import load_demo_data, load_reference_data
from intake.runtime import Runtime
from intake.settings import Settings
from stdnum import luhn
from werkzeug.datastructures import MultiDict

from tests.harness import MailSink
from tests.journey import sad_request

DATA_DIR = REPO_ROOT / "data" / "ambiti" / "vsssc"
SEED_CALL = "pdz-2025-2027"
DEMO_CALL = "pdz-demo"

def _tax_code(n: int) -> str:
    """The n-th valid 11-digit codice fiscale / partita IVA (office code 001)."""
    body = f"{n:07d}001"
    return body + luhn.calc_check_digit(body)


def _payload(**overrides: Any) -> dict[str, Any]:
    """A valid application; ``overrides`` replace top-level parts."""
    payload: dict[str, Any] = {
        "organisation": {
            "name": "Associazione Amici della Val di Scalve", "category": "ets", "legal_form": "aps",
            "tax_code": _tax_code(1), "runts_number": "123456",
            "address": {"street": "Via Roma 1", "postal_code": "24020", "municipality": "Schilpario",
                        "province": "BG"},
            "pec": "amici@pec.example.it", "email": "info@amici.example.it", "phone": "+39 0346 55123",
        },
        "legal_representative": {"first_name": "Mario", "last_name": "Rossi",
                                 "tax_code": "RSSMRA85T10A562S"},
        "contact_person": {"first_name": "Anna", "last_name": "Bianchi",
                           "email": "anna.bianchi@example.it", "phone": "333 1234567"},
        "areas": ["minori-famiglia", "inclusione-sociale"],
        "commitments_accepted": True, "publication_consent": True, "ip_release": True,
        "privacy_acknowledged": True,
    }
    payload.update(overrides)
    return payload


def _form_pairs(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """A payload as the (dotted name, value) pairs a browser would post."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        name = prefix + key
        if isinstance(value, dict):
            pairs += _form_pairs(value, name + ".")
        elif isinstance(value, list):
            pairs += [(name, v) for v in value]
        elif value is True:
            pairs.append((name, "on"))
        elif value is not False:
            pairs.append((name, value))
    return pairs


@pytest.fixture
def intake_data_dir() -> Path:
    return DATA_DIR


@pytest.fixture
def intake_tax_code() -> Callable[[int], str]:
    return _tax_code


@pytest.fixture
def intake_payload() -> Callable[..., dict[str, Any]]:
    return _payload


@pytest.fixture
def intake_form_pairs() -> Callable[[dict[str, Any]], list[tuple[str, str]]]:
    return _form_pairs


@pytest.fixture
def intake_env(tmp_path: Path) -> dict[str, str]:
    keys = tmp_path / "keys"
    ensure_keypair(keys / "identity.pem", keys / "identity.pub.pem")
    return {
        "AMBITO_VAR_DIR": str(tmp_path / "var"),
        "AMBITO_DATA_DIR": str(DATA_DIR),
        "AMBITO_SMTP_URL": f"file://{tmp_path / 'mail'}",
        "AMBITO_IDENTITY_PUBLIC_KEY_FILE": str(keys / "identity.pub.pem"),
        "AMBITO_PUBLIC_URL": "https://ambito.example.it",
    }


@pytest.fixture
def intake_runtime(intake_env: dict[str, str]) -> Runtime:
    runtime = Runtime.build(Settings.from_env(intake_env))
    runtime.migrate()
    with session_scope(runtime.session_factory) as session:
        load_reference_data(session, DATA_DIR)
        load_demo_data(session, DATA_DIR, dt.date.today())
    return runtime


@pytest.fixture
def intake_app(intake_runtime: Runtime) -> Flask:
    return create_app(runtime=intake_runtime)


@pytest.fixture
def intake_client(intake_app: Flask) -> FlaskClient:
    return intake_app.test_client()


@pytest.fixture
def intake_csrf(intake_client: FlaskClient) -> Callable[[], str]:
    """The CSRF token a page gave the browser (its cookie), to send back with a form."""

    def token() -> str:
        cookie = intake_client.get_cookie("ambito_csrf")
        assert cookie is not None
        return cookie.value

    return token


@pytest.fixture
def intake_page_post(intake_client: FlaskClient, intake_csrf: Callable[[], str]) -> Callable[..., Any]:
    """POST a form like a browser: first GET the form (for the CSRF cookie), then send its token."""

    def post(path: str, pairs: list[tuple[str, str]], *, with_token: bool = True):  # type: ignore[no-untyped-def]
        form_page = intake_client.get(path)
        assert form_page.status_code == 200, form_page.text
        token = intake_csrf()
        data = [*pairs, ("csrf_token", token)] if with_token else pairs
        return intake_client.post(path, data=MultiDict(data))

    return post


@pytest.fixture
def intake_worker(intake_runtime: Runtime, intake_env: dict[str, str],
                  monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The worker's runtime, built from the process environment as in a real worker."""
    from intake.runtime import worker_runtime

    for key, value in intake_env.items():
        monkeypatch.setenv(key, value)
    worker_runtime.cache_clear()
    yield worker_runtime()
    worker_runtime.cache_clear()


class IntakeInbox(MailSink):
    """The platform's test SMTP server, also keeping each message's envelope recipients."""

    def __init__(self) -> None:
        super().__init__()
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.recipients.append(list(envelope.rcpt_tos))
        return await super().handle_DATA(server, session, envelope)

    @property
    def mails(self) -> list[Message]:
        return [email.message_from_bytes(raw) for raw in self.messages]


@pytest.fixture
def intake_mail(intake_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[IntakeInbox]:
    """A real SMTP server the worker sends to (the worker's runtime is built from the environment)."""
    from intake.runtime import worker_runtime

    with IntakeInbox() as inbox:
        for key, value in {**intake_env, "AMBITO_SMTP_URL": inbox.url}.items():
            monkeypatch.setenv(key, value)
        worker_runtime.cache_clear()
        try:
            yield inbox
        finally:
            worker_runtime.cache_clear()


# SAD voucher requests


def _sad_payload(**overrides: Any) -> dict[str, Any]:
    """A valid SAD request for a beneficiary of Schilpario; ``overrides`` replace top-level parts."""
    payload = sad_request()
    payload["beneficiary"]["comune"] = "schilpario"
    payload.update(overrides)
    return payload


@pytest.fixture
def intake_sad_payload() -> Callable[..., dict[str, Any]]:
    return _sad_payload


@pytest.fixture
def intake_token(intake_env: dict[str, str]) -> Callable[..., dict[str, str]]:
    """Authorization headers for a user with ``roles`` (and a ``comune``), signed like the gateway's."""
    from ambito_common.identity import Identity, TokenIssuer

    key = Path(intake_env["AMBITO_IDENTITY_PUBLIC_KEY_FILE"]).with_name("identity.pem")
    issuer = TokenIssuer(key.read_bytes(), dt.timedelta(minutes=10))

    def headers(username: str, *roles: str, comune: str | None = None) -> dict[str, str]:
        token = issuer.issue(Identity(subject=username, username=username, roles=roles, comune=comune,
                                      display_name=username.replace(".", " ").title()))
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def intake_upload(intake_client: FlaskClient) -> Callable[..., Any]:
    """POST a file as a browser's multipart form would (with the CSRF double-submit)."""
    import io

    def upload(code: str, content: bytes, *, name: str = "isee.pdf", kind: str = "isee"):  # type: ignore[no-untyped-def]
        intake_client.set_cookie("ambito_csrf", "test-token")
        return intake_client.post(f"/api/intake/sad-requests/{code}/attachments", data={
            "file": (io.BytesIO(content), name), "kind": kind, "csrf_token": "test-token"},
            content_type="multipart/form-data")

    return upload


# Desk bookings


def _booking_payload(start: str, location: str = "clusone", **overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "location": location, "start": start, "topic": "amministrazione_di_sostegno",
        "person": {"first_name": "Paola", "last_name": "Bonetti"},
        "concerning": {"first_name": "Giacomo", "last_name": "Bonetti", "relation": "padre"},
        "comune": "rovetta", "contact": {"email": "paola.bonetti@example.it", "phone": "333 1112223"},
        "mode": "in_person",
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def intake_booking_payload() -> Callable[..., dict[str, Any]]:
    return _booking_payload


@pytest.fixture
def intake_free_slot(intake_client: FlaskClient) -> Callable[..., dict[str, Any]]:
    """The first bookable slot of a location with all its seats free, as the availability API gives it."""

    def first(location: str = "clusone", capacity: int = 2) -> dict[str, Any]:
        today = dt.date.today()
        slots = intake_client.get(f"/api/intake/desk/availability?location={location}"
                                  f"&from={today}&to={today + dt.timedelta(days=60)}").get_json()
        return next(s for s in slots if s["remaining"] == capacity)

    return first
