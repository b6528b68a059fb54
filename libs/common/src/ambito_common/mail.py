"""Outgoing e-mail, chosen by URL: ``file:///dir`` (embedded), ``smtp://`` or ``smtps://``.

``smtp://user:pass@host:587?starttls=1`` upgrades with STARTTLS; ``smtps://`` uses
implicit TLS; ``?cafile=/path.pem`` trusts a private CA. Embedded mode writes each message
as an .eml file under var/mail/ so a person can open what would have been sent.
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass(frozen=True)
class ServerUrl:
    """A mail server URL (SMTP, IMAP) read once: where to connect, as whom, and how to do TLS.

    Shared by every client of a mail server (outgoing mail, PEC delivery, the PEC mailbox
    poller), so ``?starttls=1``, ``?cafile=`` and ``?insecure=1`` mean the same everywhere.
    """

    scheme: str
    host: str
    port: int | None
    username: str
    password: str
    path: str
    starttls: bool
    context: ssl.SSLContext

    @property
    def implicit_tls(self) -> bool:
        """``smtps``/``imaps``: TLS from the first byte, not upgraded by STARTTLS."""
        return self.scheme.endswith("s")


def server_url(url: str, schemes: tuple[str, ...], what: str = "mail") -> ServerUrl:
    """Parse ``url``, refusing a scheme not in ``schemes`` (``what`` names the setting)."""
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ValueError(f"unsupported {what} URL scheme: {parts.scheme!r}")
    options = parse_qs(parts.query)
    context = ssl.create_default_context(cafile=options["cafile"][0] if "cafile" in options else None)
    if options.get("insecure") == ["1"]:  # local test servers with self-signed certificates
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return ServerUrl(scheme=parts.scheme, host=parts.hostname or "localhost", port=parts.port,
                     username=unquote(parts.username or ""), password=unquote(parts.password or ""),
                     path=unquote(parts.path.strip("/")), starttls=options.get("starttls") == ["1"],
                     context=context)


def send_mail(url: str, message: EmailMessage) -> str:
    """Send ``message``; returns its Message-ID (added if missing)."""
    if "Message-ID" not in message:
        message["Message-ID"] = make_msgid(domain="ambito.invalid")
    parts = urlsplit(url)
    if parts.scheme == "file":
        folder = Path(unquote(parts.path))
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{uuid.uuid4().hex}.eml"
        tmp = target.with_suffix(".tmp")
        tmp.write_bytes(message.as_bytes())
        tmp.replace(target)
    else:
        server = server_url(url, ("smtp", "smtps"))
        smtp_class = smtplib.SMTP_SSL if server.implicit_tls else smtplib.SMTP
        kwargs = {"context": server.context} if server.implicit_tls else {}
        with smtp_class(server.host, server.port or 25, timeout=30, **kwargs) as smtp:
            if server.starttls:
                smtp.starttls(context=server.context)
            if server.username:
                smtp.login(server.username, server.password)
            smtp.send_message(message)
    return message["Message-ID"]
