"""PEC delivery to a real SMTP server (aiosmtpd with TLS and authentication), retries when
it is down, the size limit, and the replies that move a package: PEC receipts and AgID
Conferma/Eccezione, uploaded through the API."""

from __future__ import annotations

import datetime as dt
import email
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from ambito_common.testing import free_port
from celery import signals
from celery.exceptions import Retry
from documents import tasks
from documents.models import PackageReply
from documents.services import get_package
from sqlalchemy import func, select

from .conftest import PEC_FROM, agid_reply, pec_receipt, server_tls_context

# With implicit TLS the whole connection is encrypted, but aiosmtpd cannot tell and warns.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

CALLBACK = "intake.package_status"
USER, PASSWORD = "ambito", "segreto smtp"


class _Mailbox:
    """aiosmtpd handler keeping what was received, with its envelope."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.kill_on_data: int | None = None  # a process to kill once a message is in
        self.drop_on_data = False  # hang up instead of answering the DATA
        self.busy_rcpt = 0  # answer RCPT "451 try again later" this many more times

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # type: ignore[no-untyped-def]
        if self.busy_rcpt:
            self.busy_rcpt -= 1
            return "451 4.3.2 Sistema temporaneamente non disponibile, riprovare"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        if self.kill_on_data is not None:  # the sender dies before it learns the outcome
            os.kill(self.kill_on_data, signal.SIGKILL)
            self.kill_on_data = None
        if self.drop_on_data:
            server.transport.close()
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:  # type: ignore[no-untyped-def]
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


class _Smtp:
    """A PEC provider's SMTP server on a fixed port, started and stopped at will."""

    def __init__(self, cert: tuple[Path, Path], *, implicit_tls: bool) -> None:
        self.cert, self.implicit_tls = cert, implicit_tls
        self.port = free_port()
        self.mailbox = _Mailbox()
        self.controller: Controller | None = None

    @property
    def url(self) -> str:
        cafile = f"cafile={self.cert[0]}"
        if self.implicit_tls:
            return f"smtps://{USER}:segreto%20smtp@localhost:{self.port}?{cafile}"
        return f"smtp://{USER}:segreto%20smtp@localhost:{self.port}?starttls=1&{cafile}"

    def start(self) -> None:
        context = server_tls_context(self.cert)
        options: dict[str, Any] = {"authenticator": _authenticator, "auth_required": True}
        if self.implicit_tls:
            # The whole connection is TLS: aiosmtpd cannot tell, so allow AUTH explicitly.
            self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port,
                                         ssl_context=context, server_hostname="localhost",
                                         auth_require_tls=False, **options)
        else:
            self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port,
                                         tls_context=context, require_starttls=True, **options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def documents_smtp_mode() -> str:
    return "smtps"


@pytest.fixture
def documents_smtp(documents_smtp_mode: str, documents_tls_cert) -> Iterator[_Smtp]:  # type: ignore[no-untyped-def]
    server = _Smtp(documents_tls_cert, implicit_tls=documents_smtp_mode == "smtps")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def documents_resend_after() -> str:
    return "600"


@pytest.fixture
def documents_environ(documents_environ: dict[str, str], documents_smtp: _Smtp,
                      documents_resend_after: str) -> dict[str, str]:
    return {**documents_environ, "DOCUMENTS_PEC_SMTP_URL": documents_smtp.url,
            "DOCUMENTS_PEC_FROM": PEC_FROM, "DOCUMENTS_PEC_RESEND_AFTER_SECONDS": documents_resend_after}


def _package(runtime, package_id: str):  # type: ignore[no-untyped-def]
    with runtime.session_factory() as session:
        return get_package(session, package_id)


@pytest.fixture
def documents_sent(documents_build: Callable[..., str], documents_smtp: _Smtp) -> str:
    package_id = documents_build()
    assert tasks.deliver_package.run(package_id=package_id) == "sent"
    return package_id


def _upload(client, headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
    return client.post("/api/documents/replies", data=body, headers=headers,
                       content_type="application/octet-stream")


@pytest.mark.parametrize("documents_smtp_mode", ["smtps", "starttls"])
def test_a_package_reaches_the_pec_server(documents_sent, documents_smtp, documents_runtime,
                                          documents_outbox) -> None:
    package = _package(documents_runtime, documents_sent)
    assert package.status == "sent" and package.sent_at is not None
    [(mail_from, rcpt_tos, data)] = documents_smtp.mailbox.received
    assert (mail_from, rcpt_tos) == (PEC_FROM, ["protocollo@pec.comune.clusone.bg.it"])
    stored = documents_runtime.store.path(documents_sent, "message.eml").read_bytes()
    assert data == stored  # byte for byte what the manifest hashes
    message = email.message_from_bytes(data, policy=default_policy)
    assert message["Message-ID"] == package.message_id
    assert message["From"].addresses[0].addr_spec == PEC_FROM
    assert [e.event for e in package.events] == ["built", "sealed", "sent"]
    # Sent is not yet delivered: the submitter still sees "packaged".
    assert [kw["status"] for task, kw in documents_outbox() if task == CALLBACK] == ["packaged"]


def test_receipts_and_conferma_move_the_package(documents_sent, documents_client, documents_officer,
                                                documents_runtime, documents_outbox) -> None:
    message_id = _package(documents_runtime, documents_sent).message_id

    accepted = _upload(documents_client, documents_officer, pec_receipt("accettazione", message_id))
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    assert accepted.get_json() == {"package_id": documents_sent, "status": "sent"}

    # Correlated by daticert.xml's msgid when the header is missing.
    delivered = _upload(documents_client, documents_officer,
                        pec_receipt("avvenuta-consegna", message_id, header=False))
    assert delivered.get_json() == {"package_id": documents_sent, "status": "delivered"}
    assert documents_outbox()[-1] == (CALLBACK, {"source_ref": "application:1", "package_id": documents_sent,
                                                 "status": "delivered"})

    conferma = _upload(documents_client, documents_officer, agid_reply("ConfermaRicezione"))
    assert conferma.get_json() == {"package_id": documents_sent, "status": "registered"}
    today = dt.date.today().isoformat()
    assert documents_outbox()[-1] == (CALLBACK, {
        "source_ref": "application:1", "package_id": documents_sent, "status": "registered",
        "protocol": {"number": "0012345", "date": today}})

    # The same Conferma again changes nothing.
    assert _upload(documents_client, documents_officer, agid_reply("ConfermaRicezione")).status_code == 200

    detail = documents_client.get(f"/api/documents/packages/{documents_sent}", headers=documents_officer)
    events = [entry["event"] for entry in detail.get_json()["timeline"]]
    assert events == ["built", "sealed", "sent", "accepted", "delivered", "registered"]
    assert "0012345" in detail.get_json()["timeline"][-1]["detail"]
    with documents_runtime.session_factory() as session:
        kinds = session.scalars(select(PackageReply.kind).order_by(PackageReply.id)).all()
    assert kinds == ["accettazione", "avvenuta-consegna", "conferma"]


def test_an_eccezione_rejects_the_package(documents_sent, documents_client, documents_officer,
                                          documents_runtime, documents_outbox) -> None:
    before = documents_outbox()
    eccezione = agid_reply("NotificaEccezione", motivo="003 - Segnatura non conforme allo schema")
    response = _upload(documents_client, documents_officer, eccezione)
    assert response.get_json() == {"package_id": documents_sent, "status": "rejected"}
    # The source is told once, with the code and the reason (contract 1); the same reply again
    # adds nothing.
    assert documents_outbox()[len(before):] == [(CALLBACK, {
        "source_ref": "application:1", "package_id": documents_sent, "status": "rejected",
        "rejection": {"code": "003", "reason": "Segnatura non conforme allo schema"}})]
    assert _upload(documents_client, documents_officer, eccezione).status_code == 200
    assert len(documents_outbox()) == len(before) + 1
    package = _package(documents_runtime, documents_sent)
    assert (package.rejection_code, package.rejection_reason) == ("003", "Segnatura non conforme allo schema")
    detail = documents_client.get(f"/api/documents/packages/{documents_sent}", headers=documents_officer)
    assert detail.get_json()["rejection"] == {"code": "003", "reason": "Segnatura non conforme allo schema"}
    assert package.events[-1].event == "rejected"


def test_an_error_receipt_makes_the_delivery_retryable(documents_sent, documents_client, documents_officer,
                                                       documents_runtime) -> None:
    message_id = _package(documents_runtime, documents_sent).message_id
    response = _upload(documents_client, documents_officer,
                       pec_receipt("errore-consegna", message_id, error="no-dest"))
    assert response.get_json()["status"] == "built"
    package = _package(documents_runtime, documents_sent)
    assert "casella inesistente" in package.delivery_error


@pytest.mark.parametrize("body", [
    b"",
    b"not xml, not mail",
    b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>",
    b"<pec:ConfermaRicezione xmlns:pec='http://www.agid.gov.it/protocollo/pec/'><broken",
    b"<other/>",
])
def test_unparseable_replies_are_rejected(documents_sent, documents_client, documents_officer,
                                          documents_runtime, documents_outbox, body: bytes) -> None:
    before = documents_outbox()
    response = _upload(documents_client, documents_officer, body)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert documents_outbox() == before
    assert _package(documents_runtime, documents_sent).status == "sent"


def test_unmatched_replies_change_nothing(documents_sent, documents_client, documents_officer,
                                          documents_runtime, documents_outbox) -> None:
    before = documents_outbox()
    for body in (pec_receipt("avvenuta-consegna", "<altro@pec.example.it>"),
                 agid_reply("ConfermaRicezione", ours_number="0000099")):
        response = _upload(documents_client, documents_officer, body)
        assert response.status_code == 422
        assert "nessun pacchetto" in str(response.get_json()["errors"])
    assert documents_outbox() == before
    package = _package(documents_runtime, documents_sent)
    assert package.status == "sent" and [e.event for e in package.events][-1] == "sent"
    with documents_runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(PackageReply)) == 0


def test_replies_need_a_protocol_officer(documents_client, documents_operator_token) -> None:
    assert _upload(documents_client, {}, b"<x/>").status_code == 401
    operator = {"Authorization": f"Bearer {documents_operator_token}"}
    assert _upload(documents_client, operator, b"<x/>").status_code == 403


def test_smtp_down_means_retry_not_loss(documents_build, documents_smtp, documents_runtime,
                                        documents_client, documents_officer, documents_outbox) -> None:
    documents_smtp.stop()
    package_id = documents_build()
    with pytest.raises(OSError):
        tasks.deliver_package.run(package_id=package_id)
    package = _package(documents_runtime, package_id)
    assert package.status == "built" and package.delivery_attempts == 1
    assert package.delivery_error.startswith("Consegna non riuscita")
    assert package.events[-1].event == "delivery_failed"
    failed = documents_client.get(f"/api/documents/packages/{package_id}",
                                  headers=documents_officer).get_json()
    assert (failed["status"], failed["delivery_attempts"]) == ("built", 1)
    assert failed["delivery_error"].startswith("Consegna non riuscita")

    documents_smtp.start()
    response = documents_client.post(f"/api/documents/packages/{package_id}/delivery",
                                     headers=documents_officer)
    assert response.status_code == 202
    assert documents_outbox()[-1] == ("documents.deliver_package", {"package_id": package_id})
    assert tasks.deliver_package.run(package_id=package_id) == "sent"
    package = _package(documents_runtime, package_id)
    assert package.delivery_error is None and package.delivery_attempts == 2
    assert len(documents_smtp.mailbox.received) == 1

    detail = documents_client.get(f"/api/documents/packages/{package_id}", headers=documents_officer)
    assert (detail.get_json()["status"], detail.get_json()["delivery_error"]) == ("sent", None)

    again = documents_client.post(f"/api/documents/packages/{package_id}/delivery", headers=documents_officer)
    assert again.status_code == 409


def test_failed_deliveries_are_retried_by_the_task_until_sent(documents_build, documents_smtp,
                                                            documents_runtime) -> None:
    # The real task through Celery's eager apply(): on self.retry it runs the task again at
    # once (the backoff countdown is what a broker would wait; eager mode cannot wait).
    # Attempt 1: the provider is down (connection refused); the retry brings it back up.
    # Attempt 2: it answers 451 to the recipient. Attempt 3: it takes the message.
    documents_smtp.stop()
    package_id = documents_build()
    documents_smtp.mailbox.busy_rcpt = 1
    retried: list[int] = []

    def provider_back(sender, request, reason, **_kwargs) -> None:  # type: ignore[no-untyped-def]
        retried.append(request.retries)
        if documents_smtp.controller is None:
            documents_smtp.start()

    signals.task_retry.connect(provider_back, sender=tasks.deliver_package, weak=False)
    try:
        result = tasks.deliver_package.apply(kwargs={"package_id": package_id})
    finally:
        signals.task_retry.disconnect(provider_back, sender=tasks.deliver_package)

    assert (result.state, result.result) == ("SUCCESS", "sent")
    assert retried == [0, 1]
    package = _package(documents_runtime, package_id)
    assert (package.status, package.delivery_attempts, package.delivery_error) == ("sent", 3, None)
    events = [(e.event, e.detail) for e in package.events]
    assert [event for event, _ in events] == ["built", "sealed", "delivery_failed", "delivery_failed", "sent"]
    refused, busy = events[2][1], events[3][1]
    assert refused.startswith("Consegna non riuscita: ") and "Connection refused" in refused
    assert "451" in busy and "riprovare" in busy
    assert refused.endswith("Nuovo tentativo automatico a breve.") and busy.endswith("a breve.")
    [(_, rcpt_tos, data)] = documents_smtp.mailbox.received  # sent once
    assert rcpt_tos == ["protocollo@pec.comune.clusone.bg.it"]
    assert data == documents_runtime.store.path(package_id, "message.eml").read_bytes()


def test_a_package_over_the_recipient_limit_is_not_sent(documents_build, documents_payload, documents_smtp,
                                                        documents_runtime) -> None:
    payload = documents_payload()
    payload["kind"] = "other_submission"  # not routed: the recipient (and its limit) as given
    payload["meta"]["recipient"]["pec_max_bytes"] = 20_000
    package_id = documents_build(payload=payload)

    assert tasks.deliver_package.run(package_id=package_id) == "built"

    package = _package(documents_runtime, package_id)
    assert package.status == "built"
    assert "supera il limite di 20,0 kB" in package.delivery_error
    assert documents_smtp.mailbox.received == []


def _deliver_in_a_worker_killed_after_data(environ: dict[str, str], smtp: _Smtp, package_id: str) -> None:
    """Run the delivery task in a worker process that dies once the SMTP server has the message
    in full, before it can commit the outcome: the window where a blind retry sends twice."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AMBITO_", "DOCUMENTS_"))} | environ
    worker = subprocess.Popen([sys.executable, "-c", "import sys; from documents import tasks; "
                               "tasks.deliver_package.run(package_id=sys.argv[1])", package_id], env=env)
    smtp.mailbox.kill_on_data = worker.pid
    assert worker.wait(timeout=120) == -signal.SIGKILL
    assert len(smtp.mailbox.received) == 1


def test_a_crash_after_data_does_not_send_the_pec_twice(documents_build, documents_smtp, documents_environ,
                                                        documents_runtime, documents_client,
                                                        documents_officer, documents_officer_token) -> None:
    package_id = documents_build()
    _deliver_in_a_worker_killed_after_data(documents_environ, documents_smtp, package_id)
    package = _package(documents_runtime, package_id)
    assert package.status == "built" and package.sending_since is not None  # the attempt, committed
    documents_client.set_cookie("ambito_identity", documents_officer_token)
    page = documents_client.get(f"/protocollo/pacchetti/{package_id}").get_data(as_text=True)
    assert "Invio PEC in corso" in page

    # The message is redelivered to another worker: it waits for the receipt, it does not resend.
    with pytest.raises(Retry):
        tasks.deliver_package.run(package_id=package_id)
    assert len(documents_smtp.mailbox.received) == 1

    # The provider's accettazione for that Message-ID settles it: the package was sent.
    accepted = _upload(documents_client, documents_officer, pec_receipt("accettazione", package.message_id))
    assert accepted.get_json() == {"package_id": package_id, "status": "sent"}
    assert tasks.deliver_package.run(package_id=package_id) == "sent"
    assert len(documents_smtp.mailbox.received) == 1
    package = _package(documents_runtime, package_id)
    assert [e.event for e in package.events] == ["built", "sealed", "sent", "accepted"]
    assert package.sending_since is None and package.sent_at is not None


def test_a_connection_lost_after_data_waits_for_the_receipt(documents_build, documents_smtp,
                                                            documents_runtime) -> None:
    package_id = documents_build()
    documents_smtp.mailbox.drop_on_data = True
    with pytest.raises(OSError):
        tasks.deliver_package.run(package_id=package_id)
    package = _package(documents_runtime, package_id)
    assert package.status == "built" and package.sending_since is not None
    assert "attende la ricevuta di accettazione" in package.events[-1].detail

    documents_smtp.mailbox.drop_on_data = False
    with pytest.raises(Retry):  # not sent again blindly
        tasks.deliver_package.run(package_id=package_id)
    assert len(documents_smtp.mailbox.received) == 1


@pytest.mark.parametrize("documents_resend_after", ["1"])
def test_without_a_receipt_the_same_message_goes_again_after_the_grace_period(
        documents_build, documents_smtp, documents_environ, documents_runtime) -> None:
    package_id = documents_build()
    _deliver_in_a_worker_killed_after_data(documents_environ, documents_smtp, package_id)
    time.sleep(1.2)  # DOCUMENTS_PEC_RESEND_AFTER_SECONDS=1 and no accettazione came

    assert tasks.deliver_package.run(package_id=package_id) == "sent"

    first, second = (data for _, _, data in documents_smtp.mailbox.received)
    assert first == second  # the same message, the same Message-ID: a duplicate the recipient can spot
    package = _package(documents_runtime, package_id)
    assert email.message_from_bytes(second, policy=default_policy)["Message-ID"] == package.message_id
    assert [e.event for e in package.events] == ["built", "sealed", "resending", "sent"]
    assert package.message_id in package.events[2].detail
    assert package.delivery_attempts == 2 and package.sending_since is None
