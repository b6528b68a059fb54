"""Replies arriving by IMAP: the poller task against a small local IMAP4rev1 server over TLS."""

from __future__ import annotations

import datetime as dt
import shlex
import socketserver
import ssl
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import pytest
from documents import tasks
from documents.services import get_package

from .conftest import agid_reply, pec_receipt, server_tls_context

USER, PASSWORD = "ambito", 'segreto "imap"'
CALLBACK = "intake.package_status"


class _ImapServer(socketserver.ThreadingTCPServer):
    """Just enough IMAP4rev1 (RFC 3501) for a poller: LOGIN, SELECT, UID SEARCH/FETCH/STORE."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _ImapHandler)
        self.context = context
        self.messages: list[tuple[bytes, set[str]]] = []  # UID = position + 1
        self.lock = threading.Lock()

    def get_request(self):  # type: ignore[no-untyped-def]
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address


class _ImapHandler(socketserver.StreamRequestHandler):
    server: _ImapServer

    def send(self, line: str | bytes) -> None:
        self.wfile.write((line.encode() if isinstance(line, str) else line) + b"\r\n")

    def handle(self) -> None:
        self.send("* OK IMAP4rev1 server ready")
        authenticated = False
        while line := self.rfile.readline():
            tag, _, rest = line.decode().strip().partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if command == "UID":
                sub, _, args = args.partition(" ")
                command = f"UID {sub.upper()}"
            if command == "CAPABILITY":
                self.send("* CAPABILITY IMAP4rev1")
            elif command == "LOGIN":
                authenticated = shlex.split(args) == [USER, PASSWORD]
                if not authenticated:
                    self.send(f"{tag} NO [AUTHENTICATIONFAILED] invalid credentials")
                    continue
            elif command == "LOGOUT":
                self.send("* BYE")
                self.send(f"{tag} OK LOGOUT completed")
                return
            elif not authenticated:
                self.send(f"{tag} NO not authenticated")
                continue
            elif command == "SELECT":
                self.send(f"* {len(self.server.messages)} EXISTS")
                self.send("* FLAGS (\\Seen)")
            elif command == "UID SEARCH":
                with self.server.lock:
                    unseen = [str(i + 1) for i, (_, flags) in enumerate(self.server.messages)
                              if "\\Seen" not in flags]
                self.send("* SEARCH " + " ".join(unseen))
            elif command == "UID FETCH":
                uid = int(args.split()[0])
                data = self.server.messages[uid - 1][0]
                self.send(f"* {uid} FETCH (UID {uid} BODY[] {{{len(data)}}}".encode() + b"\r\n" + data + b")")
            elif command == "UID STORE":
                uid = int(args.split()[0])
                with self.server.lock:
                    self.server.messages[uid - 1][1].add("\\Seen")
                self.send(f"* {uid} FETCH (UID {uid} FLAGS (\\Seen))")
            else:
                self.send(f"{tag} BAD unknown command")
                continue
            self.send(f"{tag} OK {command} completed")


@pytest.fixture
def documents_imap(documents_tls_cert: tuple[Path, Path]) -> Iterator[_ImapServer]:
    server = _ImapServer(server_tls_context(documents_tls_cert))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def documents_environ(documents_environ: dict[str, str], documents_imap: _ImapServer,
                      documents_tls_cert: tuple[Path, Path]) -> dict[str, str]:
    port = documents_imap.server_address[1]
    url = f"imaps://{USER}:segreto%20%22imap%22@localhost:{port}/INBOX?cafile={documents_tls_cert[0]}"
    return {**documents_environ, "DOCUMENTS_PEC_IMAP_URL": url}


def _by_pec(xml: bytes, filename: str) -> bytes:
    """An AgID reply sent by the recipient's protocol, wrapped by its PEC provider."""
    original = EmailMessage(policy=SMTP_POLICY)
    original["Subject"] = filename
    original.set_content("Risposta del protocollo")
    original.add_attachment(xml, maintype="application", subtype="xml", filename=filename)
    envelope = EmailMessage(policy=SMTP_POLICY)
    envelope["Subject"] = f"POSTA CERTIFICATA: {filename}"
    envelope["X-Trasporto"] = "posta-certificata"
    envelope.set_content("Messaggio di posta certificata")
    envelope.add_attachment(original, filename="postacert.eml")
    return envelope.as_bytes()


def _conferma_by_pec(number: str) -> bytes:
    return _by_pec(agid_reply("ConfermaRicezione", theirs=number), "Conferma.xml")


def _eccezione_by_pec(motivo: str) -> bytes:
    return _by_pec(agid_reply("NotificaEccezione", motivo=motivo), "Eccezione.xml")


def test_the_poller_applies_replies_from_the_pec_mailbox(documents_imap, documents_build, documents_runtime,
                                                         documents_outbox) -> None:
    package_id = documents_build()
    assert tasks.deliver_package.run(package_id=package_id) == "delivered"  # inbox backend
    with documents_runtime.session_factory() as session:
        message_id = get_package(session, package_id).message_id

    documents_imap.messages += [
        (b"From: someone@example.it\r\nSubject: pubblicita\r\n\r\nnot a reply\r\n", set()),
        (pec_receipt("accettazione", message_id), set()),
        (_conferma_by_pec("0077001"), set()),
    ]

    assert tasks.poll_replies.run() == 3

    with documents_runtime.session_factory() as session:
        package = get_package(session, package_id)
        assert package.status == "registered"
        assert package.protocol_number == "0077001"
        assert [e.event for e in package.events][-2:] == ["accepted", "registered"]
        assert [reply.channel for reply in package.replies] == ["imap", "imap"]
        assert {reply.media_type for reply in package.replies} == {"message/rfc822"}
    assert documents_outbox()[-1][1]["protocol"] == {"number": "0077001", "date": dt.date.today().isoformat()}
    assert all("\\Seen" in flags for _, flags in documents_imap.messages)
    assert tasks.poll_replies.run() == 0


def test_an_eccezione_by_pec_rejects_and_tells_the_source(documents_imap, documents_delivered,
                                                          documents_runtime, documents_outbox) -> None:
    documents_imap.messages.append((_eccezione_by_pec("Codice 004: Destinatario non competente"), set()))

    assert tasks.poll_replies.run() == 1

    with documents_runtime.session_factory() as session:
        package = get_package(session, documents_delivered)
        assert (package.status, package.rejection_code) == ("rejected", "004")
        assert [reply.kind for reply in package.replies] == ["eccezione"]
    assert documents_outbox()[-1] == (CALLBACK, {
        "source_ref": "application:1", "package_id": documents_delivered, "status": "rejected",
        "rejection": {"code": "004", "reason": "Destinatario non competente"}})
