"""The receipt e-mail, delivered over real SMTP to a local aiosmtpd server."""

from __future__ import annotations

import smtplib
import socketserver
import threading

from intake import tasks
from intake.codes import group_tracking_code
from intake.models import Application
from intake.runtime import worker_runtime


def test_intake_receipt_mail_is_sent_once_over_smtp(intake_client, intake_payload,
                                                    intake_mail) -> None:
    created = intake_client.post("/api/intake/calls/pdz-demo/applications", json=intake_payload()).get_json()
    assert tasks.send_receipt(application_id=created["id"]) is True
    assert tasks.send_receipt(application_id=created["id"]) is False  # a redelivered task sends nothing
    assert len(intake_mail.mails) == 1
    recipients, message = intake_mail.recipients[0], intake_mail.mails[0]
    assert sorted(recipients) == ["anna.bianchi@example.it", "info@amici.example.it"]
    assert message["To"] == "info@amici.example.it" and message["Cc"] == "anna.bianchi@example.it"
    code = created["tracking_code"]
    assert group_tracking_code(code) in message["Subject"]
    body = message.get_payload(decode=True).decode(message.get_content_charset())
    assert group_tracking_code(code) in body
    assert "Registrazione: n. 0000001 del " in body and "(registro istanze online)" in body
    assert f"https://ambito.example.it/intake/domande/{code}" in body
    assert "Aree tematiche: Minori e famiglia, Inclusione sociale" in body
    with worker_runtime().session_factory() as session:
        assert session.get(Application, created["id"]).receipt_sent_at is not None


def test_intake_receipt_mail_retries_when_smtp_fails(intake_client, intake_payload, intake_env,
                                                      monkeypatch) -> None:
    """A server that hangs up on every connection: the task retries, then gives up visibly."""
    created = intake_client.post("/api/intake/calls/pdz-demo/applications", json=intake_payload()).get_json()
    connections = []

    class HangUp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            connections.append(self.client_address)

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), HangUp) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"smtp://127.0.0.1:{server.server_address[1]}"
        for key, value in {**intake_env, "AMBITO_SMTP_URL": url}.items():
            monkeypatch.setenv(key, value)
        worker_runtime.cache_clear()
        try:
            # Eagerly applied, the retries run at once instead of after their backoff.
            result = tasks.send_receipt.apply(kwargs={"application_id": created["id"]})
            assert result.state == "FAILURE"
            assert isinstance(result.result, smtplib.SMTPServerDisconnected)
            assert len(connections) == 1 + tasks.send_receipt.max_retries == 13
            with worker_runtime().session_factory() as session:
                assert session.get(Application, created["id"]).receipt_sent_at is None
        finally:
            server.shutdown()
            worker_runtime.cache_clear()
