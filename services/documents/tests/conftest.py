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
import re
import ssl
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from ambito_common.identity import COMUNE_OPERATOR, PROTOCOL_OFFICER, Identity, TokenIssuer, ensure_keypair
from ambito_common.testing import REPO_ROOT, SHARED_DIR
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
from lxml import etree
from sqlalchemy import select

DATA_DIR = REPO_ROOT / "data" / "ambiti" / "vsssc"
ORGANISATION = "Ambito Territoriale Sociale Valle Seriana Superiore e Valle di Scalve"
CALLBACK = "intake.package_status"
PEC_FROM = "ambito.istanze@pec.example.it"
PEC_XSD = SHARED_DIR / "standards" / "agid-protocollo" / "pec_message.xsd"


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


@pytest.fixture
def documents_browser(documents_client: FlaskClient, documents_officer_token: str) -> FlaskClient:
    """The test client carrying the officer's identity cookie, as the gateway sets it."""
    documents_client.set_cookie("ambito_identity", documents_officer_token)
    return documents_client


def page_text(response: Any) -> str:
    """A page's HTML with entities decoded, as a person reads it."""
    return unescape(response.get_data(as_text=True))


def form_csrf(html: str) -> str:
    """The CSRF token of the (first) form on a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def pec_receipt(kind: str, message_id: str, *, daticert: bool = True, header: bool = True,
                error: str = "nessuno") -> bytes:
    """A PEC receipt as a provider sends it (headers, text, daticert.xml)."""
    receipt = EmailMessage(policy=SMTP_POLICY)
    receipt["From"] = "posta-certificata@pec.provider.example.it"
    receipt["To"] = PEC_FROM
    receipt["Subject"] = f"{kind.upper()}: Manifestazione di interesse"
    receipt["X-Ricevuta"] = kind
    if header:
        receipt["X-Riferimento-Message-ID"] = message_id
    receipt.set_content(f"Ricevuta di {kind}")
    if daticert:
        xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<postacert tipo="{kind}" errore="{error}">
  <intestazione><mittente>{PEC_FROM}</mittente>
    <destinatari tipo="certificato">protocollo@pec.comune.clusone.bg.it</destinatari>
    <risposte>{PEC_FROM}</risposte><oggetto>Manifestazione di interesse</oggetto></intestazione>
  <dati><gestore-emittente>Provider PEC di prova</gestore-emittente>
    <data zona="+0100"><giorno>21/11/2026</giorno><ora>10:16:00</ora></data>
    <identificativo>opec-1234@pec.provider.example.it</identificativo>
    <msgid>{message_id.replace("<", "&lt;").replace(">", "&gt;")}</msgid>
    <ricevuta tipo="completa"/><consegna>protocollo@pec.comune.clusone.bg.it</consegna>
    {"<errore-esteso>5.1.1 casella inesistente</errore-esteso>" if error != "nessuno" else ""}
  </dati>
</postacert>""".encode()
        receipt.add_attachment(xml, maintype="application", subtype="xml", filename="daticert.xml")
    return receipt.as_bytes()


def _identificatore(register: str, number: str, date: str) -> str:
    return (f"<pec:Identificatore><prot:CodiceAmministrazione>c_c800</prot:CodiceAmministrazione>"
            f"<prot:CodiceAOO>AOO_DEMO_CLUSONE</prot:CodiceAOO><prot:CodiceRegistro>{register}</prot:CodiceRegistro>"
            f"<prot:NumeroRegistrazione>{number}</prot:NumeroRegistrazione>"
            f"<prot:DataRegistrazione>{date}</prot:DataRegistrazione></pec:Identificatore>")


def agid_reply(root: str, ours_number: str = "0000001", *, theirs: str = "0012345",
               register: str = "PROT_GENERALE", motivo: str | None = None) -> bytes:
    """An AgID reply of the recipient's protocol (``ConfermaRicezione``, ``NotificaEccezione``)
    naming our registration ``ours_number`` of today; a Conferma carries theirs, ``theirs``."""
    today = dt.date.today().isoformat()
    ours = _identificatore("ISTANZE_ONLINE", ours_number, today)
    head = "" if root == "NotificaEccezione" else _identificatore(register, theirs, today)
    tail = f"<pec:Motivo>{motivo}</pec:Motivo>" if motivo else ""
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><pec:{root} '
           f'xmlns:pec="http://www.agid.gov.it/protocollo/pec/" '
           f'xmlns:prot="http://www.agid.gov.it/protocollo/" pec:versione="3.0.0" pec:lang="it">'
           f"{head}<pec:MessaggioRicevuto>{ours}</pec:MessaggioRicevuto>{tail}</pec:{root}>").encode()
    # The replies used here are valid against AgID's own schema.
    schema = etree.XMLSchema(etree.parse(str(PEC_XSD)))
    assert schema.validate(etree.fromstring(xml)), schema.error_log
    return xml
