"""Fixtures of the documents suite.

The app and the worker run on the same embedded-mode environment under tmp_path
(a SQLite file, the package store, a filesystem broker), but as two runtimes, as
a web process and a Celery worker would: the tasks run in-process through the
real task objects (``build_package.run(...)``), with ``worker_runtime()`` built
from the environment exactly as in a worker.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ambito_common.identity import COMUNE_OPERATOR, PROTOCOL_OFFICER, Identity, TokenIssuer, ensure_keypair
from ambito_common.testing import REPO_ROOT
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from documents import tasks
from documents.app import create_app
from documents.builders import ensure_dev_pki
from documents.models import OutboxMessage
from documents.runtime import Runtime, worker_runtime
from documents.settings import Settings
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

DATA_DIR = REPO_ROOT / "data" / "ambiti" / "vsssc"
ORGANISATION = "Ambito Territoriale Sociale Valle Seriana Superiore e Valle di Scalve"
CALLBACK = "intake.package_status"


def _payload(tracking: str = "K7P2M9QX", number: str = "0000001") -> dict[str, Any]:
    """A build payload as intake sends it for an accepted co-programming application."""
    today = dt.date.today()
    subject = "Manifestazione di interesse alla co-programmazione - Cooperativa Sociale L'Àncora"
    data = {
        "organisation": {"name": "Cooperativa Sociale L'Àncora", "tax_code": "91234567890",
                         "legal_form": "cooperativa_sociale", "runts_number": "123456",
                         "pec": "ancora@pec.example.it", "email": "info@ancora.example.it"},
        "contact": {"name": "Maria Rossi", "role": "Presidente", "phone": "0346 123456"},
        "areas": ["invecchiamento_disabilita", "inclusione_sociale"],
        "declarations": {"commitments": True, "publication": True, "intellectual_property": True},
    }
    return {
        "kind": "coprogramming_application",
        "subject": subject,
        "file_stem": f"domanda-{tracking}",
        "document": {
            "header": {"lead_body": "Comune di Clusone", "ambito": ORGANISATION},
            "title": "Manifestazione di interesse alla co-programmazione",
            "subtitle": "Avviso pubblico - Piano di Zona 2025-2027",
            "sections": [
                {"title": "Organizzazione", "fields": [
                    {"label": "Denominazione", "value": "Cooperativa Sociale L'Àncora"},
                    {"label": "Codice fiscale", "value": "91234567890"},
                    {"label": "PEC", "value": "ancora@pec.example.it"}]},
                {"title": "Referente", "fields": [
                    {"label": "Nome e cognome", "value": "Maria Rossi"},
                    {"label": "Telefono", "value": "0346 123456"}]},
                {"title": "Aree tematiche", "fields": [
                    {"label": "Aree", "value": "Invecchiamento, disabilità, non autosufficienza; "
                                               "Inclusione sociale"}]},
            ],
            "declarations": ["Si impegna a partecipare ai tavoli secondo quanto previsto dall'avviso.",
                             "Acconsente alla pubblicazione dei dati e dei contributi."],
            "submitted_at": f"{today:%d/%m/%Y} 10:15",
            "tracking_code": tracking,
            "registration": f"ISTANZE_ONLINE {number} del {today:%d/%m/%Y}",
        },
        "data": data,
        "meta": {
            "registration": {"ipa_code": "c_c800", "aoo_code": "AOO_DEMO_CLUSONE",
                             "register_code": "ISTANZE_ONLINE", "number": number,
                             "date": today.isoformat()},
            "sender": {"name": "Cooperativa Sociale L'Àncora", "tax_code": "91234567890",
                       "pec": "ancora@pec.example.it", "email": "info@ancora.example.it"},
            "recipient": {"name": "Comune di Clusone", "ipa_code": "c_c800",
                          "aoo_code": "AOO_DEMO_CLUSONE",
                          "aoo_name": "Comune di Clusone - Protocollo generale",
                          "pec": "protocollo@pec.comune.clusone.bg.it"},
            "subject": subject,
        },
    }


@pytest.fixture
def documents_payload() -> Callable[..., dict[str, Any]]:
    return _payload


@pytest.fixture(scope="session")
def documents_pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One development PKI for the whole suite (RSA key generation is the slow part)."""
    directory = tmp_path_factory.mktemp("pki")
    ensure_dev_pki(directory, ORGANISATION)
    return directory


@pytest.fixture(scope="session")
def documents_tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost / 127.0.0.1, generated for the test."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(
                ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    """The server side of a TLS connection with the test certificate (SMTP, IMAP servers)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    return context


@pytest.fixture
def documents_database_url() -> str:
    """The service's database; empty means the embedded SQLite file (overridden for PostgreSQL)."""
    return ""


@pytest.fixture
def documents_environ(tmp_path: Path, documents_pki_dir: Path, documents_database_url: str) -> dict[str, str]:
    environ = {
        "AMBITO_MODE": "embedded",
        "AMBITO_VAR_DIR": str(tmp_path / "var"),
        "AMBITO_DATA_DIR": str(DATA_DIR),
        "DOCUMENTS_PKI_DIR": str(documents_pki_dir),
    }
    if documents_database_url:
        environ["DOCUMENTS_DATABASE_URL"] = documents_database_url
    return environ


@pytest.fixture
def documents_issuer(documents_environ: dict[str, str]) -> TokenIssuer:
    keys = Path(documents_environ["AMBITO_VAR_DIR"]) / "keys"
    ensure_keypair(keys / "identity.pem", keys / "identity.pub.pem")
    return TokenIssuer((keys / "identity.pem").read_bytes(), dt.timedelta(minutes=10))


@pytest.fixture
def documents_runtime(documents_environ: dict[str, str], documents_issuer: TokenIssuer) -> Iterator[Runtime]:
    runtime = Runtime.build(Settings.from_env(documents_environ))
    runtime.migrate()
    yield runtime
    runtime.close()


@pytest.fixture
def documents_app(documents_runtime: Runtime) -> Flask:
    return create_app(runtime=documents_runtime)


@pytest.fixture
def documents_client(documents_app: Flask) -> Iterator[FlaskClient]:
    with documents_app.test_client() as client:
        yield client


@pytest.fixture
def documents_officer_token(documents_issuer: TokenIssuer) -> str:
    return documents_issuer.issue(Identity(subject="u-protocollo", username="protocollo.clusone",
                                           roles=(PROTOCOL_OFFICER,), display_name="Paola Bianchi"))


@pytest.fixture
def documents_operator_token(documents_issuer: TokenIssuer) -> str:
    return documents_issuer.issue(Identity(subject="u-operatore", username="operatore.clusone",
                                           roles=(COMUNE_OPERATOR,), comune="clusone",
                                           display_name="Luca Verdi"))


@pytest.fixture
def documents_officer(documents_officer_token: str) -> dict[str, str]:
    """Request headers of a protocol officer calling the API."""
    return {"Authorization": f"Bearer {documents_officer_token}"}


@pytest.fixture
def documents_worker(documents_environ: dict[str, str], documents_runtime: Runtime,
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """The worker's runtime, built by ``worker_runtime()`` from the process environment."""
    for name in [name for name in os.environ if name.startswith(("AMBITO_", "DOCUMENTS_"))]:
        monkeypatch.delenv(name)
    for name, value in documents_environ.items():
        monkeypatch.setenv(name, value)
    worker_runtime.cache_clear()
    runtime = worker_runtime()
    yield runtime
    runtime.close()
    worker_runtime.cache_clear()


@pytest.fixture
def documents_build(documents_worker: Runtime) -> Callable[..., str]:
    """Run the build task as the worker does; returns the package id."""

    def build(application_id: int = 1, payload: dict[str, Any] | None = None) -> str:
        return tasks.build_package.run(source="intake", source_ref=f"application:{application_id}",
                                       callback=CALLBACK, payload=payload or _payload())

    return build


@pytest.fixture
def documents_outbox(documents_runtime: Runtime) -> Callable[[], list[tuple[str, dict[str, Any]]]]:
    """The outbox rows written so far, oldest first, as (task name, kwargs)."""

    def rows() -> list[tuple[str, dict[str, Any]]]:
        with documents_runtime.session_factory() as session:
            return [(row.task_name, row.kwargs)
                    for row in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]

    return rows


@pytest.fixture
def documents_delivered(documents_build: Callable[..., str]) -> str:
    """A package built and delivered into the protocol inbox; its id."""
    package_id = documents_build()
    assert tasks.deliver_package.run(package_id=package_id) == "delivered"
    return package_id
